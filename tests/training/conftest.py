"""Fixtures for training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from harvard_fixture import make_harvard


@pytest.fixture
def harvard_tiny(tmp_path) -> Path:
    """5 cases x 2 pairs of 32x32 ct_mri (gray) and pet_mri (colour PET) slices, with index.csv."""
    return make_harvard(tmp_path / "harvard")
