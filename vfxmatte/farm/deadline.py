"""A Deadline job for a shot: job info and plugin info files for ``deadlinecommand``.

A CommandLine-plugin job whose tasks run ``vfxmatte run`` on a chunk each. A job whose trimaps
are propagated from keyframes is two jobs, submitted in order: a propagation job whose tasks
run ``vfxmatte propagate`` on the same chunks, then the matte job, which depends on it through
Deadline's job info keys ``JobDependencies`` (the propagation job's ID, known once it is
submitted) and ``IsFrameDependent`` (a matte task is released as soon as the propagation tasks
of its frames are done; with the temporal stage on, whose mattes read their neighbours'
trimaps, once the whole propagation job is). ``run`` never needs the written trimaps to be
right (a missing or stale one is propagated on the fly, to the same bytes), so the dependency
saves work and never changes a matte.

The plugin's ``Arguments`` reach the program through .NET's process launcher, no shell: they
are quoted by the Windows argument rules (:func:`~vfxmatte.farm.commands.windows_arguments`).
"""

from __future__ import annotations

import dataclasses
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
    Stage,
    TaskPlan,
    memory_args,
    plan_tasks,
    task_argv,
    threads_args,
    windows_arguments,
)
from vfxmatte.io.atomic import atomic_write
from vfxmatte.io.sequence import FrameSequence
from vfxmatte.jobs import FarmSpec, Job

__all__ = [
    "DeadlineJob",
    "build_job",
    "build_jobs",
    "depending_on",
    "file_stem",
    "submit",
    "submit_jobs",
    "write_job",
]

COMMAND = "deadlinecommand"


@dataclass(frozen=True)
class DeadlineJob:
    """The two key=value files of a CommandLine job, and the tasks they describe."""

    job_info: dict[str, str]
    plugin_info: dict[str, str]
    tasks: TaskPlan
    #: what the job's tasks run
    stage: Stage = "run"


def _deadline_pattern(path: str) -> str:
    """An output file name in Deadline's spelling: the frame number as ``#`` padding."""
    seq = FrameSequence(path)
    pad = max(1, seq.padding)
    # Frames 0 and 99..9 differ in exactly the frame number's digits.
    a, b = seq.path(0).name, seq.path(10**pad - 1).name
    i = next(k for k, (x, y) in enumerate(zip(a, b)) if x != y)
    return a[:i] + "#" * pad + a[i + pad :]


def _command_job(job: Job, frames: Sequence[int], farm: FarmSpec, stage: Stage, name: str, output: str,
                 extra: list[str]) -> DeadlineJob:
    tasks = plan_tasks(frames, farm.chunk_size, DEADLINE_TOKENS)
    argv = task_argv(farm.argv, stage, job, tasks.task_frames, extra)
    info = {
        "Plugin": "CommandLine",
        "Name": name,
        "BatchName": job.shot,
        "Frames": tasks.frames,
        "ChunkSize": str(tasks.chunk_size),
    }
    for key, value in (("Pool", farm.pool), ("Group", farm.group), ("Priority", farm.priority)):
        if value is not None:
            info[key] = str(value)
    info["OutputDirectory0"] = str(Path(output).parent)
    info["OutputFilename0"] = _deadline_pattern(output)
    for i, (key, value) in enumerate(sorted(farm.env.items())):
        info[f"EnvironmentKeyValue{i}"] = f"{key}={value}"
    plugin = {"Executable": argv[0], "Arguments": windows_arguments(argv[1:]), "Shell": "default", "ShellExecute": "False"}
    return DeadlineJob(info, plugin, tasks, stage)


def build_job(job: Job, frames: Sequence[int], farm: FarmSpec, memory_gb: float | None = None) -> DeadlineJob:
    """The matte job of ``frames`` of ``job``; ``memory_gb``: the tasks' ``--memory-gb``
    (:func:`~vfxmatte.farm.commands.task_memory_gb`). For a keyframe job it is frame
    dependent on the propagation job (:func:`build_jobs`; ``JobDependencies`` is set at submit)."""
    built = _command_job(job, frames, farm, "run", f"{job.shot} vfxmatte", job.output.path,
                         threads_args(farm) + memory_args(memory_gb))
    if job.trimap.propagated and not job.temporal.enabled:
        built.job_info["IsFrameDependent"] = "True"
    return built


def build_jobs(job: Job, frames: Sequence[int], farm: FarmSpec, memory_gb: float | None = None) -> list[DeadlineJob]:
    """The Deadline jobs of ``frames`` of ``job`` in submission order: for a job whose trimaps
    are propagated, the propagation job (``vfxmatte propagate``, the same chunks; it loads no
    model, so gets no budget), then the matte job (:func:`build_job`) that depends on it."""
    jobs = []
    if job.trimap.propagated:
        jobs.append(_command_job(job, frames, farm, "propagate", f"{job.shot} vfxmatte propagate",
                                 job.propagated_trimaps, threads_args(farm)))
    return [*jobs, build_job(job, frames, farm, memory_gb)]


def depending_on(built: DeadlineJob, job_id: str) -> DeadlineJob:
    """``built`` waiting for the job ``job_id`` (Deadline's ``JobDependencies``)."""
    return dataclasses.replace(built, job_info={**built.job_info, "JobDependencies": job_id})


def file_stem(built: DeadlineJob, shot: str) -> str:
    """The files' stem: ``<shot>`` for the matte job, ``<shot>.propagate`` for the propagation job."""
    return shot if built.stage == "run" else f"{shot}.{built.stage}"


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


def _job_id(output: str) -> str | None:
    """The ID in the ``JobID=...`` line ``deadlinecommand`` prints for a submitted job."""
    for line in output.splitlines():
        if line.strip().startswith("JobID="):
            return line.strip().partition("=")[2].strip() or None
    return None


def submit(job_info: Path, plugin_info: Path, timeout: float = 300.0) -> str:
    """Run ``deadlinecommand JOB_INFO PLUGIN_INFO`` (no shell); returns the job's ID.

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
    found = _job_id(proc.stdout)
    if proc.returncode != 0 or found is None:
        last = output.splitlines()[-1] if output else f"exit {proc.returncode}"
        raise FarmError(f"Deadline: {COMMAND} refused the job (exit {proc.returncode}): {last}")
    return found


def submit_jobs(jobs: Sequence[DeadlineJob], folder: str | os.PathLike[str], shot: str) -> list[str]:
    """Submit ``jobs`` (:func:`build_jobs`) in order, each later one depending on the one
    before (its job info file rewritten with ``JobDependencies`` first); returns their IDs.

    Raises:
        FarmError: as :func:`submit`; jobs after a refused one are not submitted.
    """
    ids: list[str] = []
    for built in jobs:
        if ids:
            built = depending_on(built, ids[-1])
        job_info, plugin_info = write_job(built, folder, file_stem(built, shot))
        ids.append(submit(job_info, plugin_info))
    return ids
