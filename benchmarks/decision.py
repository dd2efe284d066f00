"""The rules that choose, on the cross-validated folds (``benchmarks/quality.py``): a config on each outer fold's
inner split (:func:`inner_choice`, :func:`inner_choice_views`), the goal checks of a network row
(:func:`goal_default`, :func:`goal_family`; issue 24's in :mod:`peer_targets`) and each task's default method
(:func:`default_decision`, what ``medfuse/weights/defaults.json`` records). Rows are named ``METHOD`` or
``NET-TAG`` (a network's config variant, :func:`row_method`). Split from ``quality.py`` (session 12): scoring there,
choosing here; no fusion and no file access here, so the rules are tested on made-up rows."""

from __future__ import annotations

import statistics

import numpy as np

import peer_targets
from peer_targets import FIDELITY_KEYS, METRIC_KEYS, mean_ranks, ranks

CLASSICAL = ["mean", "max", "laplacian", "wavelet", "guided"]
NETWORKS = ["fmmf", "mdgan", "msra", "light"]

def inner_choice(table: dict, candidates: list[str], peers: dict | None = None) -> tuple[str, dict[str, int]]:
    """The config rule on one inner validation split: the candidate row better than the median classical
    method on the most of the 10 metrics (issue 14, item 3); ties go to the lower mean rank over the 10
    metrics, each candidate ranked among the classical rows of ``table`` and itself, plus the published rows
    projected onto the split when ``peers`` (one task's rows of peer-targets.md) is given (issue 24's pool,
    :mod:`peer_targets`; session 9: every candidate had tied at 10/10 on most splits, so the count alone
    chose nothing), then to the earlier candidate (list the base config first).
    Returns ``(chosen, {candidate: count})``."""
    return inner_choice_views({"as given": table}, candidates, peers)


def inner_choice_views(tables: dict[str, dict], candidates: list[str], peers: dict | None = None
                       ) -> tuple[str, dict[str, int]]:
    """:func:`inner_choice` over several *views* of one inner validation split (``--inner-views``; session 12,
    fixed before any score under it): ``tables`` maps a view (the slices as given, or as ``perturbations``
    hands them over, e.g. ``pet_colours``) to that view's table. A candidate's count is the sum over the views
    of the metrics on which it is better than the median classical method of that view (out of 10 per view);
    ties go to the lower mean over the views of its mean rank in the goal's pool, then to the earlier
    candidate. With one view it is :func:`inner_choice`. Returns ``(chosen, {candidate: count})``."""
    counts = {m: sum(len(above_median_classical(t, m)) for t in tables.values()) for m in candidates}
    rank = {m: float(np.mean([inner_mean_rank(t, m, peers) for t in tables.values()])) for m in candidates}
    best = max(candidates, key=lambda m: (counts[m], -rank[m], -candidates.index(m)))
    return best, counts


def inner_mean_rank(table: dict, row: str, peers: dict | None = None) -> float:
    """``row``'s mean rank among the classical rows of ``table`` (and the projected published rows of
    ``peers``, when given): :func:`inner_choice`'s tie-break."""
    classical = [m for m in CLASSICAL if m in table]
    if peers and "max" in table:
        return mean_ranks(peer_targets.peer_pool(table, row, peers, classical))[row]
    return mean_ranks({k: table[k] for k in classical + [row]})[row]

def family(row: str) -> str:
    """The method of a table row: ``"light-fid"`` -> ``"light"`` (a network's config variant ``NET-TAG``)."""
    return row.partition("-")[0]


def row_method(row: str) -> tuple[str, str | None]:
    """``(method to fuse with, tag of the fold weights)`` of a table row: a network row ``NET-TAG`` scores
    the fold weights ``<pair>_NET-TAG.pt``; a classical row is its own method, without weights."""
    net, _, tag = row.partition("-")
    return (net, tag or None) if net in NETWORKS else (row, None)


def without_own_variants(table: dict, row: str) -> dict:
    """``table`` without the other config variants of ``row``'s network (how a network row is ranked)."""
    return {m: v for m, v in table.items() if m == row or family(m) != family(row)}


#: part of every cache key: what ``medfuse fuse`` composes changed (``hot1``: the hot-region floor of
#: :mod:`medfuse.hotspots`, session 11; ``hot2``: its coarse-to-fine colour lookup), so scores cached before are not reused

def goal_default(table: dict, net: str) -> tuple[bool, str]:
    """Issue 14's goal for ``net``, ranked among the classical methods and the other networks (config
    variants of the same network, ``NET-TAG``, are left out of its ranking)."""
    table = without_own_variants(table, net)
    rk = ranks(table)
    first = sum(rk[net][k] == 1 for k in METRIC_KEYS)
    last = [k for k in METRIC_KEYS if rk[net][k] == len(table)]
    best_classical = {k: max(table[m][k] for m in CLASSICAL if m in table) for k in FIDELITY_KEYS}
    fid = {k: table[net][k] >= 0.98 * best_classical[k] for k in FIDELITY_KEYS}
    ok = first >= 6 and not last and all(fid.values())
    fid_txt = ", ".join(f"{k} {table[net][k]:.4g} vs {0.98 * best_classical[k]:.4g} {'ok' if fid[k] else 'MISS'}"
                        for k in FIDELITY_KEYS)
    return ok, (f"first on {first}/10 (need >= 6), last on {last or 'none'}; fidelity (>= best classical - 2%): "
                f"{fid_txt} -> {'MET' if ok else 'NOT MET'}")


def above_median_classical(table: dict, row: str) -> list[str]:
    """The metrics on which ``row`` is better than the median of the classical methods in ``table``."""
    return [k for k in METRIC_KEYS if table[row][k] > statistics.median(table[m][k] for m in CLASSICAL if m in table)]


def goal_family(table: dict, net: str) -> tuple[bool, str]:
    better = above_median_classical(table, net)
    ok = len(better) >= 6
    return ok, f"better than the median classical method on {len(better)}/10 ({', '.join(better)}) -> " \
               f"{'MET' if ok else 'NOT MET'}"


DECISION_RULE = ("the network that meets the goal on the folds (first on >= 6/10, never last, Qabf/VIF/SSIM >= "
                 "best classical - 2%; several: most firsts, then fewest lasts); else the classical method with the "
                 "most firsts among the classical methods (ranked among themselves), ties by fewest lasts, then "
                 "lowest mean rank")


DECISION_RULE_PEERS = ("the network that meets issue 24's goal (benchmarks/peer_targets.py: mean rank below every other "
                       "row among the classical rows and the published rows projected onto the folds, never the worst, "
                       "Qabf/VIF/SSIM >= 98% of the pool's best; several: the lowest mean rank); else the classical "
                       "method with the most firsts among the classical methods, ties by fewest lasts, then lowest "
                       "mean rank, unless a network row meets more of the goal's five clauses (mean rank, never the "
                       "worst, Qabf, VIF, SSIM) than that classical method does in the same pool (several: the most "
                       "clauses, then the lowest mean rank); on a tie the classical method stays")
ROBUST_CLAUSE = ("with --robust (session 12): a further clause, issue 24's item 2: the row's mean rank is not behind "
                 "max's in any robustness table of benchmarks/quality_robust.py --json (the five perturbations and the "
                 "second collection; the opt-in colour-map view is not one of them); max meets it by definition, a "
                 "row absent from the tables does not")
KEEP3D_CLAUSE = ("with --keep3d (session 12): a sixth clause in that count, issue 24's item 5: the method keeps both "
                 "scans of the task's real 3D template (benchmarks/quality_keep3d.py: each source's top-5% contrast "
                 ">= 0.7 with PET and SPECT, 0.6 with CT); a network row is judged by its family's shipped weights")


def robust_clause(row: str, tables: dict) -> bool:
    """:data:`ROBUST_CLAUSE` for ``row`` over one task's robustness tables (``{kind: {row: metrics}}``)."""
    from perturbations import RECOLOURINGS

    if row == "max":
        return True
    seen = [t for kind, t in tables.items() if kind not in RECOLOURINGS and row in t and "max" in t]
    return bool(seen) and all(mean_ranks(t)[row] <= mean_ranks(t)["max"] for t in seen)


def default_decision(table: dict, peers: dict | None = None, keep3d: dict | None = None,
                     robust: dict | None = None) -> dict:
    """The task's default from the cross-validated means (:data:`DECISION_RULE`).

    Returns ``{"default", "kind" ("network" or "classical"), "network_weights" (the NET-TAG row whose
    fold config to ship, networks only), "meets_goal" (network rows that meet it), "firsts", "lasts",
    "rule"}``; firsts and lasts of the candidates: the goal's count for networks (among the classical
    methods and the other networks), among the classical methods for classical methods. ``keep3d``: the task's
    ``{method: {"met": bool, ...}}`` of ``quality_keep3d.py --json``, a sixth clause of the second tier
    (:data:`KEEP3D_CLAUSE`). ``robust``: the task's robustness tables ``{kind: {row: metrics}}`` of
    ``quality_robust.py --json``, one more clause (:data:`ROBUST_CLAUSE`).
    """

    def counts(sub: dict) -> tuple[dict, dict, dict]:
        rk, n = ranks(sub), len(sub)
        return ({m: sum(rk[m][k] == 1 for k in METRIC_KEYS) for m in sub},
                {m: sum(rk[m][k] == n for k in METRIC_KEYS) for m in sub},
                {m: float(np.mean([rk[m][k] for k in METRIC_KEYS])) for m in sub})

    nets = [m for m in table if family(m) in NETWORKS]
    if peers and "max" in table:  # issue 24's goal: ranked with the classical rows and the published rows
        goal = {m: peer_targets.goal_peer(table, m, peers, CLASSICAL) for m in nets}
        meets = sorted((m for m in nets if goal[m][0]), key=lambda m: goal[m][2])
        if meets:
            return {"default": family(meets[0]), "kind": "network", "network_weights": meets[0], "meets_goal": meets,
                    "mean_rank_with_published": {m: goal[m][2] for m in meets}, "firsts": {}, "lasts": {},
                    "rule": DECISION_RULE_PEERS}
    else:
        meets = [m for m in nets if goal_default(table, m)[0]]
    if meets:
        firsts, lasts, mean_rank = {}, {}, {}
        for m in meets:  # ranked as in the goal: without the network's own config variants
            f, la, mr = counts(without_own_variants(table, m))
            firsts[m], lasts[m], mean_rank[m] = f[m], la[m], mr[m]
        best = sorted(meets, key=lambda m: (-firsts[m], lasts[m], mean_rank[m]))[0]
        kind, name = "network", family(best)
    else:
        classical = {m: table[m] for m in CLASSICAL if m in table}
        firsts, lasts, mean_rank = counts(classical) if classical else ({}, {}, {})
        best = sorted(classical, key=lambda m: (-firsts[m], lasts[m], mean_rank[m]))[0] if classical else None
        kind, name = "classical", best
        if peers and "max" in table and best is not None and nets:
            # no network meets the goal: the row that meets more of its clauses, the classical choice on a tie
            met = {m: peer_targets.goal_clauses(table, m, peers, CLASSICAL) for m in [best, *nets]}
            if keep3d is not None:  # the 3D clause: a network row by its family's shipped weights
                for m, (c, _, _) in met.items():
                    c["3D keep"] = bool(keep3d.get(family(m), {}).get("met", False))
            if robust is not None:
                for m, (c, _, _) in met.items():
                    c["robust"] = robust_clause(m, robust)
            score = {m: (sum(c.values()), -r) for m, (c, _, r) in met.items()}
            top = max(nets, key=lambda m: score[m])
            clauses = {m: [k for k, v in c.items() if v] for m, (c, _, _) in met.items()}
            rule = (DECISION_RULE_PEERS + ("; " + KEEP3D_CLAUSE if keep3d is not None else "")
                    + ("; " + ROBUST_CLAUSE if robust is not None else ""))
            if score[top][0] > score[best][0]:
                return {"default": family(top), "kind": "network", "network_weights": top, "meets_goal": [],
                        "clauses_met": clauses, "firsts": firsts, "lasts": lasts, "rule": rule}
            return {"default": best, "kind": "classical", "network_weights": None, "meets_goal": [],
                    "clauses_met": clauses, "firsts": firsts, "lasts": lasts, "rule": rule}
    return {"default": name, "kind": kind, "network_weights": best if kind == "network" else None,
            "meets_goal": meets, "firsts": firsts, "lasts": lasts,
            "rule": DECISION_RULE_PEERS if peers and "max" in table else DECISION_RULE}
