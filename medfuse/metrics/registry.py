"""The metric registry and the entry points that compute a set of metrics on 2D images or 3D volumes.

:data:`METRICS` maps each key name (part of the output format of ``medfuse evaluate``) to a
:class:`MetricInfo` with the function, whether higher is better and the value range.
:func:`compute_metrics` evaluates any subset on

- **2D images** ``(H, W)`` on the 0..255 scale, as they are (the literature's convention for 8-bit
  slices such as the Harvard AANLIB pairs; colour PET/SPECT are scored on the Y of YCbCr), over the
  whole image unless a ``mask`` is given;
- **3D volumes** ``(X, Y, Z)`` (any units): each volume is first mapped to 0..255 by its own robust
  percentiles (0.5th -> 0, 99.5th -> 255, clipped; statistics inside the head mask, per volume, never
  per slice), then the 2D metrics are computed **per slice along the last axis, inside the head
  mask of that slice** (the mask restricts every histogram, mean and sum, see each metric), and
  averaged over the slices (unweighted). A slice counts when the mask covers at least
  ``min_mask_fraction`` (default 10%) of it. No metric has a native 3D definition here: the
  literature defines all of them on 2D images, and per-slice values stay comparable with 2D tables.
  Windowed metrics (SSIM, MS_SSIM, VIF, FMI) filter the whole slice and average their local maps
  over the window centres inside the mask. MS_SSIM needs slices of at least 176 pixels per side
  (NaN otherwise, e.g. 1.5 mm brain volumes); VIF at least 41.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from medfuse.metrics import gradient as _g
from medfuse.metrics import information as _i
from medfuse.metrics import statistics as _s
from medfuse.metrics import structural as _t

__all__ = [
    "MetricInfo",
    "METRICS",
    "SOURCE_METRICS",
    "FUSED_METRICS",
    "resolve_metric_names",
    "compute_metrics",
    "compute_volume_metrics",
    "scale_to_255",
    "MIN_MASK_FRACTION",
]

log = logging.getLogger(__name__)

#: a slice enters the 3D average when the head mask covers at least this fraction of it
MIN_MASK_FRACTION = 0.10


@dataclass(frozen=True)
class MetricInfo:
    """What a metric is and how to read it.

    Attributes:
        key: the name in outputs (``"MI"``, ``"Qabf"``...).
        function: ``f(a, b, fused, mask)`` for source metrics, ``f(fused, mask)`` for fused-only ones.
        uses_sources: whether the metric compares the fused image with the sources A and B.
        higher_is_better: the direction of improvement.
        value_range: the theoretical range ``(low, high)`` (``inf`` when unbounded).
        description: one line: what it measures, how it combines the two sources.
    """

    key: str
    function: Callable[..., float]
    uses_sources: bool
    higher_is_better: bool
    value_range: tuple[float, float]
    description: str

    @property
    def direction(self) -> str:
        """``"higher"`` or ``"lower"`` (which is better)."""
        return "higher" if self.higher_is_better else "lower"

    def __call__(self, a: np.ndarray, b: np.ndarray, f: np.ndarray, mask: np.ndarray | None = None) -> float:
        if self.uses_sources:
            return float(self.function(a, b, f, mask))
        return float(self.function(f, mask))


_INF = float("inf")

#: every metric, in the order outputs list them (sources first, then fused-only)
METRICS: dict[str, MetricInfo] = {
    m.key: m
    for m in (
        MetricInfo("MI", _i.fusion_mutual_information, True, True, (0.0, 16.0),
                   "mutual information MI(A,F) + MI(B,F), bits, 256-bin joint histograms"),
        MetricInfo("NMI", _i.normalized_mutual_information, True, True, (0.0, 2.0),
                   "normalized MI 2[MI(A,F)/(H(A)+H(F)) + MI(B,F)/(H(B)+H(F))] (Hossny)"),
        MetricInfo("FMI", _i.feature_mutual_information, True, True, (0.0, 1.0),
                   "fast feature mutual information on gradient maps, 3x3 windows (Haghighat)"),
        MetricInfo("QNCIE", _i.nonlinear_correlation_information_entropy, True, True, (0.0, 1.0),
                   "nonlinear correlation information entropy of A, B, F (Wang)"),
        MetricInfo("Qabf", _g.edge_preservation, True, True, (0.0, 1.0),
                   "Xydeas-Petrovic edge information preserved from A and B"),
        MetricInfo("SSIM", _t.structural_similarity, True, True, (-2.0, 2.0),
                   "SSIM(A,F) + SSIM(B,F), scikit-image defaults, data range 255"),
        MetricInfo("MS_SSIM", _t.multiscale_structural_similarity, True, True, (0.0, 2.0),
                   "multi-scale SSIM(A,F) + MS-SSIM(B,F), 5 scales (Wang 2003)"),
        MetricInfo("MSE", _s.mean_squared_error, True, False, (0.0, 65025.0),
                   "(MSE(A,F) + MSE(B,F)) / 2 on 0..255"),
        MetricInfo("RMSE", _s.root_mean_squared_error, True, False, (0.0, 255.0),
                   "(RMSE(A,F) + RMSE(B,F)) / 2 on 0..255"),
        MetricInfo("PSNR", _s.peak_signal_to_noise_ratio, True, True, (0.0, _INF),
                   "10 log10(255^2 / MSE), dB"),
        MetricInfo("VIF", _t.visual_information_fidelity, True, True, (0.0, _INF),
                   "pixel-domain visual information fidelity VIF(A,F) + VIF(B,F)"),
        MetricInfo("SCD", _s.sum_of_correlations_of_differences, True, True, (-2.0, 2.0),
                   "sum of correlations of differences corr(F-B, A) + corr(F-A, B)"),
        MetricInfo("CE", _i.cross_entropy, True, False, (-_INF, _INF),
                   "cross entropy (D(A||F) + D(B||F)) / 2 over shared histogram bins, bits"),
        MetricInfo("EN", _i.entropy, False, True, (0.0, 8.0), "entropy of F's 256-bin histogram, bits"),
        MetricInfo("SD", _s.standard_deviation, False, True, (0.0, 127.5), "standard deviation of F"),
        MetricInfo("SF", _g.spatial_frequency, False, True, (0.0, _INF), "spatial frequency of F"),
        MetricInfo("AG", _g.average_gradient, False, True, (0.0, _INF), "average gradient of F"),
        MetricInfo("EI", _g.edge_intensity, False, True, (0.0, _INF), "mean Sobel edge intensity of F"),
    )
}
SOURCE_METRICS = tuple(k for k, m in METRICS.items() if m.uses_sources)
FUSED_METRICS = tuple(k for k, m in METRICS.items() if not m.uses_sources)


def resolve_metric_names(metrics: Sequence[str] | str | None) -> list[str]:
    """Canonical key names for a user's selection (case-insensitive; a comma-separated string is split).

    ``None`` or ``"all"`` selects every metric in :data:`METRICS` order.

    Raises:
        OptionError (a ``ValueError``): an unknown name; the message lists the valid names and the closest one.
    """
    if metrics is None:
        return list(METRICS)
    if isinstance(metrics, str):
        metrics = [m for m in metrics.split(",")]
    names = [str(m).strip() for m in metrics if str(m).strip()]
    if not names or [n.lower() for n in names] == ["all"]:
        return list(METRICS)
    from medfuse.errors import look_up

    supported = {k: k for k in METRICS}
    supported.update({"ms-ssim": "MS_SSIM", "msssim": "MS_SSIM", "q_ncie": "QNCIE", "qab/f": "Qabf"})
    out: list[str] = []
    for n in names:
        key = look_up(n, supported, "metric", ignore_case=True)
        if key not in out:
            out.append(key)
    return out


def _check_shapes(a: np.ndarray, b: np.ndarray, f: np.ndarray) -> None:
    if not (a.shape == b.shape == f.shape):
        from medfuse.errors import SpaceMismatchError

        raise SpaceMismatchError(
            f"metrics need the sources and the fused image on one grid; got shapes A {a.shape}, B {b.shape}, "
            f"fused {f.shape}: register/resample them onto the reference grid first"
        )


def compute_metrics(
    sources: tuple[np.ndarray, np.ndarray],
    fused: np.ndarray,
    metrics: Sequence[str] | str | None = None,
    mask: np.ndarray | None = None,
    **volume_options,
) -> dict[str, float]:
    """Compute fusion metrics for one case.

    Args:
        sources: ``(A, B)``: the anatomical image (MRI) and the other one, same shape as ``fused``.
        fused: the fused image.
        metrics: key names (see :data:`METRICS`), a comma-separated string, or None for all.
        mask: optional boolean array of the images' shape; metrics look only inside it (2D: default
            the whole image; 3D: default the union of the sources' head masks).
        **volume_options: for 3D inputs, passed to :func:`compute_volume_metrics`.

    2D arrays ``(H, W)`` must be on the 0..255 scale (8-bit images; a warning is logged when they
    look like [0, 1] data). 3D arrays ``(X, Y, Z)`` may have any units: see
    :func:`compute_volume_metrics`.

    Returns:
        ``{key: value}`` in the order asked (:data:`METRICS` order for all); floats, ``inf``
        or ``nan`` only where a metric documents it (PSNR of identical images, MS_SSIM of small ones).

    Raises:
        SpaceMismatchError: the three arrays differ in shape.
        ValueError: unknown metric names, arrays that are not 2D/3D, a bad mask.
        NonFiniteError: NaN or infinite values.

    Example:
        >>> import numpy as np
        >>> a = np.tile(np.arange(256.0), (256, 1)); b = a.T
        >>> scores = compute_metrics((a, b), (a + b) / 2, ["EN", "SSIM"])
        >>> sorted(scores)
        ['EN', 'SSIM']
    """
    a, b = (np.asarray(x, dtype=np.float64) for x in sources)
    f = np.asarray(fused, dtype=np.float64)
    _check_shapes(a, b, f)
    names = resolve_metric_names(metrics)
    if f.ndim == 3:
        return compute_volume_metrics((a, b), f, names, mask, **volume_options)
    if f.ndim != 2:
        raise ValueError(f"metrics take 2D images (H, W) or 3D volumes (X, Y, Z); got shape {f.shape}")
    if volume_options:
        raise TypeError(f"options {sorted(volume_options)} apply to 3D volumes only")
    for name, x in (("A", a), ("B", b), ("fused", f)):
        if np.isfinite(x).all() and 0 < float(x.max()) <= 1.0:
            log.warning("%s: values lie in [0, 1]; 2D metrics expect the 0..255 scale (multiply by 255)", name)
    return {k: METRICS[k](a, b, f, mask) for k in names}


def scale_to_255(array: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Map a volume to 0..255 by its robust percentiles inside ``mask`` (0.5th -> 0, 99.5th -> 255, clipped).

    Uses :func:`medfuse.intensity.percentile_scale` (the normalization every medfuse step shares).
    A volume with no contrast inside the mask (a blank fused image) maps to all zeros.
    """
    from medfuse.errors import EmptyImageError
    from medfuse.intensity import DEFAULT_PERCENTILES, percentile_scale

    try:
        scaled, _ = percentile_scale(array, mask, DEFAULT_PERCENTILES)
    except EmptyImageError:
        log.warning("a volume has no contrast inside the mask; it is scored as all zeros")
        return np.zeros(np.shape(array), dtype=np.float64)
    return scaled.astype(np.float64) * 255.0


def _default_volume_mask(a: np.ndarray, b: np.ndarray, modalities: tuple[str | None, str | None]) -> np.ndarray:
    from medfuse.intensity import head_mask
    from medfuse.volume import Volume

    return head_mask(Volume(a), modalities[0]) | head_mask(Volume(b), modalities[1])


def compute_volume_metrics(
    sources: tuple[np.ndarray, np.ndarray],
    fused: np.ndarray,
    metrics: Sequence[str] | str | None = None,
    mask: np.ndarray | None = None,
    *,
    min_mask_fraction: float = MIN_MASK_FRACTION,
    normalize: bool = True,
    modalities: tuple[str | None, str | None] = (None, None),
    progress: bool = False,
) -> dict[str, float]:
    """Fusion metrics of 3D volumes: per slice along the last axis, inside the head mask, averaged.

    Args:
        sources: ``(A, B)`` volumes ``(X, Y, Z)`` on the fused volume's grid (any units).
        fused: the fused volume ``(X, Y, Z)``.
        metrics: key names or None for all.
        mask: boolean ``(X, Y, Z)`` head mask; default: the union of
            :func:`medfuse.intensity.head_mask` of A and B (with ``modalities``).
        min_mask_fraction: a slice counts when the mask covers at least this fraction of it.
        normalize: map each volume to 0..255 by :func:`scale_to_255` first (set False when the
            volumes are already on 0..255).
        modalities: modality codes of A and B for the default head mask (``"MR"``, ``"PT"``...).
        progress: show a tqdm bar over slices.

    Returns:
        ``{key: mean over the counted slices}``; NaN entries (e.g. MS_SSIM on small slices) are
        ignored in the mean.

    Raises:
        ValueError: no slice has enough mask coverage.
    """
    a, b = (np.asarray(x, dtype=np.float64) for x in sources)
    f = np.asarray(fused, dtype=np.float64)
    _check_shapes(a, b, f)
    if f.ndim != 3:
        raise ValueError(f"compute_volume_metrics takes 3D volumes (X, Y, Z); got shape {f.shape}")
    names = resolve_metric_names(metrics)
    if mask is None:
        mask = _default_volume_mask(a, b, modalities)
    else:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != f.shape:
            raise ValueError(f"mask: expected shape {f.shape} (the volumes' shape), got {mask.shape}")
    if normalize:
        a, b, f = (scale_to_255(x, mask if mask.any() else None) for x in (a, b, f))
    coverage = mask.reshape(-1, mask.shape[-1]).mean(axis=0)
    slices = np.flatnonzero(coverage >= min_mask_fraction)
    if slices.size == 0:
        raise ValueError(
            f"no slice along the last axis has at least {min_mask_fraction:.0%} of its pixels inside the head mask "
            f"(largest coverage {coverage.max():.1%}); pass a mask or lower min_mask_fraction"
        )
    log.info("scoring %d of %d slices (mask coverage >= %.0f%%)", slices.size, f.shape[-1], 100 * min_mask_fraction)
    from tqdm.auto import tqdm

    per_slice = list(names)
    if "MS_SSIM" in names and min(f.shape[:2]) < _t.MS_SSIM_MIN_SIZE:
        log.warning("MS_SSIM needs slices of at least %d pixels per side, got %s: reported as NaN",
                    _t.MS_SSIM_MIN_SIZE, f.shape[:2])
        per_slice.remove("MS_SSIM")
    values = {k: [] for k in names}
    for k in tqdm(slices, desc="slices", unit="slice", disable=not progress, leave=False):
        m = mask[..., k]
        for key in per_slice:
            values[key].append(METRICS[key](a[..., k], b[..., k], f[..., k], m))
    out = {}
    for key, vals in values.items():
        v = np.asarray(vals, dtype=np.float64)
        finite_or_inf = v[~np.isnan(v)]
        out[key] = float(finite_or_inf.mean()) if finite_or_inf.size else float("nan")
    return out
