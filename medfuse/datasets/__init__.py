"""Case discovery for public data set layouts: Harvard AANLIB, BraTS, ADNI.

:func:`discover` runs the adapter of a data set and returns a
:class:`~medfuse.datasets.base.Discovery` (cases found; folders and series skipped, with why;
stray files ignored and counted), which ``medfuse batch`` runs.
"""

from medfuse.datasets.base import Case, Discovery, Skipped
from medfuse.datasets.harvard import HARVARD_TASKS, HarvardPair, discover_harvard, find_harvard_pairs

__all__ = ["HARVARD_TASKS", "HarvardPair", "find_harvard_pairs", "discover_harvard", "discover", "DATASETS",
           "Case", "Discovery", "Skipped"]

#: data set names ``medfuse batch --dataset`` accepts
DATASETS = ("harvard", "brats", "adni")


def discover(dataset: str, root, *, sequences=None, tasks=None, window_days=None, mri_series=None) -> Discovery:
    """Run the adapter of ``dataset`` on ``root``.

    Args:
        dataset: ``harvard``, ``brats`` or ``adni``.
        sequences: BraTS: the sequences to fuse (see :func:`medfuse.datasets.brats.parse_sequences`).
        tasks: Harvard: restrict to these tasks.
        window_days, mri_series: ADNI pairing (see :func:`medfuse.datasets.adni.discover_adni`).

    Raises:
        OptionError: an unknown data set, or an option that does not apply to it.
    """
    from medfuse.errors import OptionError, look_up

    name = look_up(str(dataset).lower(), DATASETS, "data set (--dataset)")
    given = {"--sequences": sequences, "--tasks": tasks, "--window-days": window_days, "--mri-series": mri_series}
    applies = {"harvard": ("--tasks",), "brats": ("--sequences",), "adni": ("--window-days", "--mri-series")}[name]
    wrong = [k for k, v in given.items() if v is not None and k not in applies]
    if wrong:
        raise OptionError(f"{', '.join(wrong)} does not apply to --dataset {name}"
                          f" (it takes {', '.join(applies)})")
    if name == "harvard":
        return discover_harvard(root, tasks=tasks)
    if name == "brats":
        from medfuse.datasets.brats import discover_brats

        return discover_brats(root, sequences=sequences)
    from medfuse.datasets.adni import DEFAULT_WINDOW_DAYS, discover_adni

    return discover_adni(root, window_days=DEFAULT_WINDOW_DAYS if window_days is None else int(window_days),
                         mri_series=mri_series)
