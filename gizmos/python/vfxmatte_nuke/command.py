"""The ``vfxmatte`` program: where it is, the command lines the gizmo runs, and running one.

The gizmo never imports vfxmatte: it runs the command in its own process, with
``--log-format json`` so every frame, failure and summary comes back as one JSON object per
line (:mod:`vfxmatte_nuke.log`). Argument lists go to :class:`subprocess.Popen` as lists, never
through a shell; :func:`display` quotes one for a person to paste (POSIX shell or Windows rules).
"""

import os
import shlex
import shutil
import subprocess
import threading

from vfxmatte_nuke.errors import GizmoError
from vfxmatte_nuke.log import RunLog

__all__ = [
    "ENV_EXECUTABLE",
    "FARMS",
    "display",
    "find_executable",
    "propagate_argv",
    "run_argv",
    "run_command",
    "submit_argv",
    "validate_argv",
]

#: The environment variable naming the vfxmatte program when the gizmo's knob is empty.
ENV_EXECUTABLE = "VFXMATTE_EXECUTABLE"
FARMS = ("opencue", "deadline", "local")


def find_executable(knob="", environ=None, which=shutil.which):
    """The vfxmatte program: the gizmo's ``executable`` knob, else ``$VFXMATTE_EXECUTABLE``,
    else ``vfxmatte`` on the PATH (``vfxmatte.exe`` on Windows). A value may be a path (``~``
    and ``$VARS`` expanded) or a program name looked up on the PATH.

    Raises:
        GizmoError: nothing found, saying where it looked.
    """
    environ = os.environ if environ is None else environ
    for source, value in (("the gizmo's executable knob", knob), ("$" + ENV_EXECUTABLE, environ.get(ENV_EXECUTABLE, ""))):
        value = (value or "").strip()
        if not value:
            continue
        path = os.path.expandvars(os.path.expanduser(value))
        if os.path.dirname(path):
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
            raise GizmoError("vfxmatte executable not found: %s names %s, which is not an executable file" % (source, path))
        found = which(path)
        if found:
            return found
        raise GizmoError("vfxmatte executable not found: %s names %r, which is not on Nuke's PATH" % (source, value))
    found = which("vfxmatte")
    if found:
        return found
    raise GizmoError(
        "vfxmatte executable not found: set the gizmo's executable knob or $%s to the vfxmatte "
        "program (e.g. /opt/vfxmatte/.venv/bin/vfxmatte), or put it on Nuke's PATH" % ENV_EXECUTABLE
    )


def _base(executable, command):
    return [executable, "--log-format", "json", command]


def validate_argv(executable, job):
    """``vfxmatte --log-format json validate JOB``."""
    return _base(executable, "validate") + [job]


def run_argv(executable, job, frames=None, device=None):
    """``vfxmatte --log-format json run JOB [--frames RANGE] [--device DEVICE]``."""
    argv = _base(executable, "run") + [job]
    if frames:
        argv += ["--frames", frames]
    if device:
        argv += ["--device", device]
    return argv


def propagate_argv(executable, job, frames=None):
    """``vfxmatte --log-format json propagate JOB [--frames RANGE]``."""
    argv = _base(executable, "propagate") + [job]
    if frames:
        argv += ["--frames", frames]
    return argv


def submit_argv(executable, job, farm, send=False, chunk_size=None, frames=None):
    """``vfxmatte --log-format json submit JOB --farm FARM ...``: with ``send`` off, OpenCue and
    Deadline only write their job files (``--dry-run``); with it, OpenCue submits to its Cuebot
    and Deadline runs ``deadlinecommand`` (``--submit``). ``local`` always runs here."""
    if farm not in FARMS:
        raise GizmoError("farm %r: choose %s" % (farm, ", ".join(FARMS)))
    argv = _base(executable, "submit") + [job, "--farm", farm]
    if frames:
        argv += ["--frames", frames]
    if chunk_size:
        argv += ["--chunk-size", str(int(chunk_size))]
    if farm == "deadline" and send:
        argv.append("--submit")
    elif farm in ("opencue", "deadline") and not send:
        argv.append("--dry-run")
    return argv


def display(argv, windows=None):
    """``argv`` as one line a person can paste into a terminal: POSIX shell quoting, or the
    Windows (MSVC runtime) rules on Windows."""
    windows = os.name == "nt" if windows is None else windows
    if windows:
        return subprocess.list2cmdline(list(argv))
    return " ".join(shlex.quote(a) for a in argv)


def _pump(stream, sink):
    try:
        for line in iter(stream.readline, ""):
            sink(line)
    finally:
        stream.close()


def run_command(argv, on_update=None, is_cancelled=None, poll_s=0.2, env=None, cwd=None):
    """Run ``argv`` (a vfxmatte command with ``--log-format json``) to its end and return its
    :class:`~vfxmatte_nuke.log.RunLog`.

    Both pipes are read on their own threads, so neither can fill and stall the process.
    ``on_update(log)`` is called after every JSON event; ``is_cancelled()`` is polled every
    ``poll_s`` seconds, and a cancel terminates the process (vfxmatte takes SIGTERM as Ctrl-C:
    the frame being written is abandoned with its temporary file, finished frames stay).
    """
    log = RunLog()
    lock = threading.Lock()
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)  # no console window on Windows
    try:
        proc = subprocess.Popen(
            list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            universal_newlines=True, encoding="utf-8", errors="replace", env=env, cwd=cwd,
            creationflags=flags,
        )
    except OSError as exc:
        raise GizmoError("cannot start %s: %s" % (argv[0], exc.strerror or exc))

    def out_line(line):
        with lock:
            changed = log.feed_stdout(line)
        if changed and on_update is not None:
            on_update(log)

    def err_line(line):
        with lock:
            log.feed_stderr(line)

    pumps = [threading.Thread(target=_pump, args=(proc.stdout, out_line)),
             threading.Thread(target=_pump, args=(proc.stderr, err_line))]
    for t in pumps:
        t.daemon = True
        t.start()
    while True:
        try:
            code = proc.wait(timeout=poll_s)
            break
        except subprocess.TimeoutExpired:
            if is_cancelled is not None and is_cancelled() and not log.cancelled:
                log.cancelled = True
                proc.terminate()
    for t in pumps:
        t.join()
    log.exit_code = code
    return log
