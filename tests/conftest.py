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


#: Real scans (MNI templates, one patient's native MR, a BraTS case, DICOM QA series):
#: ../shared/data/real beside the repository, or $MEDFUSE_REAL_DATA.
REAL_DIR = Path(os.environ.get("MEDFUSE_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """The real-scan folder (see its README); tests using it skip when it is absent."""
    if not (REAL_DIR / "README.md").is_file():
        pytest.skip(f"real scans not found at {REAL_DIR} (set MEDFUSE_REAL_DATA)")
    return REAL_DIR
