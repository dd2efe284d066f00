"""Fusion quality metrics for 2D images and 3D volumes, and the ``medfuse evaluate`` commands.

Against the sources A (anatomical, MRI) and B (CT/PET/SPECT): ``MI``, ``NMI``, ``FMI``, ``QNCIE``,
``Qabf``, ``SSIM``, ``MS_SSIM``, ``MSE``, ``RMSE``, ``PSNR``, ``VIF``, ``SCD``, ``CE``; on the fused
image F alone: ``EN``, ``SD``, ``SF``, ``AG``, ``EI``. :data:`METRICS` says for each whether higher
or lower is better and its range; each function's docstring gives the formula, the reference and
the conventions that differ between papers.

Shared conventions (see :mod:`medfuse.metrics._core`): images are 2D float arrays on **0..255**;
histogram metrics use 256 bins of ``clip(round(x), 0, 255)`` and bits; pairwise metrics are
**summed** over the two sources (MI, NMI, SSIM, MS_SSIM, VIF, SCD) or **averaged** (MSE, RMSE, CE,
FMI), as the review of Zhou et al. (section 6) and the common toolboxes do. 3D volumes are scored
per slice inside the head mask (:func:`compute_volume_metrics`).

Modules: :mod:`~medfuse.metrics.information` (EN, MI, NMI, CE, QNCIE, FMI),
:mod:`~medfuse.metrics.gradient` (SF, AG, EI, Qabf), :mod:`~medfuse.metrics.structural` (SSIM,
MS_SSIM, VIF), :mod:`~medfuse.metrics.statistics` (SD, MSE, RMSE, PSNR, SCD),
:mod:`~medfuse.metrics.registry` (the registry and entry points), :mod:`~medfuse.metrics.report`
(the command-line bodies, tables and the comparison figure).
"""

from __future__ import annotations

from medfuse.metrics.gradient import average_gradient, edge_intensity, edge_preservation, spatial_frequency
from medfuse.metrics.information import (
    cross_entropy,
    entropy,
    feature_mutual_information,
    fusion_mutual_information,
    mutual_information,
    nonlinear_correlation_information_entropy,
    normalized_mutual_information,
)
from medfuse.metrics.registry import (
    FUSED_METRICS,
    METRICS,
    SOURCE_METRICS,
    MetricInfo,
    compute_metrics,
    compute_volume_metrics,
    resolve_metric_names,
    scale_to_255,
)
from medfuse.metrics.statistics import (
    mean_squared_error,
    peak_signal_to_noise_ratio,
    root_mean_squared_error,
    standard_deviation,
    sum_of_correlations_of_differences,
)
from medfuse.metrics.structural import (
    ms_ssim,
    multiscale_structural_similarity,
    ssim,
    structural_similarity,
    vif,
    visual_information_fidelity,
)

__all__ = [
    "METRICS",
    "SOURCE_METRICS",
    "FUSED_METRICS",
    "MetricInfo",
    "compute_metrics",
    "compute_volume_metrics",
    "resolve_metric_names",
    "scale_to_255",
    "entropy",
    "mutual_information",
    "fusion_mutual_information",
    "normalized_mutual_information",
    "cross_entropy",
    "nonlinear_correlation_information_entropy",
    "feature_mutual_information",
    "spatial_frequency",
    "average_gradient",
    "edge_intensity",
    "edge_preservation",
    "ssim",
    "structural_similarity",
    "ms_ssim",
    "multiscale_structural_similarity",
    "vif",
    "visual_information_fidelity",
    "standard_deviation",
    "mean_squared_error",
    "root_mean_squared_error",
    "peak_signal_to_noise_ratio",
    "sum_of_correlations_of_differences",
]
