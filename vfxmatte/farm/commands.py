"""What a farm task runs: ``vfxmatte run`` / ``vfxmatte propagate`` on a slice of frames.

A task's command names the job file by its absolute path (farm nodes see the same mounts)
and its frames by the farm's own tokens, which the farm replaces per task. Every argument is
quoted for what parses the command line: a POSIX shell for OpenCue (RQD runs the command
from a shell script), the Windows/.NET argument rules for Deadline's CommandLine plugin
(which hands ``Arguments`` to the process launcher without a shell). Paths with spaces,
quotes or ``$`` reach the program unchanged.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

from vfxmatte.errors import FarmError
from vfxmatte.farm.chunks import farm_range
from vfxmatte.jobs import FarmSpec, Job

__all__ = [
    "BOOKING_MARGIN",
    "BOOKING_MARGIN_MIN_GB",
    "DEADLINE_TOKENS",
    "FarmTokens",
    "OPENCUE_TOKENS",
    "Stage",
    "TaskPlan",
    "booking_gb",
    "memory_args",
    "plan_tasks",
    "posix_command",
    "task_memory_gb",
    "threads_args",
    "windows_arguments",
]

#: What a farm task runs: ``vfxmatte propagate`` or ``vfxmatte run``.
Stage = Literal["propagate", "run"]


@dataclass(frozen=True)
class FarmTokens:
    """The text a farm replaces with a task's first, last and only frame."""

    start: str
    end: str
    frame: str


#: OpenCue (Cuebot) frame tokens.
OPENCUE_TOKENS = FarmTokens("#FRAME_START#", "#FRAME_END#", "#IFRAME#")
#: Deadline frame tokens.
DEADLINE_TOKENS = FarmTokens("<STARTFRAME>", "<ENDFRAME>", "<STARTFRAME>")


@dataclass(frozen=True)
class TaskPlan:
    """How a shot's frames become farm tasks.

    ``frames`` is the farm's frame range (``1001-1100``, ``1001-1099x2``, or a list);
    ``chunk_size`` frames per task. A list that is not one arithmetic run can only go frame by
    frame (a task's START-END would name frames outside it), so its chunk size is 1.
    """

    frames: str
    chunk_size: int
    #: the ``--frames`` argument of a task, in the farm's tokens
    task_frames: str


def plan_tasks(frames: Sequence[int], chunk_size: int, tokens: FarmTokens) -> TaskPlan:
    """The farm frame range, chunk size and per-task ``--frames`` argument for ``frames``."""
    run = farm_range(frames)
    if run is None:
        return TaskPlan(",".join(str(f) for f in frames), 1, tokens.frame)
    text, step = run
    task = f"{tokens.start}-{tokens.end}" + (f"x{step}" if step > 1 else "")
    return TaskPlan(text, chunk_size, task)


#: Of the memory a farm task books (``farm.memory``), this share, and at least
#: :data:`BOOKING_MARGIN_MIN_GB`, is kept back from the matting budget the task is given
#: (``--memory-gb``, when the job sets none): the budget bounds :mod:`vfxmatte.memory`'s
#: estimate, and the margin holds what the estimate leaves out (its fit's residuals, allocator
#: slack, the frame being written), so the process stays within what it booked.
BOOKING_MARGIN = 0.1
BOOKING_MARGIN_MIN_GB = 0.25


def booking_gb(memory: str) -> float:
    """A farm memory booking (``8g``, ``512m``: OpenCue's units, 1024-based) in GiB."""
    return int(memory[:-1]) / (1 if memory.endswith("g") else 1024)


def task_memory_gb(job: Job, farm: FarmSpec, override: float | None = None) -> float | None:
    """The ``--memory-gb`` a matting task's command carries: ``override`` (the submit command's
    ``--memory-gb``); else, for a job that sets no ``model.memory_gb``, the booking
    (``farm.memory``) less :data:`BOOKING_MARGIN`; else None (the job file's own budget, read
    by every task, or none).

    Raises:
        FarmError: the booking leaves nothing once the margin is kept back.
    """
    if override is not None:
        return override
    if job.model.memory_gb is not None or farm.memory is None:
        return None
    booked = booking_gb(farm.memory)
    budget = round(booked - max(booked * BOOKING_MARGIN, BOOKING_MARGIN_MIN_GB), 3)
    if budget <= 0:
        raise FarmError(f"farm.memory {farm.memory}: nothing is left to matte in once {BOOKING_MARGIN_MIN_GB} GiB "
                        "is kept back for the process; book more memory")
    return budget


def memory_args(memory_gb: float | None) -> list[str]:
    """``--memory-gb GB`` of a matting task (:func:`task_memory_gb`), or nothing."""
    return [] if memory_gb is None else ["--memory-gb", repr(float(memory_gb))]


def threads_args(farm: FarmSpec) -> list[str]:
    """``--threads N`` of a task that books cores: it runs on them (torch, OpenCV and OIIO)."""
    return [] if farm.cores is None else ["--threads", str(max(1, int(farm.cores)))]


def job_path(job: Job) -> str:
    """The job file as farm nodes name it: absolute, in the spelling given (mount points kept)."""
    return os.path.abspath(job.source)


def task_argv(executable: Sequence[str], stage: Stage, job: Job, frames: str, extra: Sequence[str] = ()) -> list[str]:
    """The argument list of one task: ``EXECUTABLE STAGE JOB --frames FRAMES ...``."""
    return [*executable, stage, job_path(job), "--frames", frames, *extra]


def posix_command(argv: Sequence[str]) -> str:
    """``argv`` as one POSIX shell command line (every argument ``shlex.quote`` d)."""
    return shlex.join(argv)


def windows_arguments(argv: Sequence[str]) -> str:
    """``argv`` as one argument string under the Windows C runtime rules, which .NET's process
    launcher (Deadline's) also applies on Linux and macOS; no shell sees it."""
    return subprocess.list2cmdline(list(argv))


def spec_dir(job: Job, folder: str | os.PathLike[str] | None) -> Path:
    """Where submission files go: ``folder``, else ``<output dir>/farm``."""
    return Path(folder) if folder is not None else Path(job.output.path).parent / "farm"
