"""Issue 24's goal on the folds: a row ranked in one pool with the classical methods and the published networks.

``../shared/reference/peer-targets.md`` gives what published networks (GeSeNet, GBFF, MACAN, ...) and three
classical methods score on 185 AANLIB pairs medfuse has never had. Its numbers are on other pairs, so they
cannot enter a ranking on our folds as they are. They enter as **targets projected onto the folds**: each
published row keeps its ratio to ``max`` on the unseen pairs, per metric, times the folds' own ``max``
(``projected[k] = row[k] / max_unseen[k] * max_folds[k]``): a network that beats ``max``'s Qabf by 9% there
is expected to beat it by 9% here. The classical rows of the file (``max``, ``mean``, ``Laplacian pyramid``)
are not projected: medfuse runs them on the folds (with ``laplacian``, ``wavelet`` and ``guided``).

The goal (issue 24, item 1) for a network row: in the pool {the folds' classical rows, the projected
published rows, the row}, its mean rank over the 10 metrics is strictly lower than every other row's, it is
the worst on no metric, and its Qabf, VIF and SSIM are each at least 98% of the pool's best.

Used by ``benchmarks/quality.py`` (goal lines, the default decision and the inner-split tie-break).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

PEER_FILE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "peer-targets.md"
METRIC_KEYS = ["EN", "SD", "SF", "AG", "EI", "MI", "Qabf", "SSIM", "VIF", "SCD"]
FIDELITY_KEYS = ["Qabf", "VIF", "SSIM"]
#: rows of peer-targets.md that medfuse runs itself on the folds (not projected)
PEER_CLASSICAL = {"max", "mean", "Laplacian pyramid"}
_SECTIONS = {"ct_mri": "## CT-MRI", "pet_mri": "## PET-MRI", "spect_mri": "## SPECT-MRI"}


def read_peer_targets(path: Path | str = PEER_FILE) -> dict[str, dict[str, dict[str, float]]]:
    """``{pair: {row: {metric: value}}}`` from peer-targets.md's tables (``**bold**`` marks dropped);
    ``{}`` when the file is absent (a user's machine)."""
    path = Path(path)
    if not path.is_file():
        return {}
    text = path.read_text()
    out: dict[str, dict[str, dict[str, float]]] = {}
    for pair, head in _SECTIONS.items():
        if head not in text:
            continue
        rows: dict[str, dict[str, float]] = {}
        for line in text.split(head, 1)[1].split("\n## ", 1)[0].splitlines():
            cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
            if len(cells) < 11 or cells[0] in ("method", "") or set(cells[1]) <= set("-: "):
                continue
            rows[cells[0]] = {k: float(v) for k, v in zip(METRIC_KEYS, cells[1:11])}
        if "max" in rows:
            out[pair] = rows
    return out


def projected_rows(peers: dict[str, dict[str, float]], folds_max: dict[str, float]) -> dict[str, dict[str, float]]:
    """The published rows of one task projected onto the folds (module docstring), named ``"*NAME"``."""
    ref = peers["max"]
    return {f"*{name}": {k: row[k] / ref[k] * folds_max[k] for k in METRIC_KEYS}
            for name, row in peers.items() if name not in PEER_CLASSICAL}


def peer_pool(table: dict, row: str, peers: dict[str, dict[str, float]], classical) -> dict:
    """{the classical rows of ``table``, the projected published rows, ``row``}."""
    pool = {m: table[m] for m in classical if m in table}
    pool.update(projected_rows(peers, table["max"]))
    pool[row] = table[row]
    return pool


def mean_ranks(pool: dict) -> dict[str, float]:
    """Mean rank over the 10 metrics (1 = best; every metric is higher-is-better) of each row of ``pool``."""
    out = {m: [] for m in pool}
    for k in METRIC_KEYS:
        for r, m in enumerate(sorted(pool, key=lambda m: -pool[m][k]), 1):
            out[m].append(r)
    return {m: float(np.mean(v)) for m, v in out.items()}


def goal_peer(table: dict, row: str, peers: dict[str, dict[str, float]], classical) -> tuple[bool, str, float]:
    """Issue 24's goal for ``row`` (module docstring): ``(met, one-line account, the row's mean rank)``."""
    pool = peer_pool(table, row, peers, classical)
    mr = mean_ranks(pool)
    best_other = min((v, m) for m, v in mr.items() if m != row)
    last = [k for k in METRIC_KEYS if all(pool[row][k] < pool[m][k] for m in pool if m != row)]
    fid = {k: pool[row][k] / max(pool[m][k] for m in pool) for k in FIDELITY_KEYS}
    ok = mr[row] < best_other[0] and not last and all(v >= 0.98 for v in fid.values())
    txt = (f"mean rank {mr[row]:.2f} among {len(pool)} (best other: {best_other[1]} {best_other[0]:.2f}); worst on "
           f"{', '.join(last) or 'none'}; " + ", ".join(f"{k} {100 * v:.1f}% of the best" for k, v in fid.items())
           + f" -> {'MET' if ok else 'NOT MET'}")
    return ok, txt, mr[row]
