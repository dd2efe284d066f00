"""Case discovery for public data set layouts (Harvard AANLIB; BraTS and ADNI adapters to come)."""

from medfuse.datasets.harvard import HARVARD_TASKS, HarvardPair, find_harvard_pairs

__all__ = ["HARVARD_TASKS", "HarvardPair", "find_harvard_pairs"]
