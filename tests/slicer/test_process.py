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
    failure_message,
    find_python_slicer,
    parse_error,
    parse_progress,
    popen_options,
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
    assert "--accept-registration" in cmd and "--no-keep-hot" not in cmd
    cmd = build_command(_params(keep_hot=False), "r", "m", "o")  # a PET: medfuse's hot-region floor turned off
    assert "--no-keep-hot" in cmd
    assert "--no-keep-hot" not in build_command(_params(moving_modality="CT", keep_hot=False), "r", "m", "o")


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
    ("PROGRESS 33 registering: rigid stage", 20, (33, "registering: rigid stage")),
    # log wording is no progress source, whatever it says (these were read as 15, 55, 55 and 85 before)
    ("DEBUG medfuse.registration.core: reference/moving: initialization: moments (coarse MI ...)", 2, None),
    ("INFO medfuse.registration.core: a/b: rigid registration in 3.1 s: MI -0.4 -> -0.6", 15, None),
    ("INFO medfuse.pipeline: moving and reference share one grid: not registered", 2, None),
    ("DEBUG medfuse.pipeline: fused with light in 2.00 s (register 1.00 s)", 55, None),
    ("INFO medfuse.pipeline: PROGRESS 90 writing", 55, None),  # a log line quoting the protocol is still a log line
    ("fused: /tmp/x/fused.nrrd", 85, None),  # an output line names a file, it reports no progress
    ("DEBUG PIL.PngImagePlugin: STREAM b'IHDR'", 0, None),
])
def test_parse_progress(line, current, expected):
    assert parse_progress(line, current) == expected


def test_parse_error():
    lines = ["INFO medfuse: something", "medfuse fuse: error: moving.nrrd: modality unknown; pass --moving-modality"]
    assert parse_error(lines) == "moving.nrrd: modality unknown; pass --moving-modality"
    assert parse_error(["Traceback (most recent call last):", "ValueError: x"]) is None


def test_parse_error_in_merged_output():
    """stderr merged into stdout: the one-line error is found among progress, log and output lines."""
    lines = ["PROGRESS 10 reading", "INFO medfuse.pipeline: reading reference.nrrd",
             "medfuse fuse: error: moving.nrrd: no brain found; check the scan",
             "PROGRESS 10 reading",  # a late line after the error does not hide it
             "fused: /tmp/nothing"]
    assert parse_error(lines) == "moving.nrrd: no brain found; check the scan"
    assert failure_message(lines, 2) == "moving.nrrd: no brain found; check the scan"
    # log lines that mention errors are not medfuse's one-line error
    assert parse_error(["INFO medfuse.pipeline: error: not really", "WARNING medfuse: error: no"]) is None


@pytest.mark.parametrize("lines, code, expected", [
    (["PROGRESS 40 registering", "Traceback (most recent call last):", '  File "x.py", line 1, in <module>',
      "numpy.core._exceptions._ArrayMemoryError: Unable to allocate 3.1 GiB", "PROGRESS 41 late"], 1,
     "numpy.core._exceptions._ArrayMemoryError: Unable to allocate 3.1 GiB"),
    (["Traceback (most recent call last):", "  File ...", "KeyboardInterrupt"], 130, "KeyboardInterrupt"),
    (["INFO medfuse.pipeline: reading", "ERROR medfuse.registration: registration diverged", "PROGRESS 50 x"], 1,
     "registration diverged"),
    (["INFO medfuse.pipeline: reading", "PROGRESS 50 fusing"], -9,
     "medfuse was ended by signal 9; its last line: INFO medfuse.pipeline: reading"),
    ([], 3, "medfuse ended with exit code 3"),
])
def test_failure_message_without_medfuse_error(lines, code, expected):
    assert failure_message(lines, code) == expected


def test_popen_options_merge_the_streams():
    options = popen_options(platform="linux")
    assert options["stdout"] == subprocess.PIPE and options["stderr"] == subprocess.STDOUT
    assert options["encoding"] == "utf-8" and options["errors"] == "replace" and options["bufsize"] == 1
    assert "startupinfo" not in options and options["start_new_session"] is True  # its own process group
    if sys.platform.startswith("win"):  # the console window hidden, as slicer.util.launchConsoleProcess does
        assert popen_options()["startupinfo"].wShowWindow == 0


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
    """subprocess.Popen's interface, scripted by the test; records how it was started and ended.

    Like a real child started with ``stderr=subprocess.STDOUT``: one pipe (``stdout``) carries both streams
    and ``stderr`` is None; ``out()`` and ``err()`` write to it, in call order.
    """

    instances: list = []

    def __init__(self, command, **kwargs):
        self.command, self.kwargs = command, kwargs
        assert kwargs.get("stderr") == subprocess.STDOUT, "the runner merges stderr into stdout"
        self.stdout, self.stderr = BlockingPipe(), None
        self.returncode = None
        self.terminated = self.killed = False
        FakeProcess.instances.append(self)

    def out(self, *lines):
        self.stdout.feed(*lines)

    err = out  # merged: what the child writes on stderr arrives on the same pipe, in order

    def exit(self, code):
        self.stdout.close()
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
    assert proc.kwargs["stderr"] == subprocess.STDOUT  # one merged pipe: the order is the child's
    assert proc.kwargs["env"]["PYTHONUNBUFFERED"] == "1" and proc.kwargs["cwd"] == str(job.workdir)
    assert job.poll() is None and job.running
    proc.err("DEBUG medfuse.registration.core: r/m: initialization: header")
    proc.err("INFO medfuse.registration.core: r/m: rigid registration in 2.0 s: MI -0.3 -> -0.5")
    proc.out("PROGRESS 70 normalizing")
    job.output_path.write_text("fused")
    job.quantitative_path.write_text("pet")
    job.transform_path.write_text("tfm")
    proc.out(f"fused: {job.output_path}", f"quantitative: {job.quantitative_path}",
             f"transform: {job.transform_path}")
    proc.exit(0)
    assert _poll_until(job) == 0
    # exactly the PROGRESS lines, in the order the child wrote them; the log lines move nothing
    assert events["progress"] == [(2, "starting medfuse"), (70, "normalizing"), (100, "done")]
    assert len(events["log"]) == 6 and events["log"][2] == "PROGRESS 70 normalizing"
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
        proc.err("INFO medfuse: reading", "medfuse fuse: error: moving.nrrd: no brain found; check the scan")
        proc.out("PROGRESS 20 reading")  # a stdout line after the error, in the same pipe
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
    proc.err("Traceback (most recent call last):", "MemoryError: cannot allocate")
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
    proc.err("DEBUG medfuse.registration.core: r/m: initialization: header")
    assert job.poll() is None
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
method = args[args.index("--method") + 1] if "--method" in args else "default"
# no flush: the runner starts the child unbuffered (PYTHONUNBUFFERED=1), as it does PythonSlicer
print("DEBUG medfuse.registration.core: r/m: initialization: header", file=sys.stderr)
if method == "mean":
    print("medfuse fuse: error: reference.nrrd: cannot read it; check the file", file=sys.stderr)
    print("PROGRESS 20 reading")  # a later stdout line in the merged pipe
    sys.exit(2)
if method == "max":
    print("PROGRESS 20 registering")
    time.sleep(60)
if method == "laplacian":
    raise MemoryError("cannot allocate 3 GiB")
if method == "wavelet":  # like the PythonSlicer launcher: medfuse runs in a grandchild, the launcher waits
    import subprocess
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print("PROGRESS 20 grandchild " + str(grandchild.pid))
    grandchild.wait()
print("PROGRESS 30 registering")
print("INFO medfuse.registration.core: r/m: rigid registration in 1.0 s: MI -0.3 -> -0.5", file=sys.stderr)
print("PROGRESS 60 fusing")
print("DEBUG medfuse.pipeline: fused with mean in 0.10 s (register 1.00 s)", file=sys.stderr)
open(out, "w").write("fused")
print("fused: " + out)
'''


@pytest.fixture()
def fake_medfuse(tmp_path):
    script = tmp_path / "fake_medfuse.py"
    script.write_text(FAKE_MEDFUSE)
    return [sys.executable, str(script)]


def test_real_child_success_in_exact_order(tmp_path, fake_medfuse):
    progress, log = [], []
    job = FusionJob(_params(register=False), launcher=fake_medfuse, workdir=tmp_path / "w",
                    on_progress=lambda p, s: progress.append(p), on_log=log.append)
    with job:
        outputs = job.run(timeout=60)
        assert outputs == {"fused": job.output_path}
        # stderr merged into stdout: every line in the order the child wrote it, alternating streams
        assert log == ["DEBUG medfuse.registration.core: r/m: initialization: header",
                       "PROGRESS 30 registering",
                       "INFO medfuse.registration.core: r/m: rigid registration in 1.0 s: MI -0.3 -> -0.5",
                       "PROGRESS 60 fusing",
                       "DEBUG medfuse.pipeline: fused with mean in 0.10 s (register 1.00 s)",
                       f"fused: {job.output_path}"]
        # progress: the start, the child's PROGRESS lines and the end; its log lines are shown, not read
        assert progress == [2, 30, 60, 100]
    assert not (tmp_path / "w").exists()


def test_real_child_error_is_medfuse_one_line(tmp_path, fake_medfuse):
    with FusionJob(_params(method="mean"), launcher=fake_medfuse) as job:
        with pytest.raises(FusionError) as err:
            job.run(timeout=60)
        assert str(err.value) == "reference.nrrd: cannot read it; check the file"
        assert job.log[-1] == "PROGRESS 20 reading" and job.returncode == 2
    assert not job.workdir.exists()


def test_real_child_crash_shows_the_exception(tmp_path, fake_medfuse):
    with FusionJob(_params(method="laplacian"), launcher=fake_medfuse) as job:
        with pytest.raises(FusionError) as err:
            job.run(timeout=60)
        assert str(err.value) == "MemoryError: cannot allocate 3 GiB" and job.returncode == 1
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


def _alive(pid):
    try:
        with open(f"/proc/{pid}/status") as status:
            return "\nState:\tZ" not in status.read()  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_real_child_cancel_ends_the_launchers_child_too(tmp_path, fake_medfuse):
    """PythonSlicer is a launcher running python-real as its child: Cancel must end both."""
    job = FusionJob(_params(method="wavelet"), launcher=fake_medfuse)
    job.start()
    deadline = time.monotonic() + 30
    while not any(line.startswith("PROGRESS 20 grandchild ") for line in job.log):
        job.poll()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    grandchild = int(next(line for line in job.log if line.startswith("PROGRESS 20 grandchild ")).split()[-1])
    assert _alive(grandchild)
    job.cancel()
    assert job.wait(timeout=10) != 0 and job.error == "cancelled"
    deadline = time.monotonic() + 10
    while _alive(grandchild):
        assert time.monotonic() < deadline, "the launcher's child survived Cancel"
        time.sleep(0.05)
    job.cleanup()
    assert not job.workdir.exists()
