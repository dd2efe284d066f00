"""Fast from the first call: the cost of medfuse commands run as a user runs them (whole process).

Every figure is a whole ``medfuse`` process (the installed console script, a fresh interpreter),
measured by the kernel's accounting of the finished child (``os.wait4``: user + system CPU time of
all its threads, wall time, peak resident memory). Commands run interleaved, round after round
(the order rotates each round); each figure is the median over rounds, and every ratio is taken
within one round (both sides measured minutes apart at most, under the same machine load) and
then the median over rounds, so that the noise of a shared machine cancels.

Measured:

* ``import torch``: ``python -c "import torch"``, the floor of any torch tool (baseline).
* ``fuse 2D``: ``medfuse fuse --reference mri.png --moving pet.png --out x.png --force --method light``
  on one AANLIB ``pet_mri`` pair with the shipped network (writes the fused PNG, the QC picture and
  the sidecar, as a user gets them). Target: CPU <= 1.5 x ``import torch``. Also with the default
  method (``medfuse/weights/defaults.json``), which may be a classical method.
* ``fuse-dir``: ``medfuse fuse-dir`` over a 100-pair and a 10-pair subset (33/34/33 and 3/4/3 pairs
  of ct_mri/pet_mri/spect_mri, symlinked in the Harvard layout); the cost per pair after start-up
  is ``(cpu(100) - cpu(10)) / 90`` (start-up and the first load of each network cancel). Targets:
  ``max`` <= 20 ms per pair, the shipped network (``light``) <= 2 x ``max``.
* ``fuse 3D`` (``--3d``): a 256x256x180 MRI with a 128x128x90 PET (``medfuse.phantom.make_case``,
  the timing case of ``benchmarks/registration.py``) as NIfTI, ``medfuse fuse`` with registration
  and with ``--no-register``; wall time on this machine's cores, CPU time, peak memory. Targets:
  <= 15 s, <= 3 s, <= 2 GB.

Bytecode: the processes run with a private ``PYTHONPYCACHEPREFIX`` (compiled once by a warm-up
run, as an installed package has its ``.pyc`` files) and without ``PYTHONDONTWRITEBYTECODE``, so
that a development checkout that never writes ``.pyc`` files does not bill the compiler to medfuse.

Run: ``python benchmarks/startup.py [--rounds 5] [--3d] [--data ../shared/data/harvard] [--baseline DIR]
[--fuse-dir-only]`` (``--baseline``: another tree's fuse-dir commands interleaved in the same rounds); it
prints a Markdown table (recorded in ``benchmarks/results/startup.md``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "harvard"
TASKS = {"ct_mri": "ct", "pet_mri": "pet", "spect_mri": "spect"}


def medfuse_script() -> list[str]:
    """The installed console script, run by this interpreter (a pyenv shim would add its own cost)."""
    script = Path(sys.executable).parent / "medfuse"
    if script.is_file():
        return [sys.executable, str(script)]
    return [sys.executable, "-c", "import sys; from medfuse.cli import main; sys.exit(main())"]


def run(cmd: list[str], env: dict[str, str], cwd: Path) -> dict[str, float]:
    """Run ``cmd`` to completion; CPU (user + sys, all threads), wall, peak RSS of the child."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{stderr.decode(errors='replace')[-2000:]}")
    return {"cpu": usage.ru_utime + usage.ru_stime, "wall": wall, "rss_mb": usage.ru_maxrss / 1024}


def make_subset(data: Path, dest: Path, per_task: dict[str, int]) -> Path:
    """A Harvard-layout folder of symlinks to the first pairs of each task."""
    for task, n in per_task.items():
        (dest / task).mkdir(parents=True, exist_ok=True)
        for pair in sorted(p for p in (data / task).iterdir() if p.is_dir())[:n]:
            (dest / task / pair.name).symlink_to(pair.resolve())
    return dest


def median(xs):
    return statistics.median(xs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--data", type=Path, default=Path(os.environ.get("MEDFUSE_HARVARD", DEFAULT_DATA)))
    ap.add_argument("--3d", dest="three_d", action="store_true", help="also time the 3D case")
    ap.add_argument("--3d-rounds", dest="rounds_3d", type=int, default=3)
    ap.add_argument("--skip-2d", action="store_true")
    ap.add_argument("--baseline", type=Path, default=None,
                    help="a copy of another medfuse tree (the folder holding its medfuse/ package): its fuse-dir "
                         "commands run interleaved with this tree's, in the same rounds (PYTHONPATH first)")
    ap.add_argument("--fuse-dir-only", action="store_true", help="2D: only the fuse-dir commands")
    ap.add_argument("--all-pairs", action="store_true",
                    help="fuse-dir: every pair of the data set instead of 100 (per pair = (cpu(all) - cpu(10)) / "
                         "(all - 10): the start-up's noise spread over ~7x more pairs), plus per-task medians of the "
                         "wall seconds fuse-dir-log.csv records")
    args = ap.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="medfuse-startup-"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(tmp / "pycache")
    env.pop("OMP_WAIT_POLICY", None)  # medfuse's own default applies, as for a user
    mf = medfuse_script()
    py = [sys.executable]
    rows: list[tuple[str, str]] = []
    load0 = os.getloadavg()
    try:
        if not args.skip_2d:
            rows += bench_2d(args, tmp, env, mf, py)
        if args.three_d:
            rows += bench_3d(args, tmp, env, mf, py)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load1 = os.getloadavg()
    print(f"\nmachine: {os.cpu_count()} cores; load average (1 min) {load0[0]:.1f} at start, {load1[0]:.1f} at end; "
          f"python {sys.version.split()[0]}")
    print("\n| figure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 0


def bench_2d(args, tmp: Path, env, mf, py) -> list[tuple[str, str]]:
    data = args.data
    pair = sorted(p for p in (data / "pet_mri").iterdir() if p.is_dir())[0]
    per_task = {"ct_mri": 33, "pet_mri": 34, "spect_mri": 33}
    if args.all_pairs:
        per_task = {t: sum(1 for p in (data / t).iterdir() if p.is_dir()) for t in TASKS}
    big = sum(per_task.values())
    sub_big = make_subset(data, tmp / "hbig", per_task)
    sub10 = make_subset(data, tmp / "h10", {"ct_mri": 3, "pet_mri": 4, "spect_mri": 3})
    out = tmp / "out"

    def fuse_dir(sub, method, tag=""):
        extra = ["--method", method] if method else []
        return mf + ["fuse-dir", str(sub), "--out", str(out / f"{sub.name}-{method or 'default'}{tag}"),
                     "--force"] + extra

    commands = {
        "import torch": py + ["-c", "import torch"],
        "fuse 2D": mf + ["fuse", "--reference", str(pair / "mri.png"), "--moving", str(pair / "pet.png"),
                         "--out", str(out / "x.png"), "--force", "--method", "light"],
        "fuse 2D, default method": mf + ["fuse", "--reference", str(pair / "mri.png"), "--moving",
                                         str(pair / "pet.png"), "--out", str(out / "y.png"), "--force"],
        "fuse-dir 10 max": fuse_dir(sub10, "max"),
        f"fuse-dir {big} max": fuse_dir(sub_big, "max"),
        "fuse-dir 10 light": fuse_dir(sub10, "light"),
        f"fuse-dir {big} light": fuse_dir(sub_big, "light"),
    }
    if args.fuse_dir_only:
        commands = {n: c for n, c in commands.items() if n.startswith("fuse-dir")}
    envs = {n: env for n in commands}
    if args.baseline is not None:  # the same fuse-dir commands on another tree, its own bytecode cache
        benv = dict(env, PYTHONPYCACHEPREFIX=str(tmp / "pycache-baseline"),
                    PYTHONPATH=os.pathsep.join(p for p in (str(args.baseline.resolve()), env.get("PYTHONPATH")) if p))
        for n in [n for n in commands if n.startswith("fuse-dir")]:
            size, method = n.split()[1:3]
            commands[f"{n} (baseline)"] = fuse_dir(sub_big if size == str(big) else sub10, method, "-baseline")
            envs[f"{n} (baseline)"] = benv
    out.mkdir()
    for n, cmd in commands.items():  # warm-up: bytecode, file cache
        run(cmd, envs[n], REPO)
    names = list(commands)
    res: dict[str, list[dict]] = {n: [] for n in names}
    for r in range(args.rounds):
        order = names[r % len(names):] + names[: r % len(names)]
        for n in order:
            res[n].append(run(commands[n], envs[n], REPO))
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{n} {res[n][-1]['cpu']:.2f}s" for n in names),
              file=sys.stderr)

    def per_pair(i, method, tag=""):
        cpu = res[f"fuse-dir {big} {method}{tag}"][i]["cpu"] - res[f"fuse-dir 10 {method}{tag}"][i]["cpu"]
        return cpu / (big - 10) * 1000

    def listed(xs, fmt):
        return f"(rounds: {', '.join(format(x, fmt) for x in xs)})"

    rounds = range(args.rounds)
    pp_max = [per_pair(i, "max") for i in rounds]
    pp_def = [per_pair(i, "light") for i in rounds]
    pp_ratio = [d / m for d, m in zip(pp_def, pp_max)]
    rows = [(f"CPU s, {n} (median of {args.rounds}; wall s; peak MB)",
             f"{median([x['cpu'] for x in res[n]]):.2f} ({median([x['wall'] for x in res[n]]):.2f}; "
             f"{median([x['rss_mb'] for x in res[n]]):.0f})") for n in names]
    if "fuse 2D" in res:
        fuse_ratio = [res["fuse 2D"][i]["cpu"] / res["import torch"][i]["cpu"] for i in rounds]
        rows.append(("fuse 2D with the network (light) / import torch, CPU (target <= 1.5)",
                     f"**{median(fuse_ratio):.2f}** {listed(fuse_ratio, '.2f')}"))
    if args.baseline is not None:
        b_max = [per_pair(i, "max", " (baseline)") for i in rounds]
        b_def = [per_pair(i, "light", " (baseline)") for i in rounds]
        b_ratio = [d / m for d, m in zip(b_def, b_max)]
        vs_baseline = [d / b for d, b in zip(pp_def, b_def)]
        rows += [
            ("baseline: fuse-dir per pair after start-up, max, CPU ms", f"{median(b_max):.1f} {listed(b_max, '.1f')}"),
            ("baseline: fuse-dir per pair after start-up, light, CPU ms",
             f"{median(b_def):.1f} {listed(b_def, '.1f')}"),
            ("baseline: fuse-dir per pair, light / max", f"{median(b_ratio):.2f} {listed(b_ratio, '.2f')}"),
            ("fuse-dir per pair, light: this tree / baseline (same round)",
             f"**{median(vs_baseline):.2f}** {listed(vs_baseline, '.2f')}"),
        ]
    rows += [
        ("fuse-dir per pair after start-up, max, CPU ms (target <= 20)",
         f"**{median(pp_max):.1f}** {listed(pp_max, '.1f')}"),
        ("fuse-dir per pair after start-up, the shipped networks (light), CPU ms",
         f"{median(pp_def):.1f} {listed(pp_def, '.1f')}"),
        ("fuse-dir per pair, light / max (target <= 2)",
         f"**{median(pp_ratio):.2f}** {listed(pp_ratio, '.2f')}"),
    ]
    if args.all_pairs:
        for method in ("light", "max"):
            for tag in ("", "-baseline") if args.baseline is not None else ("",):
                walls = task_walls(out / f"{sub_big.name}-{method}{tag}" / "fuse-dir-log.csv", big)
                rows.append((f"fuse-dir {method}{' (baseline)' if tag else ''}: median wall ms per pair from "
                             "fuse-dir-log.csv (every run, each task's first pair of a run left out)",
                             "; ".join(f"{t} {1000 * median(v):.0f}" for t, v in walls.items())))
    return rows


def task_walls(log: Path, pairs_per_run: int) -> dict[str, list[float]]:
    """Task -> the ``seconds`` of its pairs in ``fuse-dir-log.csv`` (the log of every run, ``pairs_per_run`` rows
    each), leaving out each task's first pair of a run (it loads that task's network; the first also torch)."""
    import csv

    with log.open() as fh:
        rows = list(csv.DictReader(fh))
    out: dict[str, list[float]] = {}
    for start in range(0, len(rows), pairs_per_run):
        seen = set()
        for r in rows[start : start + pairs_per_run]:
            task = r["key"].split("/")[0]
            if task in seen and r["status"] == "ok":
                out.setdefault(task, []).append(float(r["seconds"]))
            seen.add(task)
    return out


def bench_3d(args, tmp: Path, env, mf, py) -> list[tuple[str, str]]:
    d = tmp / "case3d"
    d.mkdir()
    setup = (
        "import sys; from medfuse.phantom import make_case; from medfuse.io import save_volume; "
        "c = make_case('pet', seed=100, mri_shape=(256, 256, 180), moving_shape=(128, 128, 90)); "
        f"save_volume(c.mri, {str(d / 'mri.nii.gz')!r}); save_volume(c.moving, {str(d / 'pet.nii.gz')!r})"
    )
    subprocess.run(py + ["-c", setup], env=env, check=True, cwd=REPO)
    base = mf + ["fuse", "--reference", str(d / "mri.nii.gz"), "--moving", str(d / "pet.nii.gz"), "--force"]
    commands = {
        "fuse 3D, registration included": base + ["--out", str(d / "reg.nii.gz")],
        "fuse 3D, --no-register": base + ["--out", str(d / "noreg.nii.gz"), "--no-register"],
        "fuse 3D, --no-register --method light": base + ["--out", str(d / "light.nii.gz"), "--no-register",
                                                         "--method", "light"],
    }
    for cmd in commands.values():
        run(cmd, env, REPO)
    res: dict[str, list[dict]] = {n: [] for n in commands}
    for r in range(args.rounds_3d):
        for n in (list(commands) if r % 2 == 0 else list(commands)[::-1]):
            res[n].append(run(commands[n], env, REPO))
    goals = {"fuse 3D, registration included": 15.0, "fuse 3D, --no-register": 3.0,
             "fuse 3D, --no-register --method light": 3.0}
    rows = [(f"{n}: wall s (target <= {goals[n]:g}); CPU s; peak MB (target <= 2048)",
             f"**{median([x['wall'] for x in res[n]]):.1f}**; {median([x['cpu'] for x in res[n]]):.1f}; "
             f"**{max(x['rss_mb'] for x in res[n]):.0f}**") for n in commands]
    # the same two runs inside one interpreter, after `import torch` and medfuse's imports: what the
    # fusion itself costs, apart from the fixed start-up of any torch tool (the `import torch` row)
    stages = []
    for r in range(args.rounds_3d):
        out = subprocess.run(py + ["-c", _IN_PROCESS, str(d)], env=env, cwd=REPO, check=True,
                             capture_output=True, text=True).stdout
        stages.append(dict(line.split("=", 1) for line in out.split()))
    for key, label in (("noreg", "--no-register"), ("reg", "registration included")):
        rows.append((f"fuse 3D, {label}, in one process after the imports: wall s; CPU s; "
                     "of which load / register or resample / normalize / fuse / write (wall s)",
                     f"{median([float(s[key + '_wall']) for s in stages]):.1f}; "
                     f"{median([float(s[key + '_cpu']) for s in stages]):.1f}; "
                     + " / ".join(f"{median([float(s[f'{key}_{k}']) for s in stages]):.1f}"
                                  for k in ("load", "register", "normalize", "fuse", "write"))))
    return rows


#: times medfuse.pipeline.fuse_files in-process, after the imports (argument: the case folder)
_IN_PROCESS = """
import sys, time, tempfile, logging
import torch, medfuse.pipeline as pl, medfuse.inference, medfuse.registration, medfuse.report.qc
d = sys.argv[1]
steps = {}
def progress(pct, step, t=[None, None]):
    now = time.perf_counter()
    if t[1] is not None:
        steps[t[1]] = steps.get(t[1], 0.0) + now - t[0]
    t[0], t[1] = now, step
for key, register in (("noreg", False), ("reg", None)):
    steps.clear()
    out = tempfile.mkdtemp()
    w, c = time.perf_counter(), time.process_time()
    pl.fuse_files(d + "/mri.nii.gz", d + "/pet.nii.gz", out + "/o.nii.gz", pl.FusionOptions(register=register),
                  progress=progress)
    print(f"{key}_wall={time.perf_counter() - w:.3f} {key}_cpu={time.process_time() - c:.3f}")
    group = {"load": ("loading",), "register": ("loaded", "registering"), "normalize": ("normalizing",),
             "write": ("writing",)}
    for name, keys in group.items():
        print(f"{key}_{name}={sum(steps.get(k, 0.0) for k in keys):.3f}")
    print(f"{key}_fuse={sum(v for k, v in steps.items() if k.startswith('fusing')):.3f}")
"""


if __name__ == "__main__":
    sys.exit(main())
