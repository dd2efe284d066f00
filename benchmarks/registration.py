"""Registration accuracy and speed benchmark on digital phantom cases with a known misalignment.

Accuracy: for each moving modality (CT, PET, SPECT), ``--cases`` seeded phantom cases
(:func:`medfuse.phantom.make_case`: the MRI reference, 1.5 mm, and the moving scan on its own grid,
voxel size and field of view, misaligned by rotations up to +-15 degrees per axis and translations up
to +-20 mm). :func:`medfuse.registration.register` runs with its self-checks on; the target
registration error (TRE) is measured at 200 points inside the brain. Goals (issue 3): mean TRE <=
1.0 mm CT, 2.0 mm PET, 3.0 mm SPECT; the worst case's mean TRE <= 2x the goal; every case within 2x
its goal or stopped by a ``RegistrationError`` (no silent failure).

Speed: a 256x256x180 MRI with a 512x512x120 CT and with a 128x128x90 PET, on ``--threads`` (2)
SimpleITK threads; wall and CPU time of ``register()`` (imports warmed up first).

    python benchmarks/registration.py [--cases 10] [--modalities ct,pet,spect] [--transform rigid]
           [--threads 2] [--no-timing] [--timing-only] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GOALS_MM = {"ct": 1.0, "pet": 2.0, "spect": 3.0}
TIMING_CASES = {
    "ct": dict(mri_shape=(256, 256, 180), moving_shape=(512, 512, 120)),
    "pet": dict(mri_shape=(256, 256, 180), moving_shape=(128, 128, 90)),
}
TIME_GOAL_S = 15.0


def case_tre(case, result) -> np.ndarray:
    """TRE (mm) at the case's brain target points; exact for non-linear transforms too."""
    points = case.target_points(200)
    if result.transform.IsLinear():
        return case.tre(result.reference_to_moving_ras, points)
    truth = points @ case.reference_to_moving[:3, :3].T + case.reference_to_moving[:3, 3]
    return np.linalg.norm(result.transform_points(points) - truth, axis=1)


def run_accuracy(modalities, n_cases: int, transform: str) -> list[dict]:
    from medfuse.errors import RegistrationError
    from medfuse.phantom import make_case
    from medfuse.registration import register

    rows = []
    for modality in modalities:
        for seed in range(n_cases):
            case = make_case(modality, seed=seed)
            row = {"modality": modality, "seed": seed, "rotation_deg": case.meta["rotation_deg"],
                   "translation_mm": case.meta["translation_mm"]}
            t0 = time.perf_counter()
            try:
                result = register(case.mri, case.moving, transform=transform)
            except RegistrationError as err:
                row.update(raised=True, error=str(err), elapsed_s=time.perf_counter() - t0)
            else:
                tre = case_tre(case, result)
                row.update(raised=False, tre_mean=float(tre.mean()), tre_max=float(tre.max()),
                           dice=result.dice, elapsed_s=result.elapsed_s)
            rows.append(row)
            status = ("RegistrationError" if row["raised"]
                      else f"TRE mean {row['tre_mean']:.2f} max {row['tre_max']:.2f} mm")
            logging.info("%s seed %d: %s (%.1f s)", modality, seed, status, row["elapsed_s"])
    return rows


def summarize(rows: list[dict]) -> list[dict]:
    table = []
    for modality in dict.fromkeys(r["modality"] for r in rows):
        goal = GOALS_MM[modality]
        mine = [r for r in rows if r["modality"] == modality]
        ok = [r for r in mine if not r["raised"]]
        means = np.array([r["tre_mean"] for r in ok]) if ok else np.array([np.nan])
        maxima = np.array([r["tre_max"] for r in ok]) if ok else np.array([np.nan])
        silent = [r for r in ok if r["tre_mean"] > 2 * goal]
        table.append({
            "modality": modality, "cases": len(mine), "raised": len(mine) - len(ok),
            "tre_mean": float(np.mean(means)), "tre_worst_case_mean": float(np.max(means)),
            "tre_max_point": float(np.max(maxima)), "goal": goal,
            "time_mean_s": float(np.mean([r["elapsed_s"] for r in mine])),
            "pass_mean": bool(np.mean(means) <= goal), "pass_worst": bool(np.max(means) <= 2 * goal),
            "silent_failures": len(silent),
        })
    return table


def run_timing(threads: int, transform: str) -> list[dict]:
    import SimpleITK as sitk

    from medfuse.phantom import make_case
    from medfuse.registration import register

    out = []
    for modality, shapes in TIMING_CASES.items():
        case = make_case(modality, seed=100, **shapes)
        wall0, cpu0 = time.perf_counter(), time.process_time()
        result = register(case.mri, case.moving, transform=transform)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        tre = case_tre(case, result)
        out.append({"modality": modality, "mri_shape": list(case.mri.shape), "moving_shape": list(case.moving.shape),
                    "threads": threads, "wall_s": wall, "cpu_s": cpu, "tre_mean": float(tre.mean()),
                    "goal_s": TIME_GOAL_S, "sitk_threads": sitk.ProcessObject_GetGlobalDefaultNumberOfThreads()})
    return out


# ----------------------------------------------------------------------------------------------
# calibration of the self-checks: correct cases from several generators (no false alarm allowed)
# and wrong ones (every one must be refused)

REAL_DIR = Path(__import__("os").environ.get("MEDFUSE_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))
TEMPLATE_MOVING = {"spm_PET.nii": ("PT", "pet"), "spm_SPECT.nii": ("NM", "spect"),
                   "spm_Transm.nii": ("CT", "pet"), "clinical_scct.nii": ("CT", "ct")}
#: (spacing mm, axis codes, field of view mm) of the grids the templates are moved onto
TEMPLATE_GRIDS = [((1.5, 1.5, 1.5), "LPS", (200, 230, 200)), ((2.5, 2.5, 3.0), "RAS", (190, 220, 180)),
                  ((1.2, 1.2, 4.0), "LPI", (210, 240, 170)), ((3.0, 3.0, 3.0), "PIL", (200, 200, 200)),
                  ((2.0, 2.0, 2.0), "ASL", (190, 240, 190)), ((1.8, 1.8, 2.4), "RPS", (220, 220, 160))]
PHANTOM_MODALITY = {"ct": "ct", "pet": "pet", "spect": "spect"}


class Case:
    """One registration problem: ``truth`` maps reference RAS to moving RAS (None: no truth);
    ``expect`` is "accept", "refuse", or "tre" (refuse exactly when the result is wrong)."""

    def __init__(self, source, name, reference, moving, truth, points, goal, expect, role, start=None):
        self.source, self.name, self.reference, self.moving = source, name, reference, moving
        self.truth, self.points, self.goal, self.expect, self.role, self.start = (
            truth, points, goal, expect, role, start)


def _head_center(volume) -> np.ndarray:
    from medfuse.intensity.mask import head_mask
    from medfuse.registration.checks import head_centroid

    return head_centroid(volume, head_mask(volume))


def _resample_onto(volume, truth, spacing, axes, fov_mm, center_mm, modality=None, name="moved"):
    """``volume`` moved by ``truth`` (a point p of it appears at truth @ p) onto a new grid."""
    from scipy import ndimage

    from medfuse.phantom.geometry import grid_affine
    from medfuse.volume import Volume

    spacing = np.asarray(spacing, dtype=np.float64)
    shape = tuple(int(round(f / s)) for f, s in zip(fov_mm, spacing))
    affine = grid_affine(shape, spacing, axes, center_mm)
    to_source = np.linalg.inv(volume.affine) @ np.linalg.inv(truth) @ affine
    idx = np.indices(shape, dtype=np.float64).reshape(3, -1)
    src = to_source[:3, :3] @ idx + to_source[:3, 3:4]
    background = float(np.percentile(volume.array, 1))
    arr = ndimage.map_coordinates(volume.array.astype(np.float32), src, order=1, cval=background)
    return Volume(arr.reshape(shape).astype(np.float32), affine, modality or volume.modality, {}, name)


def _brain_points(volume, n=200, seed=0) -> np.ndarray:
    """Points well inside the head (the head mask eroded by 20 mm)."""
    from scipy import ndimage

    from medfuse.intensity.mask import head_mask

    mask = head_mask(volume)
    inner = ndimage.binary_erosion(mask, iterations=max(1, int(round(20.0 / float(np.min(volume.spacing))))))
    vox = np.argwhere(inner if inner.sum() > n else mask)
    pick = np.random.default_rng(seed).choice(len(vox), size=min(n, len(vox)), replace=False)
    return volume.world_coordinates(vox[pick].astype(np.float64))


def _moved_header(volume, matrix, name):
    from medfuse.volume import Volume

    return Volume(volume.array, matrix @ volume.affine, volume.modality, dict(volume.meta), name)


def _mirror_header(volume, axis, center, name):
    m = np.eye(4)
    m[axis, axis] = -1.0
    m[axis, 3] = 2.0 * center[axis]
    return _moved_header(volume, m, name)


def _blob(like, seed, name, modality="PT"):
    """A random smooth blob about the size of a head on ``like``'s grid (not a head)."""
    from scipy import ndimage

    from medfuse.volume import Volume

    rng = np.random.default_rng(seed)
    world = like.world_coordinates(np.indices(like.shape).reshape(3, -1).T.astype(np.float64))
    centre = like.world_coordinates((np.asarray(like.shape, dtype=np.float64)[None] - 1) / 2)[0]
    semi = rng.uniform(55, 85, 3)
    inside = (((world - centre) / semi) ** 2).sum(axis=1) < 1.0
    texture = ndimage.gaussian_filter(rng.standard_normal(like.shape), sigma=15.0 / float(np.min(like.spacing)))
    texture = (texture - texture.min()) / (np.ptp(texture) + 1e-9)
    arr = np.where(inside.reshape(like.shape), 0.3 + texture, 0.0)
    arr = ndimage.gaussian_filter(arr, sigma=4.0 / float(np.min(like.spacing)))
    return Volume(arr.astype(np.float32), like.affine, modality, {}, name)


def _cylinder_ct(like, name):
    """A CT of a water cylinder with bone and air inserts (a QA phantom: not a head), HU."""
    from medfuse.volume import Volume

    world = like.world_coordinates(np.indices(like.shape).reshape(3, -1).T.astype(np.float64))
    centre = like.world_coordinates((np.asarray(like.shape, dtype=np.float64)[None] - 1) / 2)[0]
    d = world - centre
    r = np.hypot(d[:, 0], d[:, 1])
    arr = np.full(len(d), -1000.0)
    arr[(r < 100) & (np.abs(d[:, 2]) < 80)] = 0.0
    for k, (x, y, hu) in enumerate([(50, 0, 1000.0), (-50, 0, -900.0), (0, 50, 300.0), (0, -50, 100.0)]):
        arr[(np.hypot(d[:, 0] - x, d[:, 1] - y) < 15) & (np.abs(d[:, 2]) < 70)] = hu
    noise = np.random.default_rng(0).normal(0, 10, len(d))
    return Volume((arr + noise).reshape(like.shape).astype(np.float32), like.affine, "CT", {}, name)


def phantom_cases(seeds) -> list[Case]:
    from medfuse.phantom import make_case

    out = []
    for modality in ("ct", "pet", "spect"):
        for seed in seeds:
            c = make_case(modality, seed=seed)
            role = "report"  # not seen while choosing the thresholds
            out.append(Case(f"phantom {modality}", f"{modality} seed {seed}", c.mri, c.moving, c.reference_to_moving,
                            c.target_points(200), GOALS_MM[modality], "accept", role))
    return out


def phantom_wrong_cases() -> list[Case]:
    from medfuse.phantom import HEAD_CENTER_MM, make_case, rigid_matrix

    c = make_case("pet", seed=20, rotation_deg=0, translation_mm=0)
    ct = make_case("ct", seed=21, rotation_deg=0, translation_mm=0)
    centre = np.asarray(HEAD_CENTER_MM, dtype=np.float64)
    out = []
    for label, case in (("pet", c), ("ct", ct)):
        for rot in ((90, 0, 0), (0, 0, 180)) if label == "pet" else ((0, 90, 0),):
            m = rigid_matrix(rot, (0, 0, 0), centre)
            out.append(Case("wrong", f"phantom {label} header rotated {rot}", case.mri,
                            _moved_header(case.moving, m, "rotated"), None, None, None, "refuse",
                            "calibrate" if rot == (90, 0, 0) and label == "pet" else "report"))
        out.append(Case("wrong", f"phantom {label} header shifted 150 mm (x)", case.mri,
                        _moved_header(case.moving, rigid_matrix((0, 0, 0), (150, 0, 0)), "shifted"), None, None, None,
                        "refuse", "report"))
        out.append(Case("wrong", f"phantom {label} header mirrored A-P", case.mri,
                        _mirror_header(case.moving, 1, centre, "mirrored"), None, None, None, "refuse", "report"))
    out.append(Case("wrong", "phantom: random smooth blob (PET)", c.mri, _blob(c.moving, 1, "blob"), None, None,
                    None, "refuse", "report"))
    out.append(Case("wrong", "phantom: CT of a cylinder phantom", ct.mri, _cylinder_ct(ct.moving, "cylinder"), None,
                    None, None, "refuse", "report"))
    # optimizer started far from the answer (register's start_ras); refused exactly when it ends wrong
    for k, (rot, shift) in enumerate((((70, 0, 0), (0, 0, 0)), ((0, 0, 0), (0, 0, 70)), ((0, 60, 0), (40, 0, 0)))):
        case = make_case("pet", seed=30 + k)
        start = case.reference_to_moving @ rigid_matrix(rot, shift, centre)
        out.append(Case("far start", f"phantom pet seed {30 + k}, start off by {rot} deg {shift} mm", case.mri,
                        case.moving, case.reference_to_moving, case.target_points(200), GOALS_MM["pet"], "tre",
                        "report", start))
    return out


def template_cases(seeds, real_dir=REAL_DIR) -> tuple[list[Case], list[Case]]:
    from medfuse.io import load_volume
    from medfuse.phantom import rigid_matrix

    folder = Path(real_dir) / "templates"
    t1 = load_volume(folder / "spm_T1.nii", modality="MR")
    centre = _head_center(t1)
    points = _brain_points(t1)
    good, wrong = [], []
    movers = {name: load_volume(folder / name, modality=mod) for name, (mod, _) in TEMPLATE_MOVING.items()}
    for name, vol in movers.items():  # the aligned templates as they are
        good.append(Case(f"templates {TEMPLATE_MOVING[name][1]}", f"{name} aligned", t1, vol, np.eye(4), points,
                         GOALS_MM[TEMPLATE_MOVING[name][1]], "accept", "calibrate"))
    for seed in seeds:
        for k, (name, vol) in enumerate(movers.items()):
            rng = np.random.default_rng(1000 + 10 * seed + k)
            truth = rigid_matrix(rng.uniform(-15, 15, 3), rng.uniform(-20, 20, 3), centre)
            spacing, axes, fov = TEMPLATE_GRIDS[(seed + k) % len(TEMPLATE_GRIDS)]
            moved = _resample_onto(vol, truth, spacing, axes, fov, truth[:3, :3] @ centre + truth[:3, 3],
                                   name=f"{name} seed {seed}")
            good.append(Case(f"templates {TEMPLATE_MOVING[name][1]}", f"{name} seed {seed} ({axes} {spacing})", t1, moved, truth, points,
                             GOALS_MM[TEMPLATE_MOVING[name][1]], "accept", "calibrate" if seed < 2 else "report"))
    pet, scct = movers["spm_PET.nii"], movers["clinical_scct.nii"]
    for label, vol in (("PET", pet), ("CT", scct), ("SPECT", movers["spm_SPECT.nii"])):
        for rot in ((90, 0, 0), (0, 0, 180)) if label != "SPECT" else ((0, 90, 0),):
            wrong.append(Case("wrong", f"template {label} header rotated {rot}", t1,
                              _moved_header(vol, rigid_matrix(rot, (0, 0, 0), centre), "rotated"), None, None, None,
                              "refuse", "calibrate"))
        if label == "SPECT":
            continue
        wrong.append(Case("wrong", f"template {label} header shifted 150 mm (y)", t1,
                          _moved_header(vol, rigid_matrix((0, 0, 0), (0, 150, 0)), "shifted"), None, None, None,
                          "refuse", "calibrate"))
        wrong.append(Case("wrong", f"template {label} header mirrored S-I", t1,
                          _mirror_header(vol, 2, centre, "mirrored"), None, None, None, "refuse", "calibrate"))
    wrong.append(Case("wrong", "template: random smooth blob (PET)", t1, _blob(pet, 2, "blob"), None, None, None,
                      "refuse", "calibrate"))
    wrong.append(Case("wrong", "template: random smooth blob (SPECT)", t1, _blob(pet, 3, "blob", "NM"), None, None,
                      None, "refuse", "calibrate"))
    wrong.append(Case("wrong", "template: CT of a cylinder phantom", t1, _cylinder_ct(scct, "cylinder"), None, None,
                      None, "refuse", "calibrate"))
    for k, (rot, shift) in enumerate((((0, 0, 70), (0, 0, 0)), ((0, 0, 0), (0, 70, 0)), ((60, 0, 0), (0, 0, 40)))):
        name = list(movers)[k]
        start = rigid_matrix(rot, shift, centre)
        wrong.append(Case("far start", f"template {name} aligned, start off by {rot} deg {shift} mm", t1,
                          movers[name], np.eye(4), points, GOALS_MM[TEMPLATE_MOVING[name][1]], "tre", "report", start))
    return good, wrong


def _read_matrix(path) -> np.ndarray:
    return np.loadtxt(path).reshape(4, 4)


def tcga_cases(real_dir=REAL_DIR) -> tuple[list[Case], list[Case]]:
    from medfuse.io import load_volume
    from medfuse.phantom import rigid_matrix

    folder = Path(real_dir) / "tcga_fg6692_native"
    t1c = load_volume(folder / "native" / "TCGA-FG-6692_t1c_native.nii.gz", modality="MR")
    points = _brain_points(t1c)
    centre = _head_center(t1c)
    good, wrong = [], []
    for seq in ("t1", "t2", "flair"):
        moving = load_volume(folder / "native" / f"TCGA-FG-6692_{seq}_native.nii.gz", modality="MR")
        truth = _read_matrix(folder / "reference_rigid" / f"co__t1c__{seq}.txt")
        good.append(Case("tcga-native", f"{seq} -> t1c", t1c, moving, truth, points, 2.0, "accept", "calibrate"))
        if seq == "t2":
            for rot in ((90, 0, 0), (0, 0, 90)):
                wrong.append(Case("wrong", f"tcga {seq} header rotated {rot}", t1c,
                                  _moved_header(moving, rigid_matrix(rot, (0, 0, 0), centre), "rotated"), None, None,
                                  None, "refuse", "calibrate"))
            wrong.append(Case("wrong", f"tcga {seq} header shifted 150 mm (z)", t1c,
                              _moved_header(moving, rigid_matrix((0, 0, 0), (0, 0, 150)), "shifted"), None, None,
                              None, "refuse", "calibrate"))
    return good, wrong


def run_case(case: Case) -> dict:
    """Register with the checks on, as a user would (a refusal stops at the first failed check), and score it."""
    from medfuse.errors import RegistrationError
    from medfuse.registration import register

    row = {"source": case.source, "name": case.name, "expect": case.expect, "role": case.role}
    t0 = time.perf_counter()
    try:
        result = register(case.reference, case.moving, start_ras=case.start)
    except RegistrationError as err:
        row.update(refused=True, failures=[str(err)], elapsed_s=time.perf_counter() - t0)
    else:
        row.update(refused=bool(result.check_failures), failures=list(result.check_failures),
                   elapsed_s=result.elapsed_s, dice=result.dice, **result.quality)
        if case.truth is not None:
            est, truth, pts = result.reference_to_moving_ras, case.truth, case.points
            err = np.linalg.norm(pts @ (est - truth)[:3, :3].T + (est - truth)[:3, 3], axis=1)
            row.update(tre_mean=float(err.mean()), tre_max=float(err.max()))
        if case.expect == "tre" and row["refused"] and case.truth is not None:
            # refused: was the result really wrong? (the same run with the checks overridden)
            try:
                result = register(case.reference, case.moving, checks=False, start_ras=case.start)
            except RegistrationError:
                pass
            else:
                est, truth, pts = result.reference_to_moving_ras, case.truth, case.points
                err = np.linalg.norm(pts @ (est - truth)[:3, :3].T + (est - truth)[:3, 3], axis=1)
                row.update(tre_mean=float(err.mean()), tre_max=float(err.max()))
    if case.expect == "tre":
        wrong = "tre_mean" not in row or row["tre_mean"] > 2 * case.goal
        row["expect"] = "refuse" if wrong else "accept"
    row["ok"] = row["refused"] == (row["expect"] == "refuse")
    if case.goal is not None and row["expect"] == "accept" and "tre_mean" in row:
        row["goal"] = case.goal
    logging.info("%-12s %-55s %s%s %s (%.1f s) %s", case.source, case.name[:55],
                 "REFUSED" if row["refused"] else "accepted", "" if row["ok"] else " (WRONG)",
                 f"TRE {row['tre_mean']:.2f}" if "tre_mean" in row else "",
                 row["elapsed_s"], {k: round(row[k], 4) for k in ("basin_rise", "basin_min_rise", "rival_gain",
                                                                   "rival_coarse_gain", "rival_distance_mm")
                                    if k in row})
    return row


def calibration_cases(sources, phantom_seeds, template_seeds) -> tuple[list[Case], list[str]]:
    cases, notes = [], []
    if "phantom" in sources:
        cases += phantom_cases(phantom_seeds)
    real = (REAL_DIR / "README.md").is_file()
    if "templates" in sources:
        if real:
            good, wrong = template_cases(template_seeds)
            cases += good + (wrong if "wrong" in sources else [])
        else:
            notes.append(f"templates: skipped, real data not found at {REAL_DIR} (set MEDFUSE_REAL_DATA)")
    if "tcga" in sources:
        if real:
            good, wrong = tcga_cases()
            cases += good + (wrong if "wrong" in sources else [])
        else:
            notes.append(f"tcga-native: skipped, real data not found at {REAL_DIR}")
    if "wrong" in sources:
        cases += phantom_wrong_cases()
    return cases, notes


def summarize_calibration(rows: list[dict]) -> list[dict]:
    table = []
    groups = {}
    for r in rows:
        key = r["source"] if r["source"] not in ("wrong", "far start") else r["source"]
        groups.setdefault((key, r["role"]), []).append(r)
    for (source, role), mine in groups.items():
        accept = [r for r in mine if r["expect"] == "accept"]
        refuse = [r for r in mine if r["expect"] == "refuse"]
        tre = [r["tre_mean"] for r in accept if "tre_mean" in r]
        over = [r for r in accept if "tre_mean" in r and "goal" in r and r["tre_mean"] > 2 * r["goal"]]
        table.append({
            "source": source, "role": role, "cases": len(mine),
            "should_accept": len(accept), "false_alarms": sum(r["refused"] for r in accept),
            "should_refuse": len(refuse), "detected": sum(r["refused"] for r in refuse),
            "missed": sum(not r["refused"] for r in refuse),
            "tre_mean": float(np.mean(tre)) if tre else float("nan"),
            "tre_worst": float(np.max(tre)) if tre else float("nan"), "over_2x_goal": len(over),
            "time_mean_s": float(np.mean([r["elapsed_s"] for r in mine])),
            "time_max_s": float(np.max([r["elapsed_s"] for r in mine])),
        })
    return table


def print_calibration(rows, table, notes) -> bool:
    print("\nSelf-check calibration (rigid, checks on; a refusal stops at the first failed check; 'calibrate' rows "
          "chose the thresholds, 'report' rows did not)\n")
    print("| source | role | cases | should accept | false alarms | should refuse | detected | missed | mean TRE | "
          "worst TRE | mean / max time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    good = True
    for t in table:
        good &= t["false_alarms"] == 0 and t["missed"] == 0 and t["over_2x_goal"] == 0
        tre = "-" if np.isnan(t["tre_mean"]) else f"{t['tre_mean']:.2f} mm"
        worst = "-" if np.isnan(t["tre_worst"]) else f"{t['tre_worst']:.2f} mm"
        print(f"| {t['source']} | {t['role']} | {t['cases']} | {t['should_accept']} | {t['false_alarms']} | "
              f"{t['should_refuse']} | {t['detected']} | {t['missed']} | {tre} | {worst} | "
              f"{t['time_mean_s']:.1f} / {t['time_max_s']:.1f} s |")
    for note in notes:
        print(f"  note: {note}")
    print("\nPer case (basin: mean relative worsening of MI at 6 mm / 6 deg; rival: gain of the best refined far "
          "start, distance)\n")
    print("| source | case | expected | outcome | TRE mean | basin | rival gain | rival dist | first failure |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        tre = f"{r['tre_mean']:.2f}" if "tre_mean" in r else "-"
        outcome = ("refused" if r["refused"] else "accepted") + ("" if r["ok"] else " **WRONG**")
        first = (r["failures"][0].split(": ", 1)[-1][:90] if r["failures"] else "").replace("|", "/")
        print(f"| {r['source']} | {r['name']} | {r['expect']} | {outcome} | {tre} | "
              f"{r.get('basin_rise', float('nan')):.4f} | {r.get('rival_gain', float('nan')):+.4f} | "
              f"{r.get('rival_distance_mm', float('nan')):.1f} | {first} |")
    return good


def main(argv=None) -> int:
    from medfuse.registration import TransformType

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10, help="seeded cases per modality (default 10)")
    parser.add_argument("--modalities", default="ct,pet,spect")
    parser.add_argument("--transform", default="rigid", choices=[t.value for t in TransformType])
    parser.add_argument("--threads", type=int, default=2, help="SimpleITK threads (default 2)")
    parser.add_argument("--no-timing", action="store_true", help="skip the large-volume timing")
    parser.add_argument("--timing-only", action="store_true", help="only the large-volume timing")
    parser.add_argument("--json", default=None, help="also write all numbers to this JSON file")
    parser.add_argument("--calibration", default="phantom,templates,tcga,wrong",
                        help="sources of the self-check calibration (phantom, templates, tcga, wrong; '' to skip)")
    parser.add_argument("--calibration-seeds", type=int, default=4,
                        help="seeds per template (0-1 were seen while choosing the thresholds) (default 4)")
    parser.add_argument("--no-accuracy", action="store_true", help="skip the per-modality phantom TRE table")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every case")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")

    import SimpleITK as sitk

    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(args.threads)
    import scipy.ndimage  # noqa: F401  (warm imports: the timing is of register(), not of Python start-up)

    report: dict = {"transform": args.transform, "threads": args.threads}
    ok = True
    if not args.timing_only and not args.no_accuracy:
        modalities = [m.strip() for m in args.modalities.split(",") if m.strip()]
        rows = run_accuracy(modalities, args.cases, args.transform)
        table = summarize(rows)
        report.update(cases=rows, summary=table)
        print(f"\nRegistration accuracy ({args.transform}; TRE at 200 brain points per case; mm)\n")
        print("| moving | cases | raised | mean TRE | worst case mean | max point | goal (mean / worst) | "
              "mean time | result |")
        print("|---|---|---|---|---|---|---|---|---|")
        for t in table:
            good = t["pass_mean"] and t["pass_worst"] and t["silent_failures"] == 0
            ok &= good
            print(f"| {t['modality']} | {t['cases']} | {t['raised']} | {t['tre_mean']:.2f} | "
                  f"{t['tre_worst_case_mean']:.2f} | {t['tre_max_point']:.2f} | "
                  f"{t['goal']:.1f} / {2 * t['goal']:.1f} | "
                  f"{t['time_mean_s']:.1f} s | {'PASS' if good else 'FAIL'} |")
        for r in rows:
            if r["raised"]:
                print(f"  {r['modality']} seed {r['seed']}: RegistrationError: {r['error']}")
    sources = [s.strip() for s in args.calibration.split(",") if s.strip()]
    if sources and not args.timing_only:
        cases, notes = calibration_cases(sources, range(args.cases), range(args.calibration_seeds))
        rows = [run_case(c) for c in cases]
        table = summarize_calibration(rows)
        report.update(calibration=rows, calibration_summary=table, notes=notes)
        ok &= print_calibration(rows, table, notes)
    if not args.no_timing:
        timing = run_timing(args.threads, args.transform)
        report["timing"] = timing
        print(f"\nSpeed ({args.transform}, {args.threads} SimpleITK threads; goal <= {TIME_GOAL_S:g} s)\n")
        print("| MRI | moving | wall | CPU | TRE mean | result |")
        print("|---|---|---|---|---|---|")
        for t in timing:
            good = t["wall_s"] <= TIME_GOAL_S
            ok &= good
            print(f"| {'x'.join(map(str, t['mri_shape']))} | {t['modality']} {'x'.join(map(str, t['moving_shape']))} | "
                  f"{t['wall_s']:.1f} s | {t['cpu_s']:.1f} s | {t['tre_mean']:.2f} mm | {'PASS' if good else 'FAIL'} |")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=float))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
