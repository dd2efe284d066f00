"""The process runner against a fake process and a fake medfuse: command line, progress, error, cancel, cleanup."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest
from MedFuseLib.parameters import MedFuseParameters
from MedFuseLib.process import (
    FusionError,
    FusionJob,
    build_command,
    find_python_slicer,
    parse_error,
    parse_progress,
)


def _params(**kw) -> MedFuseParameters:
    return MedFuseParameters(**{"reference_modality": "MR", "moving_modality": "PT", **kw})


# -- command line ------------------------------------------------------------------------------
def test_command_line(tmp_path):
    cmd = build_command(_params(method="max", register=False), tmp_path / "r.nrrd", tmp_path / "m.nrrd",
                        tmp_path / "o.nrrd", python="PythonSlicer")
    assert cmd[:5] == ["PythonSlicer", "-m", "medfuse.cli", "-v", "fuse"]
    assert cmd[cmd.index("--reference") + 1] == str(tmp_path / "r.nrrd")
    assert cmd[cmd.index("--moving-modality") + 1] == "PT" and cmd[cmd.index("--reference-modality") + 1] == "MR"
    assert "--no-register" in cmd and "--transform" not in cmd and cmd[cmd.index("--method") + 1] == "max"
    assert "--no-qc" in cmd and "--force" in cmd


def test_command_line_registration_and_options(tmp_path):
    cmd = build_command(_params(moving_modality="CT", registration_type="affine", window="bone"), "r", "m", "o",
                        transform=tmp_path / "t.tfm")
    assert cmd[0] == sys.executable and "--method" not in cmd  # "default": medfuse picks the pair's network
    assert "--register" in cmd and cmd[cmd.index("--registration") + 1] == "affine"
    assert cmd[cmd.index("--transform") + 1] == str(tmp_path / "t.tfm")
    assert cmd[cmd.index("--window") + 1] == "bone" and "--colormap" not in cmd
    cmd = build_command(_params(colormap="hot_iron", window="bone", accept_registration=True), "r", "m", "o")
    assert cmd[cmd.index("--colormap") + 1] == "hot_iron" and "--window" not in cmd  # window is for CT only
    assert "--accept-registration" in cmd


def test_command_line_is_parsed_by_medfuse(tmp_path):
    from medfuse.cli import build_parser

    cmd = build_command(_params(moving_modality="CT", window="40,80", registration_type="bspline"), "r.nrrd",
                        "m.nrrd", "o.nrrd", transform=tmp_path / "t.tfm")
    args = build_parser().parse_args(cmd[3:])
    assert args.command == "fuse" and args.verbose and args.register and args.registration == "bspline"
    assert args.window == "40,80" and args.transform == str(tmp_path / "t.tfm")


def test_invalid_parameters_refused():
    with pytest.raises(ValueError, match="choose the modality of the moving volume"):
        build_command(MedFuseParameters(reference_modality="MR"), "r", "m", "o")
    with pytest.raises(ValueError, match="unknown method"):
        FusionJob(_params(method="nope"))


def test_find_python_slicer(tmp_path):
    assert find_python_slicer(which=lambda name: f"/opt/Slicer/bin/{name}") == "/opt/Slicer/bin/PythonSlicer"
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "PythonSlicer.exe").write_text("")
    assert find_python_slicer(which=lambda name: None, slicer_home=str(tmp_path), platform="win32") == str(
        tmp_path / "bin" / "PythonSlicer.exe")
    with pytest.raises(FileNotFoundError, match="PythonSlicer"):
        find_python_slicer(which=lambda name: None, slicer_home=str(tmp_path), platform="linux")


# -- progress and errors -----------------------------------------------------------------------
@pytest.mark.parametrize("line, current, expected", [
    ("PROGRESS 40 registering", 0, (40, "registering")),
    ("PROGRESS 12.5", 50, (50, "working")),  # never backwards
    ("PROGRESS 140 done", 0, (100, "done")),
    ("DEBUG medfuse.registration.core: reference/moving: initialization: moments (coarse MI ...)", 2, (15, "registering")),
    ("INFO medfuse.registration.core: a/b: rigid registration in 3.1 s: MI -0.4 -> -0.6", 15, (55, "registered")),
    ("INFO medfuse.pipeline: moving and reference share one grid: not registered", 2, (55, "registered")),
    ("DEBUG medfuse.pipeline: fused with light in 2.00 s (register 1.00 s)", 55, (85, "fused")),
    ("fused: /tmp/x/fused.nrrd", 85, (92, "writing results")),
    ("DEBUG medfuse.pipeline: fused with light in 2.00 s", 92, None),  # never backwards
    ("DEBUG PIL.PngImagePlugin: STREAM b'IHDR'", 0, None),
])
def test_parse_progress(line, current, expected):
    assert parse_progress(line, current) == expected


def test_parse_error():
    lines = ["INFO medfuse: something", "medfuse fuse: error: moving.nrrd: modality unknown; pass --moving-modality"]
    assert parse_error(lines) == "moving.nrrd: modality unknown; pass --moving-modality"
    assert parse_error(["Traceback (most recent call last):", "ValueError: x"]) is None


# -- a fake process ----------------------------------------------------------------------------
class BlockingPipe:
    """A pipe whose readline blocks until a line is fed or it is closed (as a real pipe does)."""

    def __init__(self):
        self._lines, self._cond, self._closed = [], threading.Condition(), False

    def feed(self, *lines):
        with self._cond:
            self._lines += [line + "\n" for line in lines]
            self._cond.notify_all()

    def close(self):
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def readline(self):
        with self._cond:
            while not self._lines and not self._closed:
                self._cond.wait(1.0)
            return self._lines.pop(0) if self._lines else ""


class FakeProcess:
    """subprocess.Popen's interface, scripted by the test; records how it was started and ended."""

    instances: list = []

    def __init__(self, command, **kwargs):
        self.command, self.kwargs = command, kwargs
        self.stdout, self.stderr = BlockingPipe(), BlockingPipe()
        self.returncode = None
        self.terminated = self.killed = False
        FakeProcess.instances.append(self)

    def exit(self, code):
        self.stdout.close()
        self.stderr.close()
        self.returncode = code

    def poll(self):
        return self.returncode

    def wait(self, timeout=None):
        deadline = time.monotonic() + (timeout or 10)
        while self.returncode is None:
            if time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.command, timeout)
            time.sleep(0.01)
        return self.returncode

    def terminate(self):
        self.terminated = True
        self.exit(-15)

    def kill(self):
        self.killed = True
        self.exit(-9)


def _poll_until(job, timeout=10.0):
    deadline = time.monotonic() + timeout
    while (code := job.poll()) is None:
        assert time.monotonic() < deadline, "the job did not end"
        time.sleep(0.01)
    return code


def _job(tmp_path, **kw):
    events = {"log": [], "progress": []}
    job = FusionJob(_params(**kw), python="PythonSlicer", workdir=tmp_path / "work", popen=FakeProcess,
                    on_log=events["log"].append, on_progress=lambda p, s: events["progress"].append((p, s)))
    job.reference_path.write_text("patient data")
    job.moving_path.write_text("patient data")
    return job, events


def test_fake_process_success(tmp_path):
    job, events = _job(tmp_path)
    job.start()
    proc = FakeProcess.instances[-1]
    assert proc.command == job.command and proc.kwargs["stdout"] == subprocess.PIPE and proc.kwargs["text"]
    assert proc.kwargs["env"]["PYTHONUNBUFFERED"] == "1"
    assert job.poll() is None and job.running
    proc.stderr.feed("DEBUG medfuse.registration.core: r/m: initialization: header")
    proc.stderr.feed("INFO medfuse.registration.core: r/m: rigid registration in 2.0 s: MI -0.3 -> -0.5")
    proc.stdout.feed("PROGRESS 70 normalizing")
    job.output_path.write_text("fused")
    job.quantitative_path.write_text("pet")
    job.transform_path.write_text("tfm")
    proc.stdout.feed(f"fused: {job.output_path}", f"quantitative: {job.quantitative_path}",
                     f"transform: {job.transform_path}")
    proc.exit(0)
    assert _poll_until(job) == 0
    percents = [p for p, _ in events["progress"]]
    assert percents == sorted(percents) and percents[0] == 2 and percents[-1] == 100
    assert (15, "registering") in events["progress"] and (70, "normalizing") in events["progress"]
    assert len(events["log"]) == 6
    assert job.result() == {"fused": job.output_path, "quantitative": job.quantitative_path,
                            "transform": job.transform_path}
    assert job.error is None
    job.cleanup()
    assert not job.workdir.exists()
    job.cleanup()  # twice is fine


def test_fake_process_error_is_medfuse_one_line(tmp_path):
    job, _ = _job(tmp_path)
    with job:
        job.start()
        proc = FakeProcess.instances[-1]
        proc.stderr.feed("INFO medfuse: reading", "medfuse fuse: error: moving.nrrd: no brain found; check the scan")
        proc.exit(2)
        assert _poll_until(job) == 2
        assert job.error == "moving.nrrd: no brain found; check the scan"
        with pytest.raises(FusionError, match="no brain found"):
            job.result()
    assert not job.workdir.exists()


def test_fake_process_crash_shows_last_line(tmp_path):
    job, _ = _job(tmp_path)
    job.start()
    proc = FakeProcess.instances[-1]
    proc.stderr.feed("Traceback (most recent call last):", "MemoryError: cannot allocate")
    proc.exit(1)
    _poll_until(job)
    assert job.error == "MemoryError: cannot allocate"
    job.cleanup()


def test_fake_process_success_without_output_is_an_error(tmp_path):
    job, _ = _job(tmp_path)
    job.start()
    FakeProcess.instances[-1].exit(0)
    _poll_until(job)
    with pytest.raises(FusionError, match="without writing fused.nrrd"):
        job.result()
    job.cleanup()


def test_fake_process_cancel(tmp_path):
    job, events = _job(tmp_path)
    job.start()
    proc = FakeProcess.instances[-1]
    proc.stderr.feed("DEBUG medfuse.registration.core: r/m: initialization: header")
    assert job.poll() is None or True
    job.cancel()
    assert proc.terminated and not proc.killed
    assert _poll_until(job) == -15
    assert job.error == "cancelled" and job.progress < 100
    with pytest.raises(FusionError, match="cancelled"):
        job.result()
    job.cleanup()
    assert not job.workdir.exists()


def test_fake_process_cancel_kills_a_stubborn_child(tmp_path):
    job, _ = _job(tmp_path)
    job.cancel_grace_s = 0.1
    job.start()
    proc = FakeProcess.instances[-1]
    proc.terminate = lambda: setattr(proc, "terminated", True)  # ignores SIGTERM
    job.cancel()
    assert proc.terminated and proc.killed and job.poll() == -9
    job.cleanup()


def test_cleanup_ends_a_running_child_and_removes_the_folder(tmp_path):
    job, _ = _job(tmp_path)
    job.start()
    proc = FakeProcess.instances[-1]
    job.cleanup()
    assert proc.terminated and not job.workdir.exists()


def test_default_workdir_is_a_fresh_temporary_folder():
    job = FusionJob(_params(), popen=FakeProcess)
    try:
        assert job.workdir.is_dir() and job.workdir.name.startswith("medfuse-slicer-")
        assert job.reference_path.parent == job.workdir and job.output_path.suffix == ".nrrd"
    finally:
        job.cleanup()
    assert not job.workdir.exists()


# -- a fake medfuse in a real child process: real pipes, real signals ----------------------------
FAKE_MEDFUSE = r'''
import sys, time
args = sys.argv[1:]
out = args[args.index("--out") + 1]
print("DEBUG medfuse.registration.core: r/m: initialization: header", file=sys.stderr, flush=True)
if "--method" in args and args[args.index("--method") + 1] == "mean":
    print("medfuse fuse: error: reference.nrrd: cannot read it; check the file", file=sys.stderr, flush=True)
    sys.exit(2)
if "--method" in args and args[args.index("--method") + 1] == "max":
    time.sleep(60)
print("PROGRESS 50 fusing", flush=True)
open(out, "w").write("fused")
print("fused: " + out, flush=True)
'''


@pytest.fixture()
def fake_medfuse(tmp_path):
    script = tmp_path / "fake_medfuse.py"
    script.write_text(FAKE_MEDFUSE)
    return [sys.executable, str(script)]


def test_real_child_success(tmp_path, fake_medfuse):
    progress = []
    job = FusionJob(_params(register=False), launcher=fake_medfuse, workdir=tmp_path / "w",
                    on_progress=lambda p, s: progress.append(p))
    with job:
        outputs = job.run(timeout=60)
        assert outputs == {"fused": job.output_path}
        # stdout and stderr are read by two threads: the log milestone (15) may arrive after PROGRESS 50
        # and is then dropped (progress never goes back)
        assert progress == sorted(progress) and progress[0] == 2 and progress[-1] == 100
        assert {50, 92} <= set(progress) and set(progress) <= {2, 15, 50, 92, 100}
    assert not (tmp_path / "w").exists()


def test_real_child_error(tmp_path, fake_medfuse):
    with FusionJob(_params(method="mean"), launcher=fake_medfuse) as job:
        with pytest.raises(FusionError) as err:
            job.run(timeout=60)
        assert str(err.value) == "reference.nrrd: cannot read it; check the file"
    assert not job.workdir.exists()


def test_real_child_cancel(tmp_path, fake_medfuse):
    job = FusionJob(_params(method="max"), launcher=fake_medfuse)
    job.start()
    deadline = time.monotonic() + 30
    while job.progress < 15:  # the child is running and has reported a step
        job.poll()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    t0 = time.monotonic()
    job.cancel()
    assert job.wait(timeout=10) != 0 and time.monotonic() - t0 < 5
    assert job.error == "cancelled"
    job.cleanup()
    assert not job.workdir.exists()
