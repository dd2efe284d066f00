"""Shared pytest fixtures for medfuse."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: Harvard AANLIB development pairs: ../shared/data/harvard beside the repository, or $MEDFUSE_HARVARD.
HARVARD_DIR = Path(os.environ.get("MEDFUSE_HARVARD", ROOT.parent / "shared" / "data" / "harvard"))


@pytest.fixture(scope="session")
def harvard_dir() -> Path:
    """The Harvard AANLIB development set; tests using it skip when it is absent."""
    if not (HARVARD_DIR / "index.csv").is_file():
        pytest.skip(f"Harvard AANLIB data not found at {HARVARD_DIR} (set MEDFUSE_HARVARD)")
    return HARVARD_DIR
