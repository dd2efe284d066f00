"""Training data for fusion networks: 2D slice pairs, a case-level split, and a patch sampler.

Sources:

* A Harvard AANLIB-layout folder (``DATA/{ct_mri,pet_mri,spect_mri}/<pair>/{mri.png, ct.png |
  pet.png | spect.png}``, found by :func:`medfuse.datasets.harvard.find_harvard_pairs`): each file
  is read by :func:`medfuse.io.slices.read_slice` (colour PET/SPECT become the Pillow YCbCr
  luminance Y) and divided by its bit depth's maximum (255), giving float32 ``(H, W)`` in [0, 1].
* Optionally, slices of the digital brain phantom (:mod:`medfuse.phantom`): an MRI (T1) and the
  pair's second contrast rendered on one grid (aligned), each normalized per volume by
  :func:`medfuse.intensity.normalize`, axial slices taken from the central part of the head, in
  the AANLIB in-plane orientation (:func:`medfuse.volume.to_axial`).
  Phantom slices only ever go to the training side.
* One's own registered 3D volume pairs (``medfuse train --volumes``): see
  :mod:`medfuse.training.volumes` (axial slices inside the head, normalized as inference
  normalizes a 3D input for the network; the case is the subject).

The split is by whole case (index.csv ``case``, else derived from the pair id), seeded and
deterministic, so slices of one subject never fall on both sides.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = [
    "SlicePair",
    "load_harvard_slices",
    "load_phantom_slices",
    "split_by_case",
    "split_digest",
    "PatchSampler",
    "PHANTOM_CONTRAST",
    "training_quantiles",
]

log = logging.getLogger(__name__)

#: pair name -> the phantom contrast of its second scan
PHANTOM_CONTRAST = {"ct_mri": "ct", "pet_mri": "pet", "spect_mri": "spect"}


@dataclass(frozen=True)
class SlicePair:
    """One registered 2D pair: ``a`` the MRI, ``b`` the other scan, float32 ``(H, W)`` in [0, 1]; ``b_alt``: for a
    colour PET/SPECT slice loaded with ``recolour``, its luminance when its uptake is drawn in that colour map."""

    key: str
    case: str
    a: np.ndarray
    b: np.ndarray
    b_alt: np.ndarray | None = None

    @property
    def digest(self) -> str:
        """sha256 of both arrays' bytes (identifies the training data in provenance records)."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.a, dtype=np.float32).tobytes())
        h.update(np.ascontiguousarray(self.b, dtype=np.float32).tobytes())
        return h.hexdigest()


def _unit(volume, path: Path) -> np.ndarray:
    from medfuse.errors import UnsupportedInputError

    arr = np.asarray(volume.array, dtype=np.float32) / float(volume.meta.get("value_max", 255.0))
    if arr.ndim != 2:
        raise UnsupportedInputError(f"{path}: expected a 2D image; got shape {arr.shape}")
    return np.clip(arr, 0.0, 1.0)


def load_harvard_slices(data_dir: str | os.PathLike, pair: str, recolour: str | None = None) -> list[SlicePair]:
    """All pairs of one task (``ct_mri``, ``pet_mri``, ``spect_mri``) in a Harvard-layout folder.

    ``recolour``: a colour map (:data:`medfuse.color.COLORMAPS`); each colour slice also gets ``b_alt``, the
    luminance of its uptake (read back from its colours, :func:`medfuse.hotspots.uptake_from_colours`) drawn in
    that map (a slice on no known map keeps ``b_alt`` None). The colour-map augmentation trains on it.

    Raises:
        NotADirectoryError, FileNotFoundError: no folder or no pairs of that task.
        SpaceMismatchError: a pair whose two images differ in size.
    """
    from medfuse.datasets.harvard import find_harvard_pairs
    from medfuse.errors import SpaceMismatchError
    from medfuse.io.slices import read_slice

    found = find_harvard_pairs(data_dir, tasks=[pair])
    out = []
    for p in found:
        a = _unit(read_slice(p.mri), p.mri)
        other = read_slice(p.other)
        b = _unit(other, p.other)
        if a.shape != b.shape:
            raise SpaceMismatchError(f"{p.key}: MRI {a.shape} and {p.other.name} {b.shape} differ in size")
        out.append(SlicePair(p.key, p.case, a, b, _recoloured(other.rgb, recolour) if recolour else None))
    log.info("loaded %d %s pairs from %d cases", len(out), pair, len({s.case for s in out}))
    return out


def _recoloured(rgb: np.ndarray | None, name: str) -> np.ndarray | None:
    """The luminance in [0, 1] of a colour slice's uptake drawn in colour map ``name`` (None: grey, or no known map)."""
    from medfuse.color import split_luminance
    from medfuse.hotspots import redraw_in_colormap

    redrawn = None if rgb is None else redraw_in_colormap(rgb, name)
    if redrawn is None:
        return None
    return (split_luminance(redrawn)[0] / 255.0).astype(np.float32)


def load_phantom_slices(pair: str, cases: int, slices_per_case: int = 16, seed: int = 0,
                        max_rotation_deg: float = 10.0) -> list[SlicePair]:
    """Aligned axial slices of the digital brain phantom (MRI T1 + the pair's second contrast).

    Each case is the phantom head turned by a random rotation (up to ``max_rotation_deg`` about
    each axis, the same for both scans) with its own noise; both volumes are normalized per volume
    and ``slices_per_case`` axial slices are taken evenly from the central 60% of the head.

    Raises:
        UnsupportedInputError: an unknown pair.
    """
    from medfuse.errors import UnsupportedInputError

    if pair not in PHANTOM_CONTRAST:
        raise UnsupportedInputError(f"no phantom contrast for pair {pair!r}; expected one of {list(PHANTOM_CONTRAST)}")
    from medfuse.intensity import normalize
    from medfuse.phantom import HEAD_CENTER_MM, make_volume, rigid_matrix
    from medfuse.volume import to_axial

    rng = np.random.default_rng(seed)
    out: list[SlicePair] = []
    for case in range(cases):
        rotation = rng.uniform(-max_rotation_deg, max_rotation_deg, size=3)
        turn = rigid_matrix(rotation, (0.0, 0.0, 0.0), HEAD_CENTER_MM)
        noise_seeds = rng.integers(0, 2**31, size=2)
        mri = make_volume("t1", reference_to_scan=turn, seed=int(noise_seeds[0]))
        other = make_volume(PHANTOM_CONTRAST[pair], affine=mri.affine, shape=mri.shape, reference_to_scan=turn,
                            seed=int(noise_seeds[1]))
        # axial slices oriented like the AANLIB slices and like inference feeds them
        # (medfuse.volume.to_axial: rows anterior -> posterior, columns patient right -> left)
        a = to_axial(normalize(mri).array, mri.affine)
        b = to_axial(normalize(other).array, mri.affine)
        depth = a.shape[2]
        for k in np.linspace(0.2 * depth, 0.8 * depth, slices_per_case).astype(int):
            out.append(SlicePair(f"phantom/{pair}/{seed}-{case}/k{k}", f"phantom-{seed}-{case}",
                                 np.ascontiguousarray(a[:, :, k]), np.ascontiguousarray(b[:, :, k])))
    log.info("made %d phantom %s slices from %d cases", len(out), pair, cases)
    return out


def training_quantiles(pairs: Sequence[SlicePair], levels: Sequence[float] | None = None):
    """Quantiles of the content pixels of training pairs: ``(MRI quantiles, other-scan quantiles)``.

    Content pixels are :func:`medfuse.intensity.training_match.content_mask` (``max(a, b) > 0.05``, holes filled),
    the rule inference uses on volumes; ``levels`` default
    :data:`medfuse.intensity.training_match.TRAINING_QUANTILE_LEVELS`. This is how
    :data:`medfuse.intensity.training_match.TRAINING_QUANTILES` was computed (all Harvard pairs of each task).
    """
    from medfuse.intensity.training_match import TRAINING_QUANTILE_LEVELS, content_mask

    if not pairs:
        raise ValueError("training_quantiles needs at least one pair")
    levels = TRAINING_QUANTILE_LEVELS if levels is None else levels
    masks = [content_mask(p.a, p.b) for p in pairs]
    a = np.concatenate([p.a[m] for p, m in zip(pairs, masks)])
    b = np.concatenate([p.b[m] for p, m in zip(pairs, masks)])
    return (tuple(float(v) for v in np.percentile(a, levels)), tuple(float(v) for v in np.percentile(b, levels)))


def split_by_case(cases: Sequence[str], val_fraction: float = 0.2, seed: int = 0) -> tuple[list[str], list[str]]:
    """Split case names into (train, validation), deterministically.

    The distinct cases are sorted, shuffled with ``random.Random(seed)``, and the first
    ``max(1, round(val_fraction * n))`` go to validation (0 when ``val_fraction`` is 0); at least one
    case stays for training.

    Raises:
        ValueError: ``val_fraction`` outside [0, 1), or too few cases for both sides.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1); got {val_fraction}")
    unique = sorted(set(cases))
    if not unique:
        raise ValueError("no cases to split")
    random.Random(seed).shuffle(unique)
    n_val = 0 if val_fraction == 0 else max(1, round(val_fraction * len(unique)))
    if n_val >= len(unique):
        raise ValueError(
            f"{len(unique)} case(s) cannot be split into training and validation (val_fraction={val_fraction}); "
            "add data or set val_fraction to 0"
        )
    return sorted(unique[n_val:]), sorted(unique[:n_val])


def split_digest(pairs: Sequence[SlicePair]) -> str:
    """sha256 over the sorted ``key:digest`` lines of ``pairs`` (the training split's fingerprint)."""
    h = hashlib.sha256()
    for line in sorted(f"{p.key}:{p.digest}" for p in pairs):
        h.update(line.encode() + b"\n")
    return h.hexdigest()


class PatchSampler:
    """Random training patches from in-memory slice pairs.

    Args:
        pairs: the training pairs (any sizes; smaller than ``crop`` are zero-padded).
        crop: patch edge (pixels).
        flip: random horizontal and vertical flips.
        rot90: random multiples of 90 degree rotations.
        min_foreground: resample a patch (up to 10 tries) while less than this fraction of its pixels
            has ``max(a, b) > 0.1`` (AANLIB slices are mostly black background).
        appearance: probability, per source per patch, of one appearance perturbation of a random
            kind and strength (:func:`medfuse.training.augment.random_appearance`: gamma, intensity
            scale, Gaussian noise, blur, half resolution; how other collections differ). 0 (the
            default) draws nothing, so patches are bit-identical to a sampler without it.
        colormap: probability, per patch, of taking the other scan's ``b_alt`` (its uptake in another colour
            map: a 3D SPECT volume is fused in the PET map's colours) where the pair has one. 0 (the default)
            draws nothing.
        generator: a seeded ``torch.Generator``; its state is the sampler's whole state.

    ``sample(batch)`` returns ``(a, b)`` tensors ``(batch, 1, crop, crop)`` in [0, 1].
    """

    def __init__(self, pairs: Sequence[SlicePair], crop: int, *, flip: bool = True, rot90: bool = True,
                 min_foreground: float = 0.1, appearance: float = 0.0, colormap: float = 0.0,
                 generator=None) -> None:
        import torch

        if not pairs:
            raise ValueError("PatchSampler needs at least one training pair")
        if crop < 8:
            raise ValueError(f"crop must be >= 8 pixels; got {crop}")
        self.crop = int(crop)
        self.flip, self.rot90 = bool(flip), bool(rot90)
        self.min_foreground = float(min_foreground)
        if not 0.0 <= appearance <= 1.0:
            raise ValueError(f"appearance must be a probability in [0, 1]; got {appearance!r}")
        self.appearance = float(appearance)
        if not 0.0 <= colormap <= 1.0:
            raise ValueError(f"colormap must be a probability in [0, 1]; got {colormap!r}")
        self.colormap = float(colormap)
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        # numpy for the per-patch work: tiny tensor operations would each go through torch's
        # thread pool, which costs more than the work itself (20x on a busy 2-core machine)
        self.images = []
        for p in pairs:
            # (2, H, W); with the colour-map augmentation (3, H, W): a, b, b in the other map (b itself if none)
            planes = [p.a, p.b] + ([p.b if p.b_alt is None else p.b_alt] if self.colormap > 0 else [])
            img = np.stack(planes).astype(np.float32)
            ph, pw = max(self.crop - img.shape[1], 0), max(self.crop - img.shape[2], 0)
            if ph or pw:
                img = np.pad(img, ((0, 0), (0, ph), (0, pw)))
            self.images.append(img)

    def _randint(self, high: int) -> int:
        import torch

        return int(torch.randint(high, (1,), generator=self.generator))

    def _one(self) -> np.ndarray:
        import torch

        img = self.images[self._randint(len(self.images))]
        planes = slice(0, 2)  # a and b; with the colour-map augmentation, a and b in the other map at random
        if self.colormap > 0 and float(torch.rand((), generator=self.generator, dtype=torch.float64)) < self.colormap:
            planes = [0, 2]
        _, h, w = img.shape
        for _ in range(10):
            y, x = self._randint(h - self.crop + 1), self._randint(w - self.crop + 1)
            patch = img[planes, y : y + self.crop, x : x + self.crop]
            if float((patch.max(axis=0) > 0.1).mean()) >= self.min_foreground:
                break
        if self.flip:
            if self._randint(2):
                patch = patch[:, :, ::-1]
            if self._randint(2):
                patch = patch[:, ::-1, :]
        if self.rot90:
            k = self._randint(4)
            if k:
                patch = np.rot90(patch, k, axes=(1, 2))
        if self.appearance > 0:
            patch = np.stack([self._appearance(src) for src in patch])
        return patch

    def _appearance(self, src: np.ndarray) -> np.ndarray:
        import torch

        from medfuse.training.augment import random_appearance

        if float(torch.rand((), generator=self.generator, dtype=torch.float64)) >= self.appearance:
            return src
        return random_appearance(np.ascontiguousarray(src), self.generator)

    def sample(self, batch: int):
        """``(a, b)``: two ``(batch, 1, crop, crop)`` float32 tensors."""
        import torch

        stack = torch.from_numpy(np.ascontiguousarray(np.stack([self._one() for _ in range(batch)])))
        return stack[:, :1].contiguous(), stack[:, 1:].contiguous()
