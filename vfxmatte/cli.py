"""The ``vfxmatte`` command: the only place that prints or exits.

Commands::

    vfxmatte validate JOB [--all-frames]
    vfxmatte run JOB [--frames RANGE] [--chunk N/M] [--device auto|cpu|cuda|cuda:N|mps] [--dry-run [--all-frames]]
                 [--threads N] [--memory-gb GB] [--progress deadline|alf|none]
    vfxmatte propagate JOB [--frames RANGE] [--chunk N/M] [--out PATTERN] [--threads N]
                 [--progress deadline|alf|none]
    vfxmatte submit JOB --farm opencue|deadline|local [--frames RANGE] [--chunk-size N] [--dry-run]
                 [--out DIR] [--executable PROGRAM] [--show SHOW] [--shot SHOT] [--service NAME]
                 [--cores N] [--memory 8g] [--tags T,T] [--priority N] [--cuebot HOST[:PORT]]
                 [--pool POOL] [--group GROUP] [--submit] [--workers N] [--threads N] [--gpus 0,1]
                 [--memory-gb GB] [--progress deadline|alf|none]
    vfxmatte example shot010 [--out DIR] [--frames RANGE] [--size WxH] [--keyframes [RANGE]]
    vfxmatte eval FOLDER [--model starter|PATH] [--trimap-dir trimap1] [--device DEVICE]
                  [--precision auto|fp32|bf16|fp16] [--tta none|flip] [--dense] [--json]

Global options (before or after the command): ``--quiet``, ``--log-format text|json`` (JSON
lines on stdout, one object per frame event, for farm log parsers), ``--debug`` (tracebacks
and debug logs).

``propagate`` writes the propagated trimaps of a job in a keyframes mode (8-bit PNG with their
record; up-to-date ones are left), by default where ``run`` looks for them
(``trimap.propagation.out``); ``--out`` writes elsewhere, never onto the plates or keyframes.

In text mode ``run`` and ``propagate`` print one line per frame and, after each, a flushed
``Progress: NN%`` line (Deadline's convention; ``--progress alf``: ``ALF_PROGRESS NN%``).

Exit codes: 0 success; 1 some frames failed (or, for ``validate``/``--dry-run``, would fail);
2 a bad job, bad arguments or a problem that stops the whole run (no Cuebot, no
``deadlinecommand``); 70 an internal error (a bug: an exception that is not a
:class:`VfxMatteError`, in the run or in one of its frames); 130 interrupted (SIGINT or SIGTERM). A :class:`VfxMatteError` prints one
line, ``vfxmatte: error: <message>``, and a traceback only under ``--debug``.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

from vfxmatte import __version__
from vfxmatte.errors import (
    EXIT_FRAMES_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    DeviceError,
    JobError,
    VfxMatteError,
)

__all__ = ["main", "build_parser"]

PROG = "vfxmatte"
#: How a text-mode run reports progress after each frame, for farm log parsers.
PROGRESS_LINES = {"deadline": "Progress: {pct}%", "alf": "ALF_PROGRESS {pct}%", "none": None}


# --------------------------------------------------------------------------- output


class Output:
    """Where a command's words go: stdout for results, stderr for progress, logs and errors."""

    def __init__(self, quiet: bool = False, log_format: str = "text", debug: bool = False) -> None:
        self.quiet, self.json, self.debug = quiet, log_format == "json", debug

    @property
    def stdout(self):  # looked up on use, so redirected streams (tests, wrappers) are honoured
        return sys.stdout

    @property
    def stderr(self):
        return sys.stderr

    def console(self, stderr: bool = False):
        from rich.console import Console

        return Console(file=self.stderr if stderr else self.stdout, highlight=False, soft_wrap=True)

    def show_progress_bar(self) -> bool:
        return not (self.quiet or self.json) and self.stderr.isatty()

    def line(self, text: str) -> None:
        """A plain result line on stdout (not in quiet or JSON mode)."""
        if not (self.quiet or self.json):
            print(text, file=self.stdout, flush=True)

    def event(self, obj: dict[str, Any]) -> None:
        """One JSON object per line on stdout (JSON mode only)."""
        if self.json:
            print(json.dumps(obj, default=str, separators=(",", ":")), file=self.stdout, flush=True)

    def error(self, exc: VfxMatteError, all_lines: bool = False) -> None:
        """One line per error (``all_lines``: each problem of a job file on its own line)."""
        if self.debug:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=self.stderr)
        problems = exc.errors if isinstance(exc, JobError) else [str(exc)]
        for text in problems if all_lines else [str(exc)]:
            print(f"{PROG}: error: {text}", file=self.stderr, flush=True)
        self.event({"event": "error", "type": type(exc).__name__, "message": str(exc),
                    "errors": problems, "ts": round(time.time(), 3)})

    def warn(self, message: str) -> None:
        if not self.json:
            print(f"{PROG}: {message}", file=self.stderr, flush=True)


class _JsonLogFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        obj = {
            "event": "log",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "ts": round(record.created, 3),
        }
        if record.exc_info:
            obj["traceback"] = self.formatException(record.exc_info)
        return json.dumps(obj, default=str, separators=(",", ":"))


def _configure_logging(out: Output) -> None:
    """Library logs go to stderr: warnings by default, everything under --debug."""
    logger = logging.getLogger("vfxmatte")
    for h in list(logger.handlers):
        if getattr(h, "_vfxmatte_cli", False):
            logger.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._vfxmatte_cli = True  # type: ignore[attr-defined]
    if out.json:
        handler.setFormatter(_JsonLogFormatter())
    else:
        handler.setFormatter(logging.Formatter(f"{PROG}: %(levelname)s: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if out.debug else logging.ERROR if out.quiet else logging.WARNING)
    logger.propagate = False
    # The farm libraries (pyoutline, pycue) log their retries as warnings; vfxmatte reports
    # their failures itself, in one line. Their logs show under --debug only.
    for name in ("outline", "opencue"):
        lib = logging.getLogger(name)
        lib.handlers = [handler] if out.debug else [logging.NullHandler()]
        lib.propagate = False


# --------------------------------------------------------------------------- argument types


def _frames_arg(text: str) -> list[int]:
    from vfxmatte.errors import SequenceError
    from vfxmatte.io.sequence import parse_frame_range

    try:
        return parse_frame_range(text)
    except SequenceError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _device_arg(text: str) -> str:
    from vfxmatte.jobs import check_device_name

    try:
        return check_device_name(text)
    except DeviceError:
        raise argparse.ArgumentTypeError(f"invalid device {text!r} (choose auto, cpu, cuda, cuda:N or mps)") from None


def _chunk_arg(text: str):
    from vfxmatte.errors import FarmError
    from vfxmatte.farm.chunks import parse_chunk

    try:
        return parse_chunk(text)
    except FarmError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def _size_arg(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    if not (sep and w.isdigit() and h.isdigit()):
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (use WxH, e.g. 960x540)")
    return int(w), int(h)


# --------------------------------------------------------------------------- run / validate


def _fmt_seconds(s: float | None) -> str:
    return "-" if s is None else f"{s:.2f}s"


class _FrameReporter:
    """Turns pipeline :class:`FrameEvent` s into a progress bar, text lines or JSON lines."""

    def __init__(self, out: Output, shot: str, progress_lines: str = "deadline") -> None:
        self.out, self.shot = out, shot
        self.progress_line = PROGRESS_LINES[progress_lines]
        self.progress = None
        self.task = None
        self._seconds: list[float] = []

    def __enter__(self) -> "_FrameReporter":
        if self.out.show_progress_bar():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                ProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )
            from rich.text import Text

            class SecondsPerFrame(ProgressColumn):
                def render(self, task) -> Text:  # noqa: ANN001 - rich's Task
                    spf = task.fields.get("spf")
                    return Text("-- s/frame" if spf is None else f"{spf:.2f} s/frame", style="cyan")

            self.progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("frames"),
                TimeRemainingColumn(),
                SecondsPerFrame(),
                TextColumn("{task.fields[current]}"),
                console=self.out.console(stderr=True),
                transient=False,
            )
            self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def __call__(self, ev) -> None:  # noqa: ANN001 - vfxmatte.pipeline.FrameEvent
        out = self.out
        out.event({**ev.to_dict(), "shot": self.shot, "ts": round(time.time(), 3)})
        if ev.kind == "done" and ev.seconds is not None:
            self._seconds.append(ev.seconds)
        if self.progress is not None:
            if self.task is None:
                self.task = self.progress.add_task(self.shot, total=ev.total, spf=None, current="")
            if ev.kind == "started":
                self.progress.update(self.task, current=f"frame {ev.frame}")
            elif ev.kind == "retried":
                self.progress.console.print(f"[yellow]frame {ev.frame} retried:[/yellow] {ev.reason}", markup=True, highlight=False)
            else:
                spf = sum(self._seconds) / len(self._seconds) if self._seconds else None
                self.progress.update(self.task, advance=1, spf=spf, current="")
                if ev.kind == "failed":
                    self.progress.console.print(f"[red]frame {ev.frame} failed:[/red] {ev.reason}", markup=True, highlight=False)
        elif not out.json:
            if ev.kind == "failed":
                print(f"{PROG}: frame {ev.frame} failed: {ev.reason}", file=out.stderr, flush=True)
            elif ev.kind == "retried":
                print(f"{PROG}: frame {ev.frame} retried: {ev.reason}", file=out.stderr, flush=True)
            elif ev.kind == "done":
                out.line(f"frame {ev.frame} done in {_fmt_seconds(ev.seconds)} -> {ev.output}")
            elif ev.kind == "skipped":
                out.line(f"frame {ev.frame} skipped: {ev.reason}")
            elif ev.kind == "planned":
                extra = f" ({ev.reason})" if ev.reason else ""
                out.line(f"frame {ev.frame} would be written to {ev.output}{extra}")
            if ev.kind in ("done", "skipped", "failed") and self.progress_line and ev.total:
                out.line(self.progress_line.format(pct=int(100 * ev.index / ev.total)))
        if ev.kind == "failed" and out.debug and ev.error is not None:
            traceback.print_exception(type(ev.error), ev.error, ev.error.__traceback__, file=out.stderr)


def _summary(out: Output, report) -> None:  # noqa: ANN001 - RunReport
    from vfxmatte.io.sequence import format_frames

    out.event({"event": "summary", **report.to_dict(), "ts": round(time.time(), 3)})
    if report.dry_run:
        parts = [f"{len(report.planned)} to matte"]
    else:
        parts = [f"{len(report.done)} done"]
    parts += [f"{len(report.skipped)} skipped", f"{len(report.failed)} failed"]
    spf = report.seconds_per_frame
    timing = "" if report.dry_run else f" in {report.total_seconds:.1f}s" + (f" ({spf:.2f} s/frame)" if spf else "")
    out.line(f"{report.shot}: {', '.join(parts)}{timing}")
    if report.failed:
        out.line(f"failed frames: {format_frames(report.failed)}")
    out.line(f"{'alphas would be written to' if report.dry_run else 'alphas:'} {report.output_pattern}")


def _chunked_frames(args: argparse.Namespace, job) -> list[int] | None:  # noqa: ANN001 - Job
    """``--frames`` (default: the job's frames) cut to ``--chunk N/M``; None: the job's frames."""
    if args.chunk is None:
        return args.frames
    from vfxmatte.farm.chunks import chunk_frames
    from vfxmatte.pipeline import job_frames

    frames = args.frames if args.frames is not None else job_frames(job)
    # No frame at all is the pipeline's whole-run error; only a chunk past the end is empty.
    return chunk_frames(frames, args.chunk) if frames else None


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _with_memory(job, gb: float | None):  # noqa: ANN001, ANN202 - Job
    """The job with ``gb`` (``--memory-gb``) as its ``model.memory_gb`` (hashed like the job key)."""
    if gb is None:
        return job
    return job.model_copy(update={"model": job.model.model_copy(update={"memory_gb": gb})})


def _setup_threads(args: argparse.Namespace) -> None:
    if args.threads is not None:
        from vfxmatte.devices import set_threads

        set_threads(args.threads)


def _empty_chunk(out: Output, args: argparse.Namespace, job, output: str) -> int:  # noqa: ANN001 - Job
    """A chunk past the end of the frames: an empty run's summary (``output``: its pattern)."""
    from vfxmatte.pipeline import RunReport

    empty = RunReport(job.shot, job.job_hash, output)
    out.event({"event": "summary", **empty.to_dict(), "chunk": str(args.chunk), "ts": round(time.time(), 3)})
    out.line(f"{job.shot}: chunk {args.chunk} holds no frames (the shot has fewer frames than chunks)")
    return EXIT_OK


def _cmd_run(args: argparse.Namespace, out: Output) -> int:
    from vfxmatte.jobs import load_job
    from vfxmatte.pipeline import run_job

    job = _with_memory(load_job(args.job), args.memory_gb)
    frames = _chunked_frames(args, job)
    if frames == []:
        return _empty_chunk(out, args, job, job.output.path)
    if args.dry_run:  # what would run, as runs of frames (never a line per frame)
        from vfxmatte.pipeline import pipeline_for

        check = pipeline_for(job, device=args.device).check(frames, all_frames=args.all_frames)
        out.event({"event": "summary", "dry_run": True, **check.to_dict(), "ts": round(time.time(), 3)})
        _report_check(out, check, dry_run=True)
        out.line(f"{job.shot}: {check.count('done') + check.count('held')} to matte, {check.count('skipped')} skipped, "
                 f"{check.count('failed')} would fail (headers of {check.headers_checked} frames checked)")
        return check.exit_code
    _setup_threads(args)
    with _FrameReporter(out, job.shot, args.progress) as reporter:
        report = run_job(job, frames=frames, device=args.device, dry_run=args.dry_run, progress=reporter)
    _summary(out, report)
    return report.exit_code


def _cmd_propagate(args: argparse.Namespace, out: Output) -> int:
    from vfxmatte.jobs import load_job
    from vfxmatte.pipeline import propagate_job

    job = load_job(args.job)
    frames = _chunked_frames(args, job)
    if frames == []:
        return _empty_chunk(out, args, job, args.out or job.propagated_trimaps)
    _setup_threads(args)
    with _FrameReporter(out, job.shot, args.progress) as reporter:
        report = propagate_job(job, frames=frames, out=args.out, progress=reporter)
    out.event({"event": "summary", **report.to_dict(), "ts": round(time.time(), 3)})
    parts = [f"{len(report.done)} written", f"{len(report.skipped)} up to date or skipped", f"{len(report.failed)} failed"]
    out.line(f"{report.shot}: {', '.join(parts)} in {report.total_seconds:.1f}s")
    if report.failed:
        from vfxmatte.io.sequence import format_frames

        out.line(f"failed frames: {format_frames(report.failed)}")
    out.line(f"trimaps: {report.output_pattern}")
    return report.exit_code


def _report_check(out: Output, report, dry_run: bool) -> None:  # noqa: ANN001 - CheckReport
    """A check's runs of frames, one line per outcome and reason (``frames 1004-1500 (497)
    would fail: ...``), never a line per frame; a dry run lists the frames that would run too."""
    from vfxmatte.io.sequence import format_runs

    for kind, reason, runs in report.runs():
        n = sum(map(len, runs))
        which = f"frame {runs[0][0]}" if n == 1 else f"frames {format_runs(runs, limit=10)} ({n})"
        if kind == "failed":
            out.warn(f"{which} would fail: {reason}")
        elif kind == "skipped":
            out.line(f"{which} would be skipped: {reason}")
        elif dry_run:
            extra = f" ({reason})" if reason else ""
            out.line(f"{which} would be written to {report.output_pattern}{extra}")


# --------------------------------------------------------------------------- submit


def _farm_settings(job, args: argparse.Namespace):  # noqa: ANN001, ANN202 - Job -> FarmSpec
    """The job's ``farm:`` section with the command line's options on top (validated alike)."""
    from pydantic import ValidationError

    from vfxmatte.errors import FarmError
    from vfxmatte.jobs import FarmSpec

    update: dict[str, Any] = {}
    for key in ("chunk_size", "show", "shot", "service", "cores", "memory", "priority", "pool", "group"):
        if getattr(args, key) is not None:
            update[key] = getattr(args, key)
    if args.tags is not None:
        update["tags"] = [t.strip() for t in args.tags.split(",") if t.strip()]
    if args.executable is not None:
        update["executable"] = args.executable
    try:
        return FarmSpec.model_validate({**job.farm.model_dump(), **update})
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise FarmError(f"--{key.replace('_', '-').split('.')[0]}: {first['msg']}") from None


def _cmd_submit(args: argparse.Namespace, out: Output) -> int:
    from vfxmatte.errors import SequenceError
    from vfxmatte.farm.commands import spec_dir, task_memory_gb
    from vfxmatte.jobs import load_job
    from vfxmatte.pipeline import job_frames, pipeline_for

    loaded = load_job(args.job)
    farm = _farm_settings(loaded, args)
    # The matting tasks' --memory-gb: the command line's, else the booking less its margin.
    memory_gb = task_memory_gb(loaded, farm, args.memory_gb)
    job = _with_memory(loaded, memory_gb)
    frames = args.frames if args.frames is not None else job_frames(job)
    if not frames:
        raise SequenceError(f"{job.source}: no frames to submit: none of {job.plate.path} exists on disk")
    if memory_gb is not None:  # a budget the nodes cannot matte in is refused here, not on every node
        pipeline_for(job).check_budget_of(frames[0])
    submit = {"opencue": _submit_opencue, "deadline": _submit_deadline, "local": _submit_local}[args.farm]
    return submit(args, out, job, frames, farm, spec_dir(job, args.out), memory_gb)


def _submit_opencue(args, out: Output, job, frames, farm, folder: Path, memory_gb: float | None) -> int:  # noqa: ANN001
    from vfxmatte.errors import FarmError
    from vfxmatte.farm import opencue
    from vfxmatte.io.atomic import atomic_write

    built = opencue.build_job(job, frames, farm, memory_gb)
    path = folder / f"{job.shot}.opencue.xml"
    with atomic_write(path, error=FarmError, what="OpenCue job spec") as tmp:
        tmp.write_text(built.spec, encoding="utf-8")
    out.event({"event": "submit", "farm": "opencue", "job": built.name, "spec": str(path), "frames": built.tasks.frames,
               "chunk_size": built.tasks.chunk_size, "layers": built.layers, "dry_run": args.dry_run})
    out.line(f"{job.shot}: OpenCue job {built.name}, frames {built.tasks.frames}, chunk {built.tasks.chunk_size}, "
             f"layers {', '.join(built.layers)}")
    out.line(f"job spec: {path}")
    if args.dry_run:
        return EXIT_OK
    names = opencue.submit(built, args.cuebot)
    out.event({"event": "submitted", "farm": "opencue", "jobs": names})
    out.line(f"submitted to OpenCue: {', '.join(names)}")
    return EXIT_OK


def _submit_deadline(args, out: Output, job, frames, farm, folder: Path, memory_gb: float | None) -> int:  # noqa: ANN001
    from vfxmatte.farm import deadline
    from vfxmatte.farm.commands import posix_command

    jobs = deadline.build_jobs(job, frames, farm, memory_gb)
    files = [deadline.write_job(built, folder, deadline.file_stem(built, job.shot)) for built in jobs]
    commands = [posix_command(deadline.submit_argv(*pair)) for pair in files]
    matte = jobs[-1]
    out.event({"event": "submit", "farm": "deadline", "job_info": str(files[-1][0]), "plugin_info": str(files[-1][1]),
               "frames": matte.tasks.frames, "chunk_size": matte.tasks.chunk_size, "command": commands[-1],
               "jobs": [{"stage": b.stage, "job_info": str(ji), "plugin_info": str(pi), "command": c}
                        for b, (ji, pi), c in zip(jobs, files, commands)]})
    kind = "propagation and matte jobs" if len(jobs) > 1 else "job"
    out.line(f"{job.shot}: Deadline CommandLine {kind}, frames {matte.tasks.frames}, chunk {matte.tasks.chunk_size}")
    for built, (job_info, plugin_info) in zip(jobs, files):
        what = "" if len(jobs) == 1 else f" ({built.stage})"
        out.line(f"job info{what}: {job_info}")
        out.line(f"plugin info{what}: {plugin_info}")
    if not args.submit or args.dry_run:
        for i, command in enumerate(commands):
            out.line(f"submit with: {command}" if i == 0 else
                     f"then: {command}, once JobDependencies=<the JobID the first printed> is added to {files[i][0]}")
        return EXIT_OK
    ids = deadline.submit_jobs(jobs, folder, job.shot)
    out.event({"event": "submitted", "farm": "deadline", "jobs": ids})
    for built, jid in zip(jobs, ids):
        out.line(f"submitted to Deadline: JobID={jid}" + ("" if len(jobs) == 1 else f" ({built.stage})"))
    return EXIT_OK


def _submit_local(args, out: Output, job, frames, farm, folder: Path, memory_gb: float | None) -> int:  # noqa: ANN001
    from vfxmatte.farm.chunks import split_frames
    from vfxmatte.farm.local import WorkerExit, default_chunks, default_workers, run_local
    from vfxmatte.io.sequence import format_frames

    workers = args.workers or default_workers()
    count = None if args.chunk_size is None else -(-len(frames) // args.chunk_size)
    if args.dry_run:
        pieces = [p for p in split_frames(frames, count or default_chunks(workers, len(frames))) if p]
        for i, piece in enumerate(pieces, 1):
            out.line(f"chunk {i}/{len(pieces)}: frames {format_frames(piece)}")
        out.event({"event": "submit", "farm": "local", "workers": workers,
                   "chunks": [format_frames(p) for p in pieces], "dry_run": True})
        return EXIT_OK
    gpus = [g.strip() for g in args.gpus.split(",") if g.strip()] if args.gpus else []
    with _FrameReporter(out, job.shot, args.progress) as reporter:

        def progress(item) -> None:  # noqa: ANN001 - a FrameEvent, or a WorkerExit
            if not isinstance(item, WorkerExit):
                reporter(item)
                return
            out.event({"event": "worker", "stage": item.stage, "chunk": str(item.chunk), "pid": item.pid, "exit": item.code})
            out.line(f"chunk {item.chunk} ({item.stage}, pid {item.pid}) exited {item.code}")
            if item.code not in (EXIT_OK, EXIT_FRAMES_FAILED) and item.error and not out.json:
                print(f"{PROG}: chunk {item.chunk} ({item.stage}): {item.error}", file=out.stderr, flush=True)

        report = run_local(job, args.frames, workers, chunks=count, threads=args.threads, gpus=gpus, progress=progress,
                           memory_gb=memory_gb)
    _summary(out, report)
    return report.exit_code


def _cmd_validate(args: argparse.Namespace, out: Output) -> int:
    from vfxmatte.jobs import load_job
    from vfxmatte.pipeline import pipeline_for

    job = load_job(args.job)
    report = pipeline_for(job).check(all_frames=args.all_frames)
    out.event({"event": "validate", "job": str(args.job), **report.to_dict()})
    _report_check(out, report, dry_run=False)
    failing = report.count("failed")
    status = "OK" if not failing else f"{failing} of {report.total} frames would fail"
    frames = job.plate.frames or "on disk"
    out.line(
        f"{args.job}: {status}: shot {job.shot}, frames {frames} ({report.total}), plate {job.plate.colorspace}, "
        f"trimap {job.trimap.mode}, model {Path(job.model.checkpoint).stem}, job hash {job.job_hash[:12]}, "
        f"headers of {report.headers_checked} frames checked"
    )
    return report.exit_code


# --------------------------------------------------------------------------- example / eval


def _cmd_example(args: argparse.Namespace, out: Output) -> int:
    from vfxmatte.examples import make_example

    options: dict[str, Any] = {}
    if args.frames is not None:
        options["frames"] = args.frames
    if args.size is not None:
        options["width"], options["height"] = args.size
    if args.keyframes is not None:
        options["keyframes"] = args.keyframes  # bare --keyframes: [], the first and last frame
    t0 = time.perf_counter()
    shot = make_example(args.name, args.out, **options)
    dt = time.perf_counter() - t0
    out.event({"event": "example", "name": shot.name, "plates": shot.plates, "trimaps": shot.trimaps,
               "truth": shot.truth, "frames": len(shot.frames), "seconds": round(dt, 3)})
    out.line(f"{shot.name}: {len(shot.frames)} frames ({shot.frames[0]}-{shot.frames[-1]}, {shot.colorspace}) in {dt:.1f}s")
    out.line(f"  plates:  {shot.plates}")
    out.line(f"  {'keyframes' if shot.keyframes else 'trimaps'}: {shot.trimaps}"
             + (f" ({', '.join(map(str, shot.keyframes))})" if shot.keyframes else ""))
    out.line(f"  truth:   {shot.truth}")
    if args.out == Path("examples") / shot.name:  # where jobs/NAME.yaml looks for them
        job = f"jobs/{shot.name}_keyframes.yaml" if shot.keyframes else f"jobs/{shot.name}.yaml"
        out.line(f"next: {PROG} run {job}")
    return EXIT_OK


def _cmd_eval(args: argparse.Namespace, out: Output) -> int:
    from vfxmatte.engine import MattingSession
    from vfxmatte.evaluate import evaluate_predictor, load_eval_set

    samples = load_eval_set(args.folder, trimap_dir=args.trimap_dir)
    session = MattingSession.from_checkpoint(
        args.model, device=args.device, precision=args.precision, tta=args.tta, sparse=False if args.dense else None
    )
    progress = None
    bar = None
    if out.show_progress_bar():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("[bold]eval"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                       TextColumn("{task.fields[name]}"), console=out.console(stderr=True))
        task = bar.add_task("eval", total=len(samples), name="")
        bar.start()
        progress = lambda done, total, name: bar.update(task, completed=done, name=name)  # noqa: E731
    try:
        report = evaluate_predictor(samples, lambda img, tri: session.matte(img, tri), progress=progress)
    finally:
        if bar is not None:
            bar.stop()
    data = {**report.to_dict(), "device": str(session.device), "precision": session.numeric.name}
    if args.json:
        print(json.dumps(data, indent=2, default=str), file=out.stdout, flush=True)
        return EXIT_OK
    if out.json:
        out.event({"event": "eval", "folder": str(args.folder), **data})
        return EXIT_OK
    if out.quiet:
        return EXIT_OK
    from rich.table import Table

    table = Table(title=f"{args.folder} ({args.trimap_dir}, model {args.model}, {session.device} {session.numeric.name})")
    for col in ("image", "SAD", "MSE", "Grad", "Conn", "s"):
        table.add_column(col, justify="left" if col == "image" else "right")
    for s in report.images:
        table.add_row(s.name, f"{s.sad:.2f}", f"{s.mse:.5f}", f"{s.grad:.2f}", f"{s.conn:.2f}", f"{s.seconds:.2f}")
    m = report.mean
    table.add_section()
    table.add_row("mean", f"{m['sad']:.2f}", f"{m['mse']:.5f}", f"{m['grad']:.2f}", f"{m['conn']:.2f}",
                  f"{report.seconds_per_image:.2f}", style="bold")
    out.console().print(table)
    return EXIT_OK


# --------------------------------------------------------------------------- parser

MEMORY_HELP = "memory budget of the process in GiB: tiles and batch shrink to fit it (overrides model.memory_gb)"
PROGRESS_HELP = "progress line after each frame in text mode: deadline 'Progress: NN%%', alf 'ALF_PROGRESS NN%%'"
ALL_FRAMES_HELP = "open every frame's plate and trimap header (default: 100 frames spread over the shot)"


def _farm_task_options(parser: argparse.ArgumentParser) -> None:
    """Options a farm task passes to ``run`` and ``propagate``."""
    parser.add_argument("--chunk", type=_chunk_arg, metavar="N/M",
                        help="only the Nth of M contiguous chunks of the frames (1-based; same split everywhere)")
    parser.add_argument("--threads", type=_positive_int, metavar="N", help="CPU threads for torch, OpenCV and OpenImageIO")
    parser.add_argument("--progress", choices=sorted(PROGRESS_LINES), default="deadline", help=PROGRESS_HELP)


def _global_options(parser: argparse.ArgumentParser, suppress: bool) -> None:
    # On sub-commands the defaults are suppressed so a flag given before the command survives.
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    g = parser.add_argument_group("global options")
    g.add_argument("-q", "--quiet", action="store_true", default=d(False), help="print only errors")
    g.add_argument("--log-format", choices=("text", "json"), default=d("text"),
                   help="json: one JSON object per line on stdout (frame events, summary, errors)")
    g.add_argument("--debug", action="store_true", default=d(False), help="show tracebacks and debug logs")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{PROG}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for docs and shell completion)."""
    p = _Parser(prog=PROG, description="Batch alpha matting for VFX plate sequences.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _global_options(p, suppress=False)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, func: Callable[[argparse.Namespace, Output], int], help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        _global_options(sp, suppress=True)
        sp.set_defaults(func=func)
        return sp

    v = add("validate", _cmd_validate, "check a job file and the files it names")
    v.add_argument("job", type=Path, help="job file (.yaml)")
    v.add_argument("--all-frames", action="store_true", help=ALL_FRAMES_HELP)

    r = add("run", _cmd_run, "matte a shot as a job file describes")
    r.add_argument("job", type=Path, help="job file (.yaml)")
    r.add_argument("--frames", type=_frames_arg, metavar="RANGE",
                   help="frames to process instead of the job's (1001-1010, 1001-1100x4, 1001,1005)")
    r.add_argument("--device", type=_device_arg, metavar="DEVICE", help="auto, cpu, cuda, cuda:N or mps (overrides the job)")
    r.add_argument("--dry-run", action="store_true", help="show what would be done, as validate checks it; write nothing")
    r.add_argument("--all-frames", action="store_true", help=f"with --dry-run: {ALL_FRAMES_HELP}")
    r.add_argument("--memory-gb", type=_positive_float, metavar="GB", help=MEMORY_HELP)
    _farm_task_options(r)

    pr = add("propagate", _cmd_propagate, "write the propagated trimaps of a keyframes job (8-bit PNG)")
    pr.add_argument("job", type=Path, help="job file (.yaml) with trimap mode keyframes (or mask, missing: propagate)")
    pr.add_argument("--frames", type=_frames_arg, metavar="RANGE", help="frames to propagate instead of the job's")
    pr.add_argument("--out", metavar="PATTERN",
                    help="write here instead of trimap.propagation.out (a .png pattern; never the plates or keyframes)")
    _farm_task_options(pr)

    sb = add("submit", _cmd_submit, "split a job into chunks for a render farm: OpenCue, Deadline or local workers")
    sb.add_argument("job", type=Path, help="job file (.yaml)")
    sb.add_argument("--farm", choices=("opencue", "deadline", "local"), required=True, help="where the chunks run")
    sb.add_argument("--frames", type=_frames_arg, metavar="RANGE", help="frames to submit instead of the job's")
    sb.add_argument("--chunk-size", type=_positive_int, metavar="N", help="frames per farm task (default: farm.chunk_size, 10)")
    sb.add_argument("--dry-run", action="store_true",
                    help="opencue: write the job spec XML, contact no Cuebot; deadline: write the files only; local: list the chunks")
    sb.add_argument("--out", type=Path, metavar="DIR", help="where the job spec / info files go (default: <output dir>/farm)")
    sb.add_argument("--executable", metavar="PROGRAM", help="the vfxmatte a farm node runs (default: farm.executable, vfxmatte)")
    sb.add_argument("--memory-gb", type=_positive_float, metavar="GB",
                    help=f"each matting task's {MEMORY_HELP}; default: none beyond model.memory_gb, or for a job "
                         "without one the task's --memory booking less 10%% (at least 0.25 GiB)")
    g = sb.add_argument_group("OpenCue")
    g.add_argument("--show", help="show (default: farm.show, else pyoutline's default show)")
    g.add_argument("--shot", help="shot (default: farm.shot, else the job's shot)")
    g.add_argument("--service", help="service of the layers (default: farm.service, else shell)")
    g.add_argument("--cores", type=float, metavar="N", help="cores each task books (and its thread count)")
    g.add_argument("--memory", metavar="SIZE", help="memory each task books: 8g or 512m")
    g.add_argument("--tags", metavar="T,T", help="layer tags, comma-separated")
    g.add_argument("--priority", type=int, metavar="N", help="job priority (OpenCue and Deadline)")
    g.add_argument("--cuebot", metavar="HOST[:PORT]", help="Cuebot to submit to (default: pycue's config or $CUEBOT_HOSTS)")
    g = sb.add_argument_group("Deadline")
    g.add_argument("--pool", help="pool (default: farm.pool)")
    g.add_argument("--group", help="group (default: farm.group)")
    g.add_argument("--submit", action="store_true", help="run deadlinecommand (must be on PATH) instead of printing its command")
    g = sb.add_argument_group("local")
    g.add_argument("--workers", type=_positive_int, metavar="N", help="worker processes at once (default: one per core)")
    g.add_argument("--threads", type=_positive_int, metavar="N", help="threads per worker (default: cores / workers)")
    g.add_argument("--gpus", metavar="0,1", help="GPUs shared out to the workers round-robin (CUDA_VISIBLE_DEVICES)")
    g.add_argument("--progress", choices=sorted(PROGRESS_LINES), default="deadline", help=PROGRESS_HELP)

    from vfxmatte.examples import EXAMPLES

    e = add("example", _cmd_example, "generate a procedural example shot (plates, trimaps, true alphas)")
    e.add_argument("name", choices=sorted(EXAMPLES), help="example shot")
    e.add_argument("--out", type=Path, default=None, help="output folder (default: examples/NAME, where jobs/NAME.yaml looks)")
    e.add_argument("--frames", type=_frames_arg, metavar="RANGE", help="frames to make (default: 1001-1024)")
    e.add_argument("--size", type=_size_arg, metavar="WxH", help="plate size (default: 960x540)")
    e.add_argument("--keyframes", type=_frames_arg, nargs="?", const=[], metavar="RANGE",
                   help="write trimaps only on these frames, into keyframes/ (bare: the first and last frame)")

    ev = add("eval", _cmd_eval, "score a model on an alphamatting.com-style folder (image/, trimap1/, alpha/)")
    ev.add_argument("folder", type=Path)
    ev.add_argument("--model", default="starter", help="built-in name or checkpoint path (default: starter)")
    ev.add_argument("--trimap-dir", default="trimap1", help="trimap folder under FOLDER (default: trimap1)")
    ev.add_argument("--device", type=_device_arg, default="auto", metavar="DEVICE", help="auto, cpu, cuda, cuda:N or mps")
    ev.add_argument("--precision", choices=("auto", "fp32", "bf16", "fp16"), default="auto",
                    help="network arithmetic (auto: bf16 on CPUs with native bf16, fp16 autocast on GPUs, else fp32)")
    ev.add_argument("--tta", choices=("none", "flip"), default="none",
                    help="test-time augmentation: flip also runs the mirrored image (about 2x the time)")
    ev.add_argument("--dense", action="store_true",
                    help="run every layer over the whole frame (default on the CPU: block-sparse near the unknown band)")
    ev.add_argument("--json", action="store_true", help="print the scores as one JSON document")
    return p


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM (a farm killing a task) stops the run as Ctrl-C does: frames being written are
    # abandoned with their temporary files removed, finished frames stay.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 1 frames failed, 2 bad job or usage,
    70 internal error, 130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command == "example" and args.out is None:
        args.out = Path("examples") / args.name
    out = Output(quiet=args.quiet, log_format=args.log_format, debug=args.debug)
    _configure_logging(out)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _interrupt) if main_thread else None
    try:
        return args.func(args, out)
    except VfxMatteError as exc:
        # validate lists every problem of a job file; other commands print the first.
        out.error(exc, all_lines=args.command == "validate")
        return EXIT_USAGE
    except KeyboardInterrupt as exc:
        out.event({"event": "interrupted", "signal": str(exc) or "SIGINT", "ts": round(time.time(), 3)})
        print(f"{PROG}: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug must not look like "frames failed" (1)
        if out.debug:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        out.event({"event": "internal_error", "type": type(exc).__name__, "message": str(exc), "ts": round(time.time(), 3)})
        print(f"{PROG}: internal error: {type(exc).__name__}: {exc} (a bug; --debug shows the traceback)",
              file=sys.stderr, flush=True)
        return EXIT_INTERNAL
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
