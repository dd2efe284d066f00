"""Running ``medfuse fuse`` in a separate process, so the Slicer GUI stays responsive (no Slicer import).

One :class:`FusionJob` owns a temporary folder (``medfuse-slicer-*``), the file names the module
exports the two volumes to (NRRD, written by Slicer's storage nodes, which put the RAS->LPS
conversion in the header), the child process and its output.

The child's stderr is merged into its stdout (``stderr=subprocess.STDOUT``, as
``slicer.util.launchConsoleProcess`` does; the Qt equivalent is ``QProcess.MergedChannels``), and
the child runs unbuffered (``PYTHONUNBUFFERED=1``), so the lines arrive in exactly the order
medfuse wrote them (the log shows them so). One thread reads that single pipe line by line into a
queue; :meth:`FusionJob.poll`, called from a Qt timer on the GUI thread, drains the queue, updates
:attr:`progress`, :attr:`step` and the log, and returns the exit code once the child has ended.
:meth:`cancel` ends the child; :meth:`cleanup` removes the temporary folder (patient data) and is
called whatever happens.

Protocol. The module runs ``medfuse -v fuse --progress ...`` and reads three kinds of lines, none of
them log wording:

* ``PROGRESS <0-100> <step>``: medfuse's structured progress (``fuse_files``' ``progress(percent, step)``
  callback, printed by ``--progress``; registration reports its own stages through it), the only source
  of :attr:`FusionJob.progress`; it never goes back;
* ``<kind>: <path>`` (``fused: PATH`` ...): the outputs medfuse wrote;
* ``medfuse fuse: error: ...``: medfuse's one-line error (exit code 2; medfuse writes it on stderr,
  found here in the merged output by its prefix, which no log or progress line has); any other failure
  shows the exception line of a traceback, else medfuse's last ``ERROR`` log message, else the exit code
  with the child's last line.

Log lines (``LEVEL logger: message``, ``-v`` shows medfuse's steps in the module's log) are shown, never
parsed for progress: their wording is no interface.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from MedFuseLib.parameters import DEFAULT, MedFuseParameters

__all__ = [
    "build_command",
    "find_python_slicer",
    "parse_progress",
    "parse_error",
    "failure_message",
    "popen_options",
    "FusionJob",
    "FusionError",
]

_PROGRESS = re.compile(r"^\s*PROGRESS\s+(\d{1,3}(?:\.\d+)?)\s*(.*)$")
_ERROR = re.compile(r"^medfuse(?: [\w-]+)?: error: (.+)$")
_OUTPUT = re.compile(r"^(fused|quantitative|transform|qc|sidecar): (.+)$")
#: the last line of a Python traceback (``ValueError: ...``, ``MemoryError``, ``KeyboardInterrupt``)
_EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w]*\.)*[A-Za-z_]\w*(?:Error|Exception|Interrupt|Exit)\b(?::\s*.*)?$")
_LOG_LINE = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+: (.*)$")


class FusionError(RuntimeError):
    """medfuse failed or was cancelled; the message is medfuse's one-line reason."""


def find_python_slicer(which: Callable[[str], Optional[str]] = shutil.which, slicer_home: Optional[str] = None,
                       platform: str = sys.platform) -> str:
    """The PythonSlicer executable, found as Slicer itself finds it.

    The Slicer launcher puts ``<Slicer home>/bin`` on PATH, so ``shutil.which("PythonSlicer")``
    answers inside Slicer (this is what SlicerTotalSegmentator does); ``<slicer_home>/bin/PythonSlicer``
    (``.exe`` on Windows) is the fallback.

    Raises:
        FileNotFoundError: neither exists.
    """
    exe = "PythonSlicer.exe" if platform.startswith("win") else "PythonSlicer"
    found = which("PythonSlicer")
    if found:
        return found
    if slicer_home:
        candidate = Path(slicer_home) / "bin" / exe
        if candidate.is_file():
            return str(candidate)
    raise FileNotFoundError(f"PythonSlicer not found on PATH nor in {slicer_home}/bin: run the module inside 3D Slicer")


def build_command(params: MedFuseParameters, reference: Path, moving: Path, output: Path, *,
                  transform: Optional[Path] = None, launcher: Optional[Sequence[str]] = None,
                  python: Optional[str] = None, verbose: bool = True) -> List[str]:
    """The ``medfuse fuse`` command line for these parameters and files.

    Args:
        launcher: how to start medfuse (default ``[python, "-m", "medfuse.cli"]``); tests pass a fake.
        python: the interpreter (default this one: in Slicer pass :func:`find_python_slicer`).
        transform: where medfuse writes the registration transform (``.tfm``).
        verbose: pass ``-v`` so medfuse logs its steps (shown in the module's log; progress comes from
            ``--progress``' ``PROGRESS`` lines only).

    Raises:
        ValueError: the parameters are not valid (the message says which and why).
    """
    ok, message = params.isValid()
    if not ok:
        raise ValueError(message)
    cmd = list(launcher) if launcher else [python or sys.executable, "-m", "medfuse.cli"]
    if verbose:
        cmd.append("-v")
    cmd += ["fuse", "--reference", str(reference), "--moving", str(moving), "--out", str(output),
            "--reference-modality", params.reference_modality, "--moving-modality", params.moving_modality,
            "--device", params.device, "--no-qc", "--force", "--progress"]
    if params.method != DEFAULT:
        cmd += ["--method", params.method]
    if params.register:
        # --register: two exports of one scan share a grid; the user asked for registration
        cmd += ["--register", "--registration", params.registration_type]
        if transform is not None:
            cmd += ["--transform", str(transform)]
    else:
        cmd.append("--no-register")
    if params.window != DEFAULT and params.moving_modality == "CT":
        cmd += ["--window", params.window]
    if params.colormap != DEFAULT and params.moving_modality in ("PT", "NM"):
        cmd += ["--colormap", params.colormap]
    if params.accept_registration:
        cmd.append("--accept-registration")
    if not params.keep_hot and params.moving_modality in ("PT", "NM"):
        cmd.append("--no-keep-hot")
    return cmd


def parse_progress(line: str, current: int = 0):
    """``(percent, step)`` that a ``PROGRESS <0-100> <step>`` line reports, or None for any other line (log lines
    included: progress is never read from log wording). The percentage never goes back below ``current``."""
    m = _PROGRESS.match(line)
    if m:
        return max(current, min(100, int(float(m.group(1))))), m.group(2).strip() or "working"
    return None


def parse_error(lines: Sequence[str]) -> Optional[str]:
    """medfuse's one-line error (``medfuse fuse: error: <this>``) from the child's merged output, or None.

    medfuse writes it on stderr; in the merged stream it is told apart by its prefix (log lines start with
    their level, progress lines with ``PROGRESS``, output lines with their kind). The last one wins.
    """
    for line in reversed(lines):
        m = _ERROR.match(line.strip())
        if m:
            return m.group(1).strip()
    return None


def failure_message(lines: Sequence[str], returncode: Optional[int]) -> str:
    """One line saying why the child failed, from its merged output and exit code.

    In order: medfuse's one-line error; the exception line of a Python traceback (a crash); the message
    of medfuse's last ``ERROR``/``CRITICAL`` log line; else the exit code and the last line written.
    """
    message = parse_error(lines)
    if message:
        return message
    text = [line.strip() for line in lines if line.strip() and not _PROGRESS.match(line)]
    if any(line.startswith("Traceback (most recent call last)") for line in text):
        for line in reversed(text):
            if _EXCEPTION.match(line):
                return line
    for line in reversed(text):
        m = _LOG_LINE.match(line)
        if m and m.group(1) in ("ERROR", "CRITICAL"):
            return m.group(2).strip()
    how = (f"was ended by signal {-returncode}" if returncode is not None and returncode < 0
           else f"ended with exit code {returncode}")
    return f"medfuse {how}" + (f"; its last line: {text[-1]}" if text else "")


def popen_options(platform: str = sys.platform) -> Dict[str, object]:
    """How the child is started: one merged, UTF-8, line-buffered pipe and, on Windows, no console window.

    This is what ``slicer.util.launchConsoleProcess`` does (``stdout=PIPE, stderr=STDOUT`` and a hidden
    console on Windows), except that the pipe is decoded as UTF-8 with replacement (the child is told to
    write UTF-8) rather than in the locale's encoding, so that a path or message with non-ASCII characters
    can never stop the reader (and with it the child, on a full pipe).
    """
    options: Dict[str, object] = {"stdout": subprocess.PIPE, "stderr": subprocess.STDOUT, "stdin": subprocess.DEVNULL,
                                  "text": True, "encoding": "utf-8", "errors": "replace", "bufsize": 1}
    # PythonSlicer is a launcher that starts python-real as its own child: the child gets a process group of
    # its own, so that Cancel ends the launcher and python-real together (see FusionJob.cancel)
    if platform.startswith("win"):
        info = subprocess.STARTUPINFO()  # type: ignore[attr-defined]  # Windows only
        info.dwFlags |= subprocess.STARTF_USESHOWWINDOW  # type: ignore[attr-defined]
        info.wShowWindow = 0  # SW_HIDE
        options["startupinfo"] = info
        options["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined]
    else:
        options["start_new_session"] = True
    return options


class FusionJob:
    """One fusion run in a child process, with its temporary folder.

    Example (what the Slicer logic does, without the Slicer parts)::

        job = FusionJob(params, python=find_python_slicer())
        export(reference_node, job.reference_path); export(moving_node, job.moving_path)
        job.start()
        # a QTimer calls job.poll() until it returns an exit code, then
        outputs = job.result()   # or FusionError with medfuse's message
        job.cleanup()

    Args:
        params: the run's parameters (validated: ValueError when not valid).
        python, launcher: how to start medfuse (see :func:`build_command`).
        workdir: the temporary folder (default: a new ``medfuse-slicer-*`` folder in the system temp).
        popen: ``subprocess.Popen`` or a fake with the same interface (tests).
        on_log, on_progress: called from :meth:`poll` with each line / ``(percent, step)``.
    """

    #: seconds between terminate() and kill() on cancel
    cancel_grace_s = 5.0

    def __init__(self, params: MedFuseParameters, *, python: Optional[str] = None,
                 launcher: Optional[Sequence[str]] = None, workdir: Optional[os.PathLike] = None,
                 popen: Callable = subprocess.Popen, on_log: Optional[Callable[[str], None]] = None,
                 on_progress: Optional[Callable[[int, str], None]] = None):
        ok, message = params.isValid()
        if not ok:
            raise ValueError(message)
        self.params = params
        self.workdir = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="medfuse-slicer-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.reference_path = self.workdir / "reference.nrrd"
        self.moving_path = self.workdir / "moving.nrrd"
        self.output_path = self.workdir / "fused.nrrd"
        self.quantitative_path = self.workdir / "fused_moving.nrrd"
        self.transform_path = self.workdir / "moving_to_reference.tfm"
        self.command = build_command(params, self.reference_path, self.moving_path, self.output_path,
                                     transform=self.transform_path, launcher=launcher, python=python)
        self._popen = popen
        self._proc = None
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._readers: List[threading.Thread] = []
        self.on_log = on_log
        self.on_progress = on_progress
        self.progress = 0
        self.step = "not started"
        self.log: List[str] = []  # every line the child wrote (stdout and stderr merged), in its order
        self.outputs: Dict[str, Path] = {}
        self.returncode: Optional[int] = None
        self.cancelled = False
        self.started_at: Optional[float] = None

    # -- running ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the child (returns at once). The inputs must have been written to the workdir."""
        if self._proc is not None:
            raise RuntimeError("this job was already started; make a new FusionJob")
        # unbuffered: stdout and stderr reach the merged pipe in the order medfuse writes them
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONIOENCODING="utf-8")
        self._proc = self._popen(self.command, env=env, cwd=str(self.workdir), **popen_options())
        self.started_at = time.monotonic()
        self._set_progress(2, "starting medfuse")
        if self._proc.stdout is not None:
            reader = threading.Thread(target=self._read, args=(self._proc.stdout,), daemon=True,
                                      name="medfuse-output-reader")
            reader.start()
            self._readers.append(reader)

    def _read(self, stream) -> None:
        try:
            for line in iter(stream.readline, ""):
                self._lines.put(line.rstrip("\r\n"))
        except (OSError, ValueError):  # stream closed under us (cancel)
            pass
        finally:
            self._lines.put(None)

    @property
    def running(self) -> bool:
        return self._proc is not None and self.returncode is None

    def poll(self) -> Optional[int]:
        """Handle what the child wrote since the last call; None while it runs, else its exit code.

        The exit code is reported only after the pipe is read to the end, so nothing is lost.
        """
        if self._proc is None:
            raise RuntimeError("start() the job first")
        self._drain()
        if self.returncode is not None:
            return self.returncode
        code = self._proc.poll()
        if code is None:
            return None
        for reader in self._readers:  # the pipe closes when the child ends: the reader ends soon
            reader.join(timeout=5.0)
        self._drain()
        self.returncode = code
        if code == 0 and not self.cancelled:
            self._set_progress(100, "done")
        return code

    def _drain(self) -> None:
        while True:
            try:
                line = self._lines.get_nowait()
            except queue.Empty:
                return
            if line is None:
                continue
            self._handle(line)

    def _handle(self, line: str) -> None:
        self.log.append(line)
        m = _OUTPUT.match(line)
        if m:
            self.outputs[m.group(1)] = Path(m.group(2).strip())
        if self.on_log is not None:
            self.on_log(line)
        reported = parse_progress(line, self.progress)
        if reported is not None:
            self._set_progress(*reported)

    def _set_progress(self, percent: int, step: str) -> None:
        self.progress, self.step = percent, step
        if self.on_progress is not None:
            self.on_progress(percent, step)

    def wait(self, timeout: Optional[float] = None, interval: float = 0.05) -> int:
        """Poll until the child ends (scripts and tests); ``subprocess.TimeoutExpired`` after ``timeout`` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            code = self.poll()
            if code is not None:
                return code
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.command, timeout)
            time.sleep(interval)

    def cancel(self) -> None:
        """End the child and its children: terminate, then kill if not ended after :attr:`cancel_grace_s` s."""
        self.cancelled = True
        if self._proc is None or self._proc.poll() is not None:
            return
        self._set_progress(self.progress, "cancelling")
        self._end_tree(kill=False)
        try:
            self._proc.wait(timeout=self.cancel_grace_s)
        except subprocess.TimeoutExpired:
            self._end_tree(kill=True)
            self._proc.wait(timeout=self.cancel_grace_s)

    def _end_tree(self, kill: bool) -> None:
        """Terminate (or kill) the child and what it started: PythonSlicer is a launcher whose own child,
        python-real, runs medfuse; ending the launcher alone would leave medfuse running and writing in the
        temporary folder. POSIX: a signal to the child's process group; Windows: ``taskkill /T /F``."""
        proc = self._proc
        pid = getattr(proc, "pid", None)
        if isinstance(pid, int):  # a real process, started in a group of its own by popen_options()
            if sys.platform.startswith("win"):  # Windows has no graceful termination of a console child
                result = subprocess.run(["taskkill", "/T", "/F", "/PID", str(pid)], capture_output=True,
                                        creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
                if result.returncode == 0:
                    return
            else:
                try:
                    os.killpg(pid, signal.SIGKILL if kill else signal.SIGTERM)
                    return
                except OSError:  # not a group leader (e.g. a popen without start_new_session), or gone
                    pass
        if kill:
            proc.kill()
        else:
            proc.terminate()

    # -- results ------------------------------------------------------------------------------
    @property
    def error(self) -> Optional[str]:
        """Why the run failed (medfuse's one-line message), or None while running or after success."""
        if self.cancelled:
            return "cancelled"
        if self.returncode in (None, 0):
            return None
        return failure_message(self.log, self.returncode)

    def result(self) -> Dict[str, Path]:
        """``{"fused", "quantitative", "transform", ...}`` -> paths that exist, after a successful run.

        Raises:
            FusionError: the run failed or was cancelled (message: medfuse's reason).
        """
        if self.returncode is None:
            raise RuntimeError("the job has not ended; poll() until it returns an exit code")
        if self.error is not None:
            raise FusionError(self.error)
        expected = {"fused": self.output_path, "quantitative": self.quantitative_path,
                    "transform": self.transform_path}
        found = {kind: path for kind, path in {**expected, **self.outputs}.items() if Path(path).is_file()}
        if "fused" not in found:
            raise FusionError(f"medfuse ended without writing {self.output_path.name}")
        return found

    def run(self, timeout: Optional[float] = None) -> Dict[str, Path]:
        """Start, wait and return :meth:`result` (scripts and tests); cancels the child on timeout."""
        self.start()
        try:
            self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.cancel()
            self.poll()
            raise FusionError(f"medfuse did not finish within {timeout} s") from None
        return self.result()

    def cleanup(self) -> None:
        """Remove the temporary folder and everything in it (exported patient volumes, results).

        Ends the child first if it is still running. Safe to call more than once.
        """
        if self.running:
            self.cancel()
            try:
                self.wait(timeout=self.cancel_grace_s)
            except subprocess.TimeoutExpired:
                pass
        pipe = getattr(self._proc, "stdout", None)
        if pipe is not None and hasattr(pipe, "close"):
            try:
                pipe.close()
            except OSError:
                pass
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "FusionJob":
        return self

    def __exit__(self, *exc) -> None:
        self.cleanup()
