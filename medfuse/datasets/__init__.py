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
#: the options of each data set's adapter (:func:`discover`'s keywords), with what each chooses
_TAKES = {"harvard": {"tasks": "a subset of the tasks"}, "brats": {"sequences": "the sequences to fuse"},
          "adni": {"window_days": "the largest gap between a PET and its MRI",
                   "mri_series": "a pattern of the MRI series description"}}


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
    from medfuse.errors import OPTION, OptionError, look_up

    name = look_up(str(dataset).lower(), DATASETS, "data set", option="dataset")
    given = {"sequences": sequences, "tasks": tasks, "window_days": window_days, "mri_series": mri_series}
    wrong = [k for k, v in given.items() if v is not None and k not in _TAKES[name]]
    if wrong:
        raise OptionError(f"{OPTION} does not apply to the {name} data set (it takes "
                          f"{' and '.join(_TAKES[name].values())})", option=wrong[0])
    if name == "harvard":
        return discover_harvard(root, tasks=tasks)
    if name == "brats":
        from medfuse.datasets.brats import discover_brats

        return discover_brats(root, sequences=sequences)
    from medfuse.datasets.adni import DEFAULT_WINDOW_DAYS, discover_adni

    return discover_adni(root, window_days=DEFAULT_WINDOW_DAYS if window_days is None else int(window_days),
                         mri_series=mri_series)
