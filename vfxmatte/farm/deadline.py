"""A Deadline job for a shot: job info and plugin info files for ``deadlinecommand``.

One CommandLine-plugin job whose tasks run ``vfxmatte run`` on a chunk each. Keyframe jobs
need no separate propagation job here: a task propagates the trimaps it lacks on the fly (to
the same bytes a ``propagate`` run writes); a shared ``trimap.propagation.cache`` keeps chunks
from recomputing each other's flows.

The plugin's ``Arguments`` reach the program through .NET's process launcher, no shell: they
are quoted by the Windows argument rules (:func:`~vfxmatte.farm.commands.windows_arguments`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from vfxmatte.errors import FarmError
from vfxmatte.farm.commands import (
    DEADLINE_TOKENS,
    TaskPlan,
    memory_args,
    plan_tasks,
    task_argv,
    threads_args,
    windows_arguments,
)
from vfxmatte.io.atomic import atomic_write
from vfxmatte.jobs import FarmSpec, Job

__all__ = ["DeadlineJob", "build_job", "submit", "write_job"]

COMMAND = "deadlinecommand"


@dataclass(frozen=True)
class DeadlineJob:
    """The two key=value files of a CommandLine job, and the tasks they describe."""

    job_info: dict[str, str]
    plugin_info: dict[str, str]
    tasks: TaskPlan


def _deadline_pattern(path: str) -> str:
    """An output file name in Deadline's spelling: the frame number as ``#`` padding."""
    from vfxmatte.io.sequence import FrameSequence

    seq = FrameSequence(path)
    pad = max(1, seq.padding)
    # Frames 0 and 99..9 differ in exactly the frame number's digits.
    a, b = seq.path(0).name, seq.path(10**pad - 1).name
    i = next(k for k, (x, y) in enumerate(zip(a, b)) if x != y)
    return a[:i] + "#" * pad + a[i + pad :]


def build_job(job: Job, frames: Sequence[int], farm: FarmSpec, memory_gb: float | None = None) -> DeadlineJob:
    """The job and plugin info of ``frames`` of ``job``; ``memory_gb``: the tasks'
    ``--memory-gb`` (:func:`~vfxmatte.farm.commands.task_memory_gb`)."""
    tasks = plan_tasks(frames, farm.chunk_size, DEADLINE_TOKENS)
    argv = task_argv(farm.argv, "run", job, tasks.task_frames, threads_args(farm) + memory_args(memory_gb))
    info = {
        "Plugin": "CommandLine",
        "Name": f"{job.shot} vfxmatte",
        "BatchName": job.shot,
        "Frames": tasks.frames,
        "ChunkSize": str(tasks.chunk_size),
    }
    for key, value in (("Pool", farm.pool), ("Group", farm.group), ("Priority", farm.priority)):
        if value is not None:
            info[key] = str(value)
    info["OutputDirectory0"] = str(Path(job.output.path).parent)
    info["OutputFilename0"] = _deadline_pattern(job.output.path)
    for i, (key, value) in enumerate(sorted(farm.env.items())):
        info[f"EnvironmentKeyValue{i}"] = f"{key}={value}"
    plugin = {"Executable": argv[0], "Arguments": windows_arguments(argv[1:]), "Shell": "default", "ShellExecute": "False"}
    return DeadlineJob(info, plugin, tasks)


def _check_line(key: str, value: str) -> None:
    # One key=value per line: a line break inside a value would start a new key.
    if re.search(r"[\r\n]", value):
        raise FarmError(f"Deadline: {key} may not hold a line break: {value!r}")


def write_job(built: DeadlineJob, folder: str | os.PathLike[str], stem: str) -> tuple[Path, Path]:
    """Write ``<stem>.job_info.job`` and ``<stem>.plugin_info.job`` into ``folder`` (atomically);
    returns their paths."""
    paths = []
    for kind, data in (("job_info", built.job_info), ("plugin_info", built.plugin_info)):
        for key, value in data.items():
            _check_line(key, value)
        text = "".join(f"{k}={v}\n" for k, v in data.items())
        path = Path(folder) / f"{stem}.{kind}.job"
        with atomic_write(path, error=FarmError, what=f"Deadline {kind} file") as tmp:
            tmp.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths[0], paths[1]


def submit_argv(job_info: Path, plugin_info: Path) -> list[str]:
    """The ``deadlinecommand`` call that submits the two files."""
    return [COMMAND, str(job_info), str(plugin_info)]


def submit(job_info: Path, plugin_info: Path, timeout: float = 300.0) -> str:
    """Run ``deadlinecommand JOB_INFO PLUGIN_INFO`` (no shell); returns its output.

    Raises:
        FarmError: ``deadlinecommand`` is not on PATH, fails, or reports no job ID.
    """
    exe = shutil.which(COMMAND)
    if exe is None:
        raise FarmError(f"Deadline: {COMMAND} is not on PATH (install the Deadline client, or submit the files by hand)")
    argv = [exe, *submit_argv(job_info, plugin_info)[1:]]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise FarmError(f"Deadline: {COMMAND} could not run: {exc}") from exc
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or "JobID=" not in proc.stdout:
        last = output.splitlines()[-1] if output else f"exit {proc.returncode}"
        raise FarmError(f"Deadline: {COMMAND} refused the job (exit {proc.returncode}): {last}")
    return proc.stdout
