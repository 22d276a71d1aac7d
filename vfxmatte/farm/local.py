"""The chunks of a shot run in parallel worker processes on this machine (``--farm local``).

Each worker is a ``vfxmatte run JOB --chunk N/M`` process (after a ``vfxmatte propagate``
stage for keyframe jobs), so it gives the bytes any farm node would. A worker gets its share
of the cores (``--threads`` and the OpenMP/BLAS variables), and of the GPUs through
``CUDA_VISIBLE_DEVICES`` when some are given. Workers run in their own sessions: an interrupt
(Ctrl-C, SIGTERM) reaches this process, which forwards one SIGINT to every live worker, waits
for them to stop (each removes its half-written temporary file), and re-raises.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from vfxmatte.errors import EXIT_FRAMES_FAILED, EXIT_INTERNAL, EXIT_OK, EXIT_USAGE, FarmError
from vfxmatte.farm.chunks import Chunk, split_frames
from vfxmatte.farm.commands import job_path, memory_args
from vfxmatte.io.sequence import FrameRanges
from vfxmatte.jobs import Job
from vfxmatte.pipeline import FrameEvent, RunReport

__all__ = ["LocalReport", "WorkerExit", "default_chunks", "default_workers", "run_local"]

#: Seconds a worker has to stop after the forwarded interrupt before it is killed.
STOP_GRACE_S = 20.0

_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_workers() -> int:
    """Workers when none are asked for: one per core."""
    return _cores()


def default_chunks(workers: int, frames: int) -> int:
    """Chunks of a run of ``frames`` frames when none are asked for: one per worker, at most
    one per frame (and at least one)."""
    return min(workers, max(1, frames))


@dataclass(frozen=True)
class WorkerExit:
    """A worker process that ended: its stage and chunk, pid and exit code."""

    stage: str
    chunk: Chunk
    pid: int
    code: int
    #: its last error line on stderr, if any
    error: str | None = None


@dataclass
class LocalReport(RunReport):
    """A local farm run: the matte stage's frames (as :class:`RunReport`) and every worker."""

    workers: list[WorkerExit] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """2 when a worker stopped on a bad job or setup, 70 when one crashed, else 1 when any
        frame failed, else 0."""
        codes = {w.code for w in self.workers}
        if codes - {EXIT_OK, EXIT_FRAMES_FAILED, EXIT_USAGE}:
            return EXIT_INTERNAL
        if EXIT_USAGE in codes:
            return EXIT_USAGE
        return EXIT_FRAMES_FAILED if (self.failed or EXIT_FRAMES_FAILED in codes) else EXIT_OK


Progress = Callable[[Any], None]


def _reader(stream, tag: str, key: tuple[str, int], out: "queue.Queue[tuple]") -> None:
    for line in iter(stream.readline, ""):
        out.put((tag, key, line.rstrip("\n")))
    stream.close()
    out.put(("eof", key, tag))


def run_local(
    job: Job,
    frames: Sequence[int] | None,
    workers: int,
    chunks: int | None = None,
    threads: int | None = None,
    gpus: Sequence[str] = (),
    executable: Sequence[str] = (sys.executable, "-m", "vfxmatte"),
    progress: Progress | None = None,
    memory_gb: float | None = None,
) -> LocalReport:
    """Run ``frames`` of ``job`` (default: the job's frames) as ``chunks`` chunks (default:
    one per worker) on ``workers`` processes at once.

    ``memory_gb`` is each matting worker's ``--memory-gb``
    (:func:`~vfxmatte.farm.commands.task_memory_gb`). ``progress`` receives a
    :class:`~vfxmatte.pipeline.FrameEvent` per frame event of every
    worker (``index`` counts over both stages), and a :class:`WorkerExit` as each worker ends.

    Raises:
        FarmError: bad worker, chunk or thread counts.
        KeyboardInterrupt: after every worker has been stopped.
    """
    from vfxmatte.pipeline import job_frames

    if workers < 1:
        raise FarmError(f"local farm: --workers must be at least 1, got {workers}")
    wanted = list(frames) if frames is not None else job_frames(job)
    count = chunks if chunks is not None else default_chunks(workers, len(wanted))
    if count < 1:
        raise FarmError(f"local farm: at least 1 chunk, got {count}")
    share = threads if threads is not None else max(1, _cores() // min(workers, count))
    stages = (["propagate"] if job.trimap.propagated else []) + ["run"]
    non_empty = [i + 1 for i, piece in enumerate(split_frames(wanted, count)) if piece]
    total = len(wanted) * len(stages)
    report = LocalReport(job.shot, job.job_hash, job.output.path)
    start = time.perf_counter()
    finished = 0
    for stage in stages:
        tasks = [Chunk(i, count) for i in non_empty]
        running: dict[tuple[str, int], subprocess.Popen] = {}
        open_streams: dict[tuple[str, int], int] = {}
        last_error: dict[tuple[str, int], str] = {}
        lines: "queue.Queue[tuple]" = queue.Queue()
        slot = 0

        def ended(key: tuple[str, int], proc: subprocess.Popen) -> None:
            """Record (and report) a worker that has exited."""
            end = WorkerExit(key[0], Chunk(key[1], count), proc.pid, proc.returncode, last_error.get(key))
            report.workers.append(end)
            if progress is not None:
                progress(end)
        try:
            while tasks or running:
                while tasks and len(running) < workers:
                    chunk = tasks.pop(0)
                    argv = [*executable, "--log-format", "json", stage, job_path(job), "--chunk", str(chunk),
                            "--threads", str(share)]
                    if stage == "run":
                        argv += memory_args(memory_gb)
                    if frames is not None:
                        argv += ["--frames", str(FrameRanges.of(wanted))]  # in order, as runs
                    env = {**os.environ, **{v: str(share) for v in _THREAD_VARS}}
                    if gpus:
                        env["CUDA_VISIBLE_DEVICES"] = str(gpus[slot % len(gpus)])
                    slot += 1
                    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                            start_new_session=True)
                    key = (stage, chunk.index)
                    running[key] = proc
                    open_streams[key] = 2
                    for tag, stream in (("out", proc.stdout), ("err", proc.stderr)):
                        threading.Thread(target=_reader, args=(stream, tag, key, lines), daemon=True).start()
                tag, key, line = lines.get()
                if tag == "eof":
                    open_streams[key] -= 1
                    if open_streams[key] == 0:
                        proc = running.pop(key)
                        proc.wait()
                        ended(key, proc)
                    continue
                if tag == "err":
                    if line.strip():
                        last_error[key] = line
                    continue
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                kind = ev.get("event")
                if kind == "error":
                    last_error[key] = f"vfxmatte: error: {ev.get('message')}"
                if kind not in ("started", "done", "skipped", "failed"):
                    continue
                if kind != "started":
                    finished += 1
                if stage == "run":
                    frame = int(ev["frame"])
                    if kind == "done":
                        report.done.append(frame)
                        report.seconds[frame] = float(ev.get("seconds") or 0.0)
                    elif kind == "skipped":
                        report.skipped[frame] = ev.get("reason", "")
                    elif kind == "failed":
                        report.failed[frame] = ev.get("reason", "")
                if progress is not None:
                    progress(FrameEvent(kind, int(ev["frame"]), max(1, finished), total,
                                        output=ev.get("output"), seconds=ev.get("seconds"), reason=ev.get("reason")))
        except BaseException:
            _stop(running.values())
            for key, proc in running.items():
                ended(key, proc)
            raise
        if any(w.code not in (EXIT_OK, EXIT_FRAMES_FAILED) for w in report.workers):
            break  # a bad job or a crash: the next stage would fail the same way
    report.done.sort()
    report.total_seconds = time.perf_counter() - start
    return report


def _stop(procs) -> None:
    """One SIGINT to every live worker; kill those still running after the grace period."""
    procs = [p for p in procs if p.poll() is None]
    for p in procs:
        try:
            p.send_signal(signal.SIGINT)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + STOP_GRACE_S
    for p in procs:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
