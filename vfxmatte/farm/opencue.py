"""An OpenCue job for a shot, built with OpenCue's own pyoutline and sent through pycue.

Layers (shell commands, run without pycuerun so a node needs only vfxmatte, not pyoutline):

- ``propagate`` (jobs whose trimaps are propagated from keyframes): ``vfxmatte propagate`` per
  chunk, writing the propagated trimaps;
- ``matte``: ``vfxmatte run`` per chunk. It depends on ``propagate`` frame by frame (a frame's
  matte reads only its own trimap), or on the whole layer when the temporal stage is on (a
  frame's matte then reads its neighbours' trimaps too). ``run`` never needs the written
  trimaps to be right: a missing or stale one is propagated on the fly, to the same bytes.

pyoutline and pycue are an optional extra (``pip install 'vfxmatte[opencue]'``), imported only
here, on use.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from vfxmatte.errors import FarmError
from vfxmatte.farm.commands import (
    OPENCUE_TOKENS,
    TaskPlan,
    memory_args,
    plan_tasks,
    posix_command,
    task_argv,
    threads_args,
)
from vfxmatte.jobs import FarmSpec, Job

__all__ = ["OpenCueJob", "build_job", "submit"]

_INSTALL = "pip install 'vfxmatte[opencue]'"


def _outline() -> Any:
    try:
        import outline
        import outline.cuerun
        import outline.depend
        import outline.modules.shell
    except ImportError as exc:
        raise FarmError(f"OpenCue: pyoutline is not installed ({exc.name}): {_INSTALL}") from None
    return outline


@dataclass(frozen=True)
class OpenCueJob:
    """A built OpenCue job: its name, the job spec XML Cuebot takes, and each layer's command."""

    name: str
    spec: str
    layers: dict[str, str]
    tasks: TaskPlan


@contextlib.contextmanager
def _session_dir() -> Iterator[None]:
    """pyoutline writes a session folder while it serialises; keep it in a temporary folder
    that is removed afterwards (the shell layers never read it)."""
    from outline.config import config

    before = config.get("outline", "session_dir", raw=True)
    with tempfile.TemporaryDirectory(prefix="vfxmatte-opencue-") as tmp:
        config.set("outline", "session_dir", tmp)
        try:
            yield
        finally:
            config.set("outline", "session_dir", before)


def _launcher(job: Job, frames: Sequence[int], farm: FarmSpec, memory_gb: float | None) -> tuple[Any, dict[str, str], TaskPlan]:
    outline = _outline()
    from outline.config import config

    tasks = plan_tasks(frames, farm.chunk_size, OPENCUE_TOKENS)
    name = f"{job.shot}_vfxmatte"
    ol = outline.Outline(
        name,
        frame_range=tasks.frames,
        shot=farm.shot or job.shot,
        show=farm.show or config.get("outline", "default_show"),
    )
    layer_args: dict[str, Any] = {"range": tasks.frames, "chunk": tasks.chunk_size, "env": dict(farm.env)}
    for key in ("service", "cores", "memory"):
        if getattr(farm, key) is not None:
            layer_args[key] = getattr(farm, key)
    if farm.tags:
        layer_args["tags"] = list(farm.tags)
    commands: dict[str, str] = {}
    propagate = None
    if job.trimap.propagated:
        commands["propagate"] = posix_command(task_argv(farm.argv, "propagate", job, tasks.task_frames, threads_args(farm)))
        propagate = outline.modules.shell.Shell("propagate", command=commands["propagate"], **layer_args)
        ol.add_layer(propagate)
    extra = threads_args(farm) + memory_args(memory_gb)
    commands["matte"] = posix_command(task_argv(farm.argv, "run", job, tasks.task_frames, extra))
    matte = outline.modules.shell.Shell("matte", command=commands["matte"], **layer_args)
    ol.add_layer(matte)
    if propagate is not None:
        kind = outline.depend.DependType.LayerOnLayer if job.temporal.enabled else outline.depend.DependType.FrameByFrame
        matte.depend_on(propagate, kind)
    flags: dict[str, Any] = {"nomail": True, "pause": False}
    if farm.priority is not None:
        flags["priority"] = farm.priority
    return outline.cuerun.OutlineLauncher(ol, **flags), commands, tasks


def build_job(job: Job, frames: Sequence[int], farm: FarmSpec, memory_gb: float | None = None) -> OpenCueJob:
    """The OpenCue job of ``frames`` of ``job``: its spec XML (cjsl 1.15) without a Cuebot.
    ``memory_gb``: the matte layer's ``--memory-gb`` (:func:`~vfxmatte.farm.commands.task_memory_gb`).

    Raises:
        FarmError: pyoutline is not installed, or refuses the job.
    """
    launcher, commands, tasks = _launcher(job, frames, farm, memory_gb)
    with _session_dir():
        try:
            spec = launcher.serialize(use_pycuerun=False)
        except Exception as exc:  # noqa: BLE001 - pyoutline's own errors, one line each
            raise FarmError(f"OpenCue: pyoutline could not build the job of {job.source}: {exc}") from exc
    return OpenCueJob(launcher.get_outline().get_name(), spec, commands, tasks)


def submit(built: OpenCueJob, cuebot: str | None = None) -> list[str]:
    """Send a built job to Cuebot (``cuebot``: ``host`` or ``host:port``; default pycue's
    configuration or ``$CUEBOT_HOSTS``); returns the names of the jobs Cuebot made.

    Raises:
        FarmError: pycue is not installed, no Cuebot answers, or Cuebot refuses the spec.
    """
    try:
        import opencue
    except ImportError as exc:
        raise FarmError(f"OpenCue: pycue is not installed ({exc.name}): {_INSTALL}") from None
    try:
        if cuebot:
            opencue.Cuebot.setHosts([cuebot])
        jobs = opencue.api.launchSpecAndWait(built.spec)
    except Exception as exc:  # noqa: BLE001 - gRPC and pycue errors, reported as one line
        hosts = ", ".join(getattr(opencue.Cuebot, "Hosts", None) or []) or "none configured"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FarmError(f"OpenCue: could not submit {built.name} to Cuebot ({hosts}): {first}") from exc
    return [j.name() for j in jobs]
