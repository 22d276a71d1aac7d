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

from vfxmatte.farm.chunks import farm_range
from vfxmatte.jobs import Job

__all__ = ["FarmTokens", "OPENCUE_TOKENS", "DEADLINE_TOKENS", "TaskPlan", "plan_tasks", "posix_command", "windows_arguments"]

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
