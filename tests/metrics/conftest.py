"""Small synthetic images for the metric tests (0..255 float, deterministic)."""

from __future__ import annotations

import numpy as np
import pytest


def _phantom(seed: int, size: int = 192) -> np.ndarray:
    """A smooth 'head' (ellipse, inner structures) plus mild texture, on 0..255."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size - 0.5
    img = np.zeros((size, size))
    img[(xx / 0.42) ** 2 + (yy / 0.36) ** 2 < 1] = 120
    for _ in range(6):
        cx, cy, r = rng.uniform(-0.25, 0.25), rng.uniform(-0.2, 0.2), rng.uniform(0.03, 0.1)
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = rng.uniform(30, 250)
    from scipy import ndimage

    img = ndimage.gaussian_filter(img, 1.0) + rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255)


@pytest.fixture(scope="session")
def images() -> tuple[np.ndarray, np.ndarray]:
    """Two different 192x192 source images A (anatomical-like) and B."""
    return _phantom(1), _phantom(2)


@pytest.fixture(scope="session")
def noise() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three independent uniform-noise images on the 256 grey levels, 256x256."""
    rng = np.random.default_rng(7)
    return tuple(rng.integers(0, 256, (256, 256)).astype(np.float64) for _ in range(3))
