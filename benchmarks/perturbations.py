"""The test-pair perturbations of the robustness table (``benchmarks/quality_robust.py``, where each is
described) and of the inner rule's views (``benchmarks/quality.py --inner-views``): a slice perturbed
as another collection would hand it over, written as the 8-bit PNG a user's file holds. One implementation
for both benchmarks; the perturbations themselves are :mod:`medfuse.training.augment`'s."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

PERTURBATIONS = ("gamma", "scale", "noise", "blur", "lowres")
#: opt-in perturbations (not in the default table): another colour map for the colour slices
RECOLOURINGS = {"pet_colours": "aanlib_pet"}


def perturb(x: np.ndarray, kind: str, role: str, seed: int) -> np.ndarray:
    """``x`` (uint8, ``(H, W)`` or ``(H, W, 3)``) perturbed by ``kind`` at the fixed strengths listed in
    ``quality_robust.py``'s docstring (the perturbations themselves: :mod:`medfuse.training.augment`, which
    training draws from at random strengths); uint8."""
    from medfuse.training.augment import perturb_appearance

    if kind in RECOLOURINGS:
        if role == "mri" or x.ndim != 3:
            return x.copy()
        from medfuse.hotspots import redraw_in_colormap

        redrawn = redraw_in_colormap(x.astype(np.float32), RECOLOURINGS[kind])
        if redrawn is None:
            raise ValueError("pet_colours: a colour slice on no known colour map")
        return redrawn.astype(np.uint8)
    if kind not in PERTURBATIONS:
        raise ValueError(f"unknown perturbation {kind!r}; expected one of {PERTURBATIONS} or {tuple(RECOLOURINGS)}")
    v = x.astype(np.float64) / 255.0
    strength = noise = None
    if kind == "gamma":
        strength = 0.7 if role == "mri" else 1.5
    elif kind == "scale":
        strength = 0.6
    elif kind == "noise":
        noise = np.random.default_rng(seed + (0 if role == "mri" else 1)).normal(0.0, 0.03, v.shape[:2])
    elif kind == "blur":
        strength = 1.0
    v = perturb_appearance(v, kind, strength, noise)
    return np.clip(np.rint(v * 255.0), 0, 255).astype(np.uint8)


def perturbed_pairs(pairs, kind: str, out: Path):
    """Copies of ``pairs`` (HarvardPair) with their PNGs perturbed into ``out``; ``pair_id`` tagged ``~kind``."""
    from PIL import Image

    made = []
    for i, p in enumerate(pairs):
        d = out / kind / p.pair_id
        d.mkdir(parents=True, exist_ok=True)
        paths = {}
        for role, src in (("mri", Path(p.mri)), ("other", Path(p.other))):
            img = np.asarray(Image.open(src))
            dst = d / f"{role}_{src.name}"
            Image.fromarray(perturb(img, kind, role, seed=i)).save(dst)
            paths[role] = dst
        made.append(SimpleNamespace(pair_id=f"{p.pair_id}~{kind}", case=p.case, mri=paths["mri"], other=paths["other"]))
    return made
