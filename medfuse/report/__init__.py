"""QC figures and reports."""

from medfuse.report.qc import qc_figure, save_qc_figure

__all__ = ["qc_figure", "save_qc_figure"]
