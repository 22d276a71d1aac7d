"""The shot pipeline: plate -> colour -> trimap -> matte -> EXR, frame by frame.

:class:`ShotPipeline` holds what lives for a whole run (the model on its device, the colour
conversion) and processes frames one at a time:

1. **read** the plate frame (the job's layer) over its data window;
2. **colour**: RGB to the network's working encoding through :mod:`vfxmatte.color`; NaN, Inf
   and HDR values are sanitised there, so nothing non-finite reaches the alpha;
3. **trimap**: read it (``sequence``) or derive it from a roto mask (``mask``); it must match
   the plate's data window size. In the propagated modes (``keyframes``, ``mask`` with
   ``missing: propagate``) it is the written propagated trimap when up to date, else propagated
   now from the keyframes (:mod:`vfxmatte.keyframes`), in the display window and cropped to the
   data window;
4. **infer** through :class:`vfxmatte.engine.MattingSession`;
5. **write** a half-float EXR atomically: the alpha in the job's channel (``A`` or
   ``matte.A``), optionally beside the plate's RGB exactly as read; data and display windows and
   the plate's metadata are kept and provenance (``vfxmatte:*``) is added.

A frame that fails is recorded with its reason and the run goes on; :attr:`RunReport.exit_code`
is then 1 (70 when the failure was a bug: an exception that is no :class:`VfxMatteError`, OS or
out-of-memory error). Problems that concern every frame (no plate on disk, unloadable checkpoint, missing
device) raise before any frame runs. Nothing here prints: events go to a ``progress`` callback
and to :mod:`logging`.

Example:
    >>> from vfxmatte.jobs import load_job
    >>> report = run_job(load_job("jobs/shot010.yaml"), frames=[1001, 1002])  # doctest: +SKIP
    >>> report.exit_code, report.seconds_per_frame  # doctest: +SKIP
"""

from __future__ import annotations

import bisect
import contextlib
import json
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Protocol

import numpy as np

from vfxmatte import __version__
from vfxmatte import trimap as tm
from vfxmatte.color import ColorConverter
from vfxmatte.errors import (
    EXIT_FRAMES_FAILED,
    EXIT_INTERNAL,
    EXIT_OK,
    ImageReadError,
    InputError,
    MemoryBudgetError,
    PropagationError,
    SequenceError,
    TrimapError,
    VfxMatteError,
    is_internal,
    is_transient,
)
from vfxmatte.io.atomic import sweep_temps, temp_files
from vfxmatte.io.image import (
    ImageInfo,
    file_views,
    read_first_header,
    read_header,
    read_image,
    read_mask,
    read_trimap,
    verify_image,
    write_exr,
)
from vfxmatte.io.sequence import (
    FrameRanges,
    FrameSequence,
    format_frames,
    format_runs,
    nearest_frame,
    not_a_file,
    resolve_frames,
)
from vfxmatte.jobs import Job, MaskTrimap, has_frame_token
from vfxmatte.flow import FlowCache
from vfxmatte.keyframes import ShotPropagation, check_propagated_pattern, plate_flow_image, to_data_window, to_display_window
from vfxmatte.propagate import keyframes_used
from vfxmatte.temporal import Neighbour, TemporalSettings, smooth_alpha

__all__ = [
    "CheckReport",
    "FrameEvent",
    "FramePlan",
    "RunReport",
    "ShotPipeline",
    "job_frames",
    "pipeline_for",
    "propagate_job",
    "run_job",
]

log = logging.getLogger(__name__)

EventKind = Literal["planned", "started", "retried", "done", "skipped", "failed"]


@dataclass(frozen=True)
class FramePlan:
    """What the pipeline will do with one frame, decided before any pixel is read."""

    frame: int
    #: the output file of this frame
    output: Path
    #: the plate file to read (another frame's file when held); None when missing
    plate: Path | None = None
    #: the trimap or mask file to read; None when the plate is missing. Propagated modes: where
    #: the frame's propagated trimap is written (read when up to date, else propagated)
    trimap: Path | None = None
    #: the plate frame actually read, when ``missing: hold`` stands in for this one
    held_from: int | None = None
    #: set when the frame will be skipped (plate missing under ``skip``, output exists)
    skip_reason: str | None = None
    #: set when the frame cannot be done (plate or trimap missing)
    fail_reason: str | None = None
    #: set when ``skip_existing`` finds an output it cannot keep (incomplete, unreadable, or
    #: made by another job): why the frame is made again
    redo_reason: str | None = None
    #: a job of several views (:mod:`vfxmatte.multiview`): each view's own plan, in the order
    #: the file holds them (``plate``, ``trimap`` and ``held_from`` above are the first's)
    views: tuple[tuple[str, "FramePlan"], ...] = ()

    @property
    def source_frame(self) -> int:
        """The plate frame whose pixels are read."""
        return self.frame if self.held_from is None else self.held_from


@dataclass(frozen=True)
class FrameEvent:
    """One frame's progress, handed to the ``progress`` callback.

    ``index`` counts from 1 over the ``total`` frames of the run. ``started`` comes before a
    frame is processed; ``done``, ``skipped`` or ``failed`` after; a dry run sends ``planned``.
    ``retried``: a try of the frame failed in a way that can be transient and it is tried again
    (``reason`` says which try, why, and the wait; ``job.retries``).
    """

    kind: EventKind
    frame: int
    index: int
    total: int
    output: Path | None = None
    seconds: float | None = None
    reason: str | None = None
    #: the exception behind a ``failed`` event raised while processing (not for plan failures)
    error: BaseException | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the exception is left out; its message is ``reason``)."""
        d: dict[str, Any] = {"event": self.kind, "frame": self.frame, "index": self.index, "total": self.total}
        if self.output is not None:
            d["output"] = str(self.output)
        if self.seconds is not None:
            d["seconds"] = round(self.seconds, 4)
        if self.reason is not None:
            d["reason"] = self.reason
        return d


Progress = Callable[[FrameEvent], None]


def _log_failure(progress: Progress | None, frame: int, reason: str, exc_info: bool = False) -> None:
    """A frame failure is reported once: through the ``progress`` callback when there is one
    (its ``failed`` event; only a debug log here), else as a warning."""
    if progress is not None:
        log.debug("frame %d failed: %s", frame, reason)
    else:
        log.warning("frame %d failed: %s", frame, reason, exc_info=exc_info and log.isEnabledFor(logging.DEBUG))


@dataclass
class RunReport:
    """What a run did: frames done, skipped and failed (with reasons), and how long frames took."""

    shot: str
    job_hash: str
    output_pattern: str
    dry_run: bool = False
    done: list[int] = field(default_factory=list)
    skipped: dict[int, str] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)
    #: frames a dry run would matte
    planned: list[int] = field(default_factory=list)
    #: wall seconds of each frame done
    seconds: dict[int, float] = field(default_factory=dict)
    total_seconds: float = 0.0
    #: failed frames whose failure was a bug (:func:`~vfxmatte.errors.is_internal`)
    internal: set[int] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.failed

    @property
    def exit_code(self) -> int:
        """70 when a frame failed through a bug, else 1 when a frame failed, else 0."""
        if self.internal:
            return EXIT_INTERNAL
        return EXIT_OK if self.ok else EXIT_FRAMES_FAILED

    @property
    def seconds_per_frame(self) -> float | None:
        """Mean wall seconds per frame done; None when none was done."""
        return sum(self.seconds.values()) / len(self.seconds) if self.seconds else None

    def to_dict(self) -> dict[str, Any]:
        spf = self.seconds_per_frame
        return {
            "shot": self.shot,
            "job_hash": self.job_hash,
            "output": self.output_pattern,
            "dry_run": self.dry_run,
            "done": format_frames(self.done) if self.done else "",
            "planned": format_frames(self.planned) if self.planned else "",
            "skipped": {str(k): v for k, v in sorted(self.skipped.items())},
            "failed": {str(k): v for k, v in sorted(self.failed.items())},
            "seconds_per_frame": None if spf is None else round(spf, 4),
            "total_seconds": round(self.total_seconds, 3),
        }


#: Frames whose plate and trimap headers ``validate`` and ``run --dry-run`` open by default
#: (``--all-frames``: every one): spread over the frames on disk, the first and last included.
#: Each header is a file open, a round trip on a network filesystem, so the default's cost does
#: not grow with the shot; missing plates and trimaps, keyframe reach and ``skip_existing`` are
#: checked for every frame either way.
HEADER_SAMPLE = 100


@dataclass
class CheckReport:
    """What a run would do (:meth:`ShotPipeline.check`): runs of frames with one outcome each.

    ``groups`` holds ``(kind, reason, runs)`` in the order first met: ``kind`` is ``done``
    (would be matted), ``held`` (matted from another plate frame), ``skipped`` or ``failed``;
    ``reason`` names the files by their sequence patterns, so one reason covers many frames.
    """

    shot: str
    job_hash: str
    output_pattern: str
    #: frames asked for
    total: int
    #: frames whose headers were opened
    headers_checked: int = 0
    groups: list[tuple[str, str | None, list[range]]] = field(default_factory=list)
    _index: dict[tuple[str, str | None], int] = field(default_factory=dict, repr=False)
    #: the first frame's own reason in each group (its files by name, not pattern)
    _first: list[str | None] = field(default_factory=list, repr=False)

    def add(self, kind: str, reason: str | None, frames: range, own: str | None = None) -> None:
        """Record that ``frames`` (in processing order) would end as ``kind`` for ``reason``
        (``own``: the reason as the frame itself gives it, when it names its files)."""
        key = (kind, reason)
        if key not in self._index:
            self._index[key] = len(self.groups)
            self.groups.append((kind, reason, []))
            self._first.append(own if own is not None else reason)
        runs = self.groups[self._index[key]][2]
        # A one-frame range keeps the step of the run it was cut from, so frames of a stepped
        # range (1001-1100x2) join up as they come.
        if runs and frames.step == runs[-1].step and frames[0] == runs[-1][-1] + frames.step:
            runs[-1] = range(runs[-1].start, frames.stop, frames.step)
        else:
            runs.append(frames)

    def runs(self) -> list[tuple[str, str | None, list[range]]]:
        """The groups, a one-frame group with that frame's own reason (its files by name)."""
        return [(k, first if sum(map(len, runs)) == 1 else reason, runs)
                for (k, reason, runs), first in zip(self.groups, self._first)]

    def count(self, kind: str) -> int:
        return sum(len(r) for k, _, runs in self.groups if k == kind for r in runs)

    @property
    def exit_code(self) -> int:
        """1 when some frame would fail, else 0."""
        return EXIT_FRAMES_FAILED if self.count("failed") else EXIT_OK

    def to_dict(self) -> dict[str, Any]:
        return {
            "shot": self.shot,
            "job_hash": self.job_hash,
            "output": self.output_pattern,
            "frames": self.total,
            "headers_checked": self.headers_checked,
            **{kind: [{"frames": format_runs(runs, limit=50), "count": sum(map(len, runs)), "reason": reason}
                      for k, reason, runs in self.runs() if k == kind]
               for kind in ("failed", "skipped", "held", "done")},
        }


def _pattern_reason(reason: str | None, frame: int, pipe: "ShotPipeline") -> str | None:
    """``reason`` of one frame with its own file names written as their sequence patterns and
    a leading ``frame N:`` dropped, so the same failure of many frames is one reason."""
    if reason is None:
        return None
    reason = reason.removeprefix(f"frame {frame}: ")
    seqs = [pipe._plate, pipe._output] + ([pipe._trimap] if pipe._trimap is not None else [])
    for seq in seqs:
        reason = reason.replace(str(seq.path(frame)), seq.pattern)
    return reason


def _held_parts(seg: range, existing: list[int]) -> list[tuple[range, int]]:
    """``seg`` (frames not on disk, in order) cut into runs that ``missing: hold`` reads from one
    same plate frame (the nearest in ``existing``, sorted; ties to the earlier)."""
    parts: list[tuple[range, int]] = []
    i = 0
    while i < len(seg):
        f = seg[i]
        src = nearest_frame(existing, f)
        j = bisect.bisect_left(existing, src)
        lo = existing[j - 1] + (src - existing[j - 1]) // 2 + 1 if j > 0 else None
        hi = src + (existing[j + 1] - src) // 2 if j + 1 < len(existing) else None
        if seg.step > 0:
            end = seg[-1] if hi is None else min(hi, seg[-1])
            n = (end - f) // seg.step + 1
        else:
            end = seg[-1] if lo is None else max(lo, seg[-1])
            n = (f - end) // -seg.step + 1
        parts.append((seg[i : i + n], src))
        i += n
    return parts


class Matter(Protocol):
    """What the pipeline needs of a session (a :class:`~vfxmatte.engine.MattingSession`).

    The attributes are the frame's provenance: every EXR written records them.
    """

    @property
    def model_name(self) -> str:
        """The network's architecture name (``vfxmatte:model_arch``)."""
        ...

    @property
    def model_hash(self) -> str:
        """sha256 of the checkpoint file, "" when unknown (``vfxmatte:model_hash``)."""
        ...

    @property
    def device(self) -> Any:
        """Where the network runs; ``str()`` of it is written (``vfxmatte:device``: cpu, cuda:0)."""
        ...

    @property
    def precision(self) -> str:
        """The numeric mode the network runs in (``vfxmatte:precision``: fp32, bf16, ...)."""
        ...

    def matte(self, image: np.ndarray, trimap: np.ndarray, progress: Any = None, name: str = "frame") -> np.ndarray: ...


@dataclass(frozen=True)
class _Matted:
    """One plate frame as read and matted: its RGB as read and header, its trimap and the
    network's alpha over the data window, and the flow image of its display window."""

    rgb: np.ndarray
    info: ImageInfo
    trimap: np.ndarray
    alpha: np.ndarray
    image: np.ndarray

    def canvas(self, pixels: np.ndarray) -> np.ndarray:
        """Data-window pixels on the display-window canvas (0 outside the data window)."""
        return to_display_window(pixels, self.info, fill=0.0)

    def valid(self) -> np.ndarray:
        """Where the display-window canvas holds data-window pixels."""
        return to_display_window(np.ones(self.alpha.shape, np.float32), self.info, fill=0.0) > 0


class ShotPipeline:
    """Runs a :class:`~vfxmatte.jobs.Job`: opens the model once, then processes frames.

    Use as a context manager (or call :meth:`close`) so the model and its device memory are
    released::

        with ShotPipeline(job) as pipe:
            report = pipe.run(frames=[1001, 1002])

    Args:
        job: the validated job.
        device: overrides ``job.model.device`` (``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps``).
        session: an already-open session to use instead of loading ``job.model.checkpoint``.
    """

    def __init__(self, job: Job, device: str | None = None, session: Matter | None = None) -> None:
        self.job = job
        self.device = device or job.model.device
        self._session: Matter | None = session
        self._own_session = session is None
        self._converter: ColorConverter | None = None
        self._rgb_out: ColorConverter | None = None  # plate -> output.rgb_colorspace (RGBA mode)
        self._plate = FrameSequence(job.plate.path)
        self._output = FrameSequence(job.output.path)
        tri_path = job.trimap.path
        self._trimap = FrameSequence(tri_path) if has_frame_token(tri_path) else None
        #: trimaps propagated from keyframes (built on first use: it needs the colour conversion)
        self.propagated = job.trimap.propagated
        self._propagation: ShotPropagation | None = None
        #: output folder -> its writers' leftover temporary files by target name (listed once)
        self._temps: dict[Path, dict[str, list[Path]]] = {}
        if self.propagated:
            self._trimap = FrameSequence(job.propagated_trimaps)
        #: the temporal stage's settings, None when it is off; its flows' cache; and the mattes
        #: of the current window (see :meth:`_matte`)
        self._temporal: TemporalSettings | None = job.temporal.settings() if job.temporal.enabled else None
        cache = job.temporal.cache
        if cache is None and self.propagated:
            cache = job.trimap.propagation.cache
        self._temporal_flows = FlowCache(cache)
        self._matted: OrderedDict[tuple[int, str, str], _Matted] = OrderedDict()

    # -- lifetime
    def __enter__(self) -> "ShotPipeline":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Build the colour conversion and load the model (once; later calls do nothing).

        Raises:
            ColorError, CheckpointError, DeviceError, MemoryBudgetError: for the whole run.
        """
        self._open_colour()
        out = self.job.output
        if out.rgba and out.rgb_colorspace is not None and self._rgb_out is None:
            self._rgb_out = ColorConverter(self.job.color.config, self.job.plate.colorspace, out.rgb_colorspace)
        if self._session is None:
            from vfxmatte.engine import MattingSession
            from vfxmatte.memory import job_held_pixel_bytes

            m = self.job.model
            with self._budget_named():
                self._session = MattingSession.from_checkpoint(
                    m.checkpoint,
                    device=self.device,
                    precision=m.precision,
                    tile_size=m.tile_size,
                    overlap=m.overlap,
                    batch_size=m.batch_size,
                    memory_budget=None if m.memory_gb is None else int(m.memory_gb * 2**30),
                    held_pixel_bytes=job_held_pixel_bytes(self.job),
                    tta=m.tta,
                    sparse=m.sparse,
                )
            log.debug("loaded %s on %s", m.checkpoint, self._session.device)

    @contextlib.contextmanager
    def _budget_named(self, plate: Path | None = None) -> Iterator[None]:
        """A :class:`MemoryBudgetError` raised inside names where the budget was set (the job
        file and line of ``model.memory_gb``) and the plate whose size did not fit."""
        try:
            yield
        except MemoryBudgetError as exc:
            line = self.job.lines.get(("model", "memory_gb"))
            where = f"{self.job.source}:{line[1]}" if line else self.job.source
            raise MemoryBudgetError(f"{where}: {exc}" + (f" ({plate})" if plate is not None else "")) from None

    def _open_colour(self) -> ColorConverter:
        if self._converter is None:
            self._converter = ColorConverter(self.job.color.config, self.job.plate.colorspace)
        return self._converter

    @property
    def propagation(self) -> ShotPropagation:
        """The job's keyframe propagation (propagated modes only; builds the colour conversion)."""
        if self._propagation is None:
            self._propagation = ShotPropagation(self.job, self._open_colour())
        return self._propagation

    def close(self) -> None:
        """Release the model (and, on CUDA, its cached device memory)."""
        if self._own_session and self._session is not None:
            device = str(self._session.device)
            self._session = None
            if device.startswith("cuda"):
                import torch

                torch.cuda.empty_cache()

    # -- planning
    def plan(self, frames: Iterable[int] | None = None, outputs: bool = True) -> list[FramePlan]:
        """Decide per frame what to read and write, and which frames skip or fail.

        Args:
            frames: frames to process; default the job's ``plate.frames``, else the range in
                the plate pattern, else every plate frame on disk.
            outputs: apply ``skip_existing`` (verifying existing mattes); False plans the
                inputs only (propagating trimaps, a temporal neighbour), reading no matte.

        In the propagated modes a frame's ``trimap`` is where its propagated trimap is written
        (it need not exist); a frame beyond ``max_distance`` of every keyframe fails.

        Raises:
            SequenceError: no frames requested, or no plate frame at all exists on disk (a
                requested frame missing fails or skips by itself, as ``plate.missing`` says).
            TrimapError: propagated modes: no keyframe on disk.
        """
        seq, policy = self._plate, self.job.plate.missing
        wanted = list(dict.fromkeys(int(f) for f in frames)) if frames is not None else job_frames(self.job)
        # Resolved as under hold, which stops the run only when no plate frame exists at all;
        # under error and skip a frame standing in for another is dropped, so each missing
        # frame fails or skips by itself below (a farm chunk none of whose frames is on disk too).
        found = {f: p for f, p in resolve_frames(seq, wanted, "hold") if policy == "hold" or p == seq.path(f)}
        by_path = {seq.path(f): f for f in seq.discover()} if policy == "hold" else {}
        keyframes = self._keyframes_for_plan()
        job_hash = self.job.job_hash

        plans = []
        for f in wanted:
            out = self._output.path(f)
            if f not in found:
                what = not_a_file(seq.path(f)) or "missing"
                reason = self._plate_missing(seq.path(f), what)
                if policy == "skip":
                    plans.append(FramePlan(f, out, skip_reason=reason))
                else:
                    plans.append(FramePlan(f, out, fail_reason=reason))
                continue
            plate = found[f]
            hold = by_path[plate] if plate != seq.path(f) else None
            plans.append(self._plan_frame(f, out, plate, hold, keyframes, job_hash, outputs))
        return plans

    def _plan_frame(
        self, f: int, out: Path, plate: Path, hold: int | None, keyframes: list[int] | None, job_hash: str, outputs: bool
    ) -> FramePlan:
        """The plan of frame ``f`` whose plate file ``plate`` (frame ``hold``'s when held) is on
        disk: its trimap, and whether it is skipped, made again or fails before any pixel."""
        src = f if hold is None else hold
        trimap = self._trimap.path(src) if self._trimap is not None else Path(self.job.trimap.path)
        redo = None
        if outputs:
            kept, redo = self._existing_output(f, out, job_hash)
            if kept is not None:
                return FramePlan(f, out, plate, trimap, hold, skip_reason=kept)
        if keyframes is not None:
            reason = self._too_far(src, keyframes)
            return FramePlan(f, out, plate, trimap, hold, fail_reason=reason, redo_reason=redo)
        what = None if trimap.is_file() else not_a_file(trimap) or "not a regular file"
        if what is not None:
            kind = "mask" if isinstance(self.job.trimap, MaskTrimap) else "trimap"
            reason = f"{kind} missing: {trimap}" if what == "missing" else f"{kind} {trimap} is {what}, not a file"
            return FramePlan(f, out, plate, trimap, hold, fail_reason=reason, redo_reason=redo)
        return FramePlan(f, out, plate, trimap, hold, redo_reason=redo)

    def _existing_output(self, f: int, out: Path, job_hash: str) -> tuple[str | None, str | None]:
        """``(skip reason, redo reason)`` of frame ``f``'s existing output ``out`` under
        ``skip_existing``: kept (its skip reason), or made again (why), or neither (no output,
        or ``skip_existing`` off)."""
        if not self.job.output.skip_existing or not (out.exists() or out.is_symlink()):
            return None, None
        redo = self._cannot_keep(out, job_hash)
        if redo is None:
            return f"output exists: {out}", None
        log.warning("frame %d: %s: it is made again", f, redo)
        return None, redo

    @staticmethod
    def _cannot_keep(out: Path, job_hash: str) -> str | None:
        """Why ``skip_existing`` may not keep the existing output ``out``; None when it may:
        every pixel reads back and its ``vfxmatte:job_hash`` is ``job_hash``."""
        try:
            info = verify_image(out)
        except ImageReadError as exc:
            return f"existing output is incomplete or unreadable ({exc})"
        made_by = info.metadata.get("vfxmatte:job_hash")
        if made_by != job_hash:
            by = f"job hash {made_by[:12]}" if isinstance(made_by, str) else "no vfxmatte:job_hash"
            return f"existing output {out} was made by another job ({by}; this job: {job_hash[:12]})"
        return None

    def _keyframes_for_plan(self) -> list[int] | None:
        """The keyframes of a propagated mode (None otherwise), without reading any pixel."""
        if not self.propagated:
            return None
        if self._propagation is not None:
            return self._propagation.keyframe_frames
        # Planning reads no pixels and builds no colour conversion: the keyframe list only.
        return ShotPropagation.keyframe_list(self.job)

    def _too_far(self, frame: int, keyframes: list[int]) -> str | None:
        try:
            keyframes_used(frame, keyframes, self.job.trimap.propagation.max_distance)
        except PropagationError as exc:
            return str(exc)
        return None

    def check_keyframes(self, item: FramePlan) -> None:
        """Read every keyframe and check it against ``item``'s plate display window: a bad
        keyframe stops the whole run, naming its file.

        Raises:
            TrimapError: a keyframe missing, unreadable, off the palette or of the wrong size.
        """
        if item.plate is not None:
            self.propagation.keyframes(self.propagation.flow_image(item.source_frame).shape)

    @staticmethod
    def _plate_missing(path: Path | str, what: str) -> str:
        """The reason a frame fails or skips when its plate file ``path`` is not on disk as a
        regular file (``what``: :func:`~vfxmatte.io.sequence.not_a_file`)."""
        return f"plate frame missing: {path}" if what == "missing" else f"plate frame {path} is {what}, not a file"

    @staticmethod
    def _check_trimap_size(item: FramePlan, width: int, height: int, info: ImageInfo) -> None:
        """A trimap (or mask) must cover the plate's data window exactly."""
        if (width, height) != (info.width, info.height):
            raise TrimapError(
                f"frame {item.frame}: trimap {item.trimap} is {width}x{height} but the "
                f"plate's data window is {info.width}x{info.height} ({item.plate})"
            )

    # -- checking without running
    def check_frame(self, item: FramePlan) -> None:
        """What processing ``item`` would refuse that the files show without reading the plate's
        pixels: the plate's layer and channels, deep, volume or luminance/chroma files and
        unreadable ones (the checks :func:`read_image` makes before its pixels); the trimap
        read whole as run reads it (unreadable, coloured, off the palette), or the mask's
        header; either not the plate's data window size.

        Raises:
            VfxMatteError: the error processing the frame would raise, naming the file.
        """
        if item.plate is None or item.trimap is None:
            raise SequenceError(f"frame {item.frame}: nothing to read ({item.fail_reason or item.skip_reason})")
        info = read_header(item.plate, layer=self.job.plate.layer, view=self.job.plate.view)
        spec = self.job.trimap
        if self.propagated:
            return
        if isinstance(spec, MaskTrimap):
            mask = read_first_header(item.trimap)
            self._check_trimap_size(item, mask.width, mask.height, info)
        else:  # a trimap is small: read whole, as run reads it (palette, grey, size)
            header = read_first_header(item.trimap)  # its size first, as run checks it
            self._check_trimap_size(item, header.width, header.height, info)
            trimap = read_trimap(Path(str(item.trimap)), tolerance=spec.tolerance)
            self._check_trimap_size(item, trimap.shape[1], trimap.shape[0], info)

    def check(self, frames: Iterable[int] | FrameRanges | None = None, all_frames: bool = False) -> "CheckReport":
        """What a run of ``frames`` would do, frame by frame, as runs of frames with one outcome.

        Every frame is planned as :meth:`plan` plans it (the same per-frame code); frames not
        on disk are handled a run at a time, so a range of millions of frames costs one folder
        listing. Frames whose plate is on disk have their plate and trimap headers opened
        (:meth:`check_frame`): all of them with ``all_frames``, else :data:`HEADER_SAMPLE`
        spread over them (the first and last included). Loads no model and reads no plate
        pixels (trimaps are read whole; existing outputs under ``skip_existing`` are verified
        as :meth:`plan` does).

        Raises:
            SequenceError, TrimapError: as :meth:`plan` (nothing to run at all).
        """
        seq, policy = self._plate, self.job.plate.missing
        if frames is None:
            ranges = self.job.plate.frame_ranges
            wanted = ranges if ranges is not None else FrameRanges.of(seq.frames)
        else:
            wanted = FrameRanges.of(frames)
        if not wanted:
            raise SequenceError(f"no frames requested from {seq.pattern}")
        existing, odd = seq.scan()
        if not existing:
            raise SequenceError(f"no frames of {seq.pattern} exist on disk (requested {wanted})")
        keyframes = self._keyframes_for_plan()
        job_hash = self.job.job_hash
        report = CheckReport(self.job.shot, self.job.job_hash, self.job.output.path, len(wanted))
        on_disk: list[tuple[int, str | None]] = sorted([(f, None) for f in existing] + list(odd.items()))
        keys = [f for f, _ in on_disk]

        # Per run, in its order: the frames on disk (as files or not) and the gaps between.
        pieces: list[tuple[range, str | None]] = []  # (one frame or a gap, what; "gap" for gaps)
        for run in wanted.runs:
            lo, hi = min(run[0], run[-1]), max(run[0], run[-1])
            inside = [(f, w) for f, w in on_disk[bisect.bisect_left(keys, lo) : bisect.bisect_right(keys, hi)] if f in run]
            if run.step < 0:
                inside.reverse()
            prev = -1
            for f, what in inside:
                i = (f - run.start) // run.step
                if i > prev + 1:
                    pieces.append((run[prev + 1 : i], "gap"))
                pieces.append((run[i : i + 1], what))
                prev = i
            if prev + 1 < len(run):
                pieces.append((run[prev + 1 :], "gap"))

        files = [r[0] for r, what in pieces if what is None]
        if all_frames or len(files) <= HEADER_SAMPLE:
            sample = set(files)
        else:
            sample = {files[round(k * (len(files) - 1) / (HEADER_SAMPLE - 1))] for k in range(HEADER_SAMPLE)}
        report.headers_checked = len(sample)
        if files:
            self.check_view(seq.path(files[0]))
            self.check_budget(seq.path(files[0]))
        if self.propagated and files:
            # As run's check_keyframes, from headers: a bad keyframe stops the whole run.
            try:
                first = read_header(seq.path(files[0]), layer=self.job.plate.layer, view=self.job.plate.view)
            except VfxMatteError:
                first = None  # that frame's own check reports it
            if first is not None:
                self.propagation.check_headers((first.full_height, first.full_width))
        sources: dict[int, tuple[str, str | None]] = {}  # a plate frame on disk -> its outcome as a source

        def as_source(f: int) -> tuple[str, str | None]:
            if f not in sources:
                item = self._plan_frame(f, self._output.path(f), seq.path(f), None, keyframes, job_hash, outputs=False)
                sources[f] = self._outcome(item, f in sample)
            return sources[f]

        def held(part: range, src: int) -> None:
            kind, reason = as_source(src)
            if kind == "done":
                kind, reason = "held", f"held from frame {src}"
            report.add(kind, reason if kind == "held" else _pattern_reason(reason, src, self), part, reason)

        for part, what in pieces:
            if what is None:  # a plate file: planned as run plans it
                f = part[0]
                item = self._plan_frame(f, self._output.path(f), seq.path(f), None, keyframes, job_hash, outputs=True)
                kind, reason = self._outcome(item, f in sample)
                if kind != "skipped":
                    sources[f] = (kind, reason)
                report.add(kind, _pattern_reason(reason, f, self), part, reason)
            elif policy == "hold":
                for piece, src in _held_parts(part, existing):
                    held(piece, src)
            elif what == "gap":
                report.add("skipped" if policy == "skip" else "failed", self._plate_missing(seq.pattern, "missing"), part)
            else:  # a directory, a FIFO ... where the plate file should be
                own = self._plate_missing(seq.path(part[0]), what)
                report.add("skipped" if policy == "skip" else "failed", _pattern_reason(own, part[0], self), part, own)
        return report

    def check_view(self, plate: Path | None) -> None:
        """``plate.view`` must be a view of the plate: checked on one plate file whose header
        reads (one that does not is its frame's own failure), for the whole run.

        Raises:
            InputError: the plate names views and ``plate.view`` is not one of them.
        """
        view = self.job.plate.view
        if view is None or plate is None:
            return
        try:
            present = file_views(plate)
        except ImageReadError:
            return
        if present and view not in present:
            line = self.job.lines.get(("plate", "view"))
            where = f"{self.job.source}:{line[1]}" if line else self.job.source
            raise InputError(f"{where}: plate.view: no view {view!r} in {plate} (views: {', '.join(present)})")

    def check_budget_of(self, frame: int) -> None:
        """:meth:`check_budget` on plate ``frame``'s file."""
        self.check_budget(self._plate.path(frame))

    def check_budget(self, plate: Path | None) -> None:
        """The memory budget (``model.memory_gb``) must fit a frame of ``plate``'s size: planned
        as the session plans it (the open session's, else :func:`vfxmatte.memory.job_budget`
        without loading weights), once for the run, on one plate file whose header reads (one
        that does not is its frame's own failure).

        Raises:
            MemoryBudgetError: not even the smallest tiles fit, naming the key (and its line).
        """
        if self.job.model.memory_gb is None or plate is None:
            return
        try:
            info = read_header(plate, layer=self.job.plate.layer, view=self.job.plate.view)
        except VfxMatteError:
            return
        with self._budget_named(plate):
            tiling_for = getattr(self._session, "tiling_for", None)
            if tiling_for is not None:
                tiling_for(info.height, info.width)
            else:
                from vfxmatte.memory import job_budget

                budget, (tile, overlap, batch) = job_budget(self.job, self.device)  # type: ignore[misc]
                budget.check_floor(tile, overlap, batch)
                budget.tiling(info.height, info.width, tile, overlap, batch)

    def _outcome(self, item: FramePlan, headers: bool) -> tuple[str, str | None]:
        """``(kind, reason)`` of a planned frame on disk: skipped, failed (the plan's reason,
        else with ``headers`` what :meth:`check_frame` finds) or done."""
        if item.skip_reason is not None:
            return "skipped", item.skip_reason
        if item.fail_reason is not None:
            return "failed", item.fail_reason
        if headers:
            try:
                self.check_frame(item)
            except VfxMatteError as exc:
                return "failed", str(exc)
        return "done", item.redo_reason

    # -- one frame
    def _read_trimap(self, item: FramePlan, info: ImageInfo) -> np.ndarray:
        if self.propagated:
            shape = (info.full_height, info.full_width)
            canvas = self.propagation.trimap(item.source_frame, shape, written=item.trimap)
            return to_data_window(canvas, info)
        spec, path = self.job.trimap, Path(str(item.trimap))
        # The size from the header first: a small file can claim a huge image (a 400 KB PNG
        # of 20000x20000 decodes to gigabytes) that the size check would refuse anyway.
        header = read_first_header(path)
        self._check_trimap_size(item, header.width, header.height, info)
        if isinstance(spec, MaskTrimap):
            return tm.from_mask(read_mask(path), spec.band_px, spec.threshold)
        return read_trimap(path, tolerance=spec.tolerance)

    def provenance(self, item: FramePlan) -> dict[str, Any]:
        """The ``vfxmatte:*`` metadata written into a frame's EXR."""
        session = self._session
        if session is None:
            raise VfxMatteError("provenance: the pipeline is not open (no model loaded yet)")
        meta: dict[str, Any] = {
            "vfxmatte:version": __version__,
            # "starter" for a built-in, else the checkpoint file's name without its suffix
            "vfxmatte:model": Path(self.job.model.checkpoint).stem,
            "vfxmatte:model_arch": session.model_name or "unknown",
            "vfxmatte:model_hash": session.model_hash or "unknown",
            # where and at what precision the network ran (a farm mixing bf16 and fp32 nodes
            # gives slightly different mattes: pin model.precision to fp32 for bit-stable shots)
            "vfxmatte:device": str(session.device),
            "vfxmatte:precision": session.precision or "unknown",
            "vfxmatte:job_hash": self.job.job_hash,
            "vfxmatte:shot": self.job.shot,
            "vfxmatte:frame": int(item.frame),
            "vfxmatte:plate_frame": int(item.source_frame),
            "vfxmatte:plate_colorspace": self.job.plate.colorspace,
        }
        if self._temporal is not None:
            meta["vfxmatte:temporal"] = json.dumps(self._temporal.to_dict(), sort_keys=True)
        return meta

    def process(self, item: FramePlan) -> None:
        """Matte one planned frame and write it.

        Raises:
            VfxMatteError: the frame's files are unreadable, mismatched or unwritable.
        """
        if item.plate is None or item.trimap is None:
            raise SequenceError(f"frame {item.frame}: nothing to read ({item.fail_reason or item.skip_reason})")
        self.open()
        matted, alpha = self._alpha(item)
        channels, metadata = self._channels(matted.info, matted.rgb, alpha)
        self._write(item, matted.info, channels, metadata)

    def _alpha(self, item: FramePlan) -> "tuple[_Matted, np.ndarray]":
        """``item``'s plate frame matted, and its final alpha (through the temporal stage when on)."""
        matted = self._matte(item)
        return matted, matted.alpha if self._temporal is None else self._temporal_alpha(item, matted)

    def _process_retrying(self, item: FramePlan, retried: Callable[[str, BaseException], None]) -> None:
        """:meth:`process`, tried again after a transient failure (:func:`is_transient`) as
        ``job.retries`` says, waiting ``backoff_s``, then twice that ...; ``retried(reason, exc)``
        is told of each retry. The last failure, or any other one, is raised."""
        retries = self.job.retries
        for attempt in range(retries.count + 1):
            try:
                self.process(item)
                return
            except Exception as exc:  # noqa: BLE001 - re-raised unless it is worth a retry
                if attempt == retries.count or not is_transient(exc):
                    raise
                wait = retries.backoff_s * 2**attempt
                why = str(exc) if isinstance(exc, VfxMatteError) else f"{type(exc).__name__}: {exc}"
                log.info("frame %d: try %d failed (%s); retrying in %gs", item.frame, attempt + 1, why, wait)
                retried(f"try {attempt + 1} of {retries.count + 1} failed ({why}); retrying in {wait:g}s", exc)
                time.sleep(wait)

    def _matte(self, item: FramePlan) -> "_Matted":
        """The network's matte of ``item``'s plate frame (read, colour, trimap, infer).

        A pure function of the plate, the trimap and the job: the temporal stage matting a
        neighbour gets exactly what processing that frame gives. Kept for the temporal window
        (neighbouring frames done in order share their mattes); never kept without it.
        """
        key = (item.source_frame, str(item.plate), str(item.trimap))
        if key in self._matted:
            self._matted.move_to_end(key)
            return self._matted[key]
        assert self._converter is not None and self._session is not None
        rgb, info = read_image(item.plate, layer=self.job.plate.layer, view=self.job.plate.view)  # [H, W, 3], data window
        # Alpha never goes through colour: only the plate's RGB is converted (and sanitised).
        working = self._converter.apply(rgb)
        trimap = self._read_trimap(item, info)
        self._check_trimap_size(item, trimap.shape[1], trimap.shape[0], info)
        alpha = self._session.matte(working, trimap, name=f"frame {item.frame}")
        alpha = np.clip(np.nan_to_num(alpha, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0).astype(np.float32)
        matted = _Matted(rgb, info, trimap, alpha, plate_flow_image(working, info))
        if self._temporal is not None:
            self._matted[key] = matted
            while len(self._matted) > 2 * self._temporal.radius + 2:
                self._matted.popitem(last=False)
        return matted

    def _neighbour(self, frame: int) -> "_Matted | None":
        """Plate frame ``frame`` matted for the temporal window, or None when it cannot be: its
        plate is not on disk, its trimap is missing or too far from every keyframe, or its
        files fail (that frame reports its own failure; its neighbours are not failed by it).
        Only the disk decides, never the frames a process was asked for (chunk independence)."""
        if not self._plate.path(frame).is_file():
            return None
        try:
            (plan,) = self.plan([frame], outputs=False)
            if plan.plate is None or plan.fail_reason is not None or plan.held_from is not None:
                return None
            return self._matte(plan)
        except VfxMatteError as exc:
            log.debug("frame %d left out of the temporal window: %s", frame, exc)
            return None

    def _temporal_alpha(self, item: FramePlan, matted: "_Matted") -> np.ndarray:
        """``matted``'s alpha through the temporal stage, on the display-window canvas, with the
        neighbours of the fixed window around its plate frame (:mod:`vfxmatte.temporal`)."""
        settings = self._temporal
        assert settings is not None
        src = item.source_frame
        neighbours = []
        for g in range(src - settings.radius, src + settings.radius + 1):
            if g == src:
                continue
            other = self._neighbour(g)
            if other is None or other.image.shape != matted.image.shape:
                continue  # none, or another display window: nothing to register it with
            neighbours.append(Neighbour(other.canvas(other.alpha), other.image, other.valid()))
        info = matted.info
        canvas = smooth_alpha(
            matted.canvas(matted.alpha),
            to_display_window(matted.trimap, info, fill=tm.BG),
            matted.image,
            neighbours,
            settings,
            self._temporal_flows,
        )
        # Overscan outside the display window has no neighbours' view: it keeps the frame's alpha.
        smoothed = to_data_window(canvas, info, fill=np.nan)
        return np.where(np.isnan(smoothed), matted.alpha, smoothed).astype(np.float32)

    def _channels(self, info: ImageInfo, rgb: np.ndarray, alpha: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The channels a frame's matte file holds (the alpha, and the RGB in ``rgba`` mode) and
        the colour metadata that RGB needs."""
        out = self.job.output
        channels: dict[str, np.ndarray] = {}
        metadata: dict[str, Any] = {}
        if out.rgba:
            if self._rgb_out is not None:
                # Converted to the job's output colourspace (NaN/Inf already made 0 by apply).
                rgb = self._rgb_out.apply(rgb)
                metadata["vfxmatte:rgb_colorspace"] = self._rgb_out.dst
            else:
                # The plate's RGB as read, untouched by the working-space conversion; its
                # colour tag still describes it.
                metadata.update(self._rgb_colour_tags(info))
            for name, k in zip(out.rgb_channels, range(3)):
                channels[name] = rgb[..., k]
        channels[out.channel] = alpha
        return channels, metadata

    def _write(
        self, item: FramePlan, info: ImageInfo, channels: dict[str, np.ndarray], metadata: dict[str, Any],
        views: list[str] | None = None,
    ) -> None:
        """Write a frame's matte file (atomically): its provenance, then ``metadata``."""
        self._sweep_temps(item.output)
        write_exr(
            item.output,
            channels,
            info_like=info,
            compression=self.job.output.compression,
            pixel_type="half",
            metadata={**self.provenance(item), **metadata},
            views=views,
        )

    def _sweep_temps(self, target: Path) -> None:
        """Remove what writers of ``target`` that are gone (killed mid-write) left beside it:
        only atomic_write's temporary files of that very file (its folder is listed once a run)."""
        folder = target.parent
        if folder not in self._temps:
            self._temps[folder] = temp_files(folder)
        for tmp in sweep_temps(self._temps[folder].pop(target.name, ())):
            log.info("removed %s, a temporary file whose writer is gone", tmp)

    @staticmethod
    def _rgb_colour_tags(info) -> dict:
        """The plate's colour tags, kept only where its RGB is written unchanged (RGBA output)."""
        return {k: info.metadata[k] for k in ("colorInteropID",) if k in info.metadata}

    # -- propagated trimaps
    def propagate(
        self, frames: Iterable[int] | None = None, out: str | None = None, progress: Progress | None = None
    ) -> RunReport:
        """Write each frame's propagated trimap (8-bit PNG with its record, atomically), leaving
        the ones that are up to date; loads no model. Frames as :meth:`plan`; ``skip_existing``
        concerns mattes and is ignored here.

        Args:
            out: write to this pattern instead of the job's ``trimap.propagation.out`` (never
                onto the plates or keyframes).

        Raises:
            InputError: the job's trimaps are not propagated, or ``out`` would overwrite inputs.
            TrimapError: no keyframe, or a bad keyframe (naming its file): for the whole run.
        """
        if not self.propagated:
            raise InputError(
                f"{self.job.source}: trimap mode {self.job.trimap.mode!r} has nothing to propagate "
                "(use mode: keyframes, or mode: mask with missing: propagate)"
            )
        pattern = check_propagated_pattern(self.job, out if out is not None else self.job.propagated_trimaps)
        target = FrameSequence(pattern)
        start = time.perf_counter()
        plans = self.plan(frames, outputs=False)
        report = RunReport(self.job.shot, self.job.job_hash, pattern)
        total = len(plans)
        runnable = [p for p in plans if p.plate is not None and p.fail_reason is None]
        if runnable:
            self.check_keyframes(runnable[0])
        for i, item in enumerate(plans, 1):
            path = target.path(item.source_frame)

            def emit(kind: EventKind, **kw: Any) -> None:
                if progress is not None:
                    progress(FrameEvent(kind, item.frame, i, total, output=path, **kw))

            if item.plate is None or item.fail_reason is not None:
                reason = item.fail_reason or item.skip_reason or "nothing to read"
                (report.failed if item.fail_reason else report.skipped)[item.frame] = reason
                emit("failed" if item.fail_reason else "skipped", reason=reason)
                continue
            emit("started")
            t0 = time.perf_counter()
            try:
                shape = self.propagation.flow_image(item.source_frame).shape  # the display window
                wrote = self.propagation.write(item.source_frame, shape, path)
            except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the shot (a bug: exit 70)
                reason = str(exc) if isinstance(exc, VfxMatteError) else f"{type(exc).__name__}: {exc}"
                report.failed[item.frame] = reason
                if is_internal(exc):
                    report.internal.add(item.frame)
                _log_failure(progress, item.frame, reason, exc_info=True)
                emit("failed", reason=reason, seconds=time.perf_counter() - t0, error=exc)
                continue
            dt = time.perf_counter() - t0
            if wrote:
                report.done.append(item.frame)
                report.seconds[item.frame] = dt
                emit("done", seconds=dt)
            else:
                report.skipped[item.frame] = f"propagated trimap up to date: {path}"
                emit("skipped", reason=report.skipped[item.frame])
        report.total_seconds = time.perf_counter() - start
        return report

    # -- the run
    def _prepare(self, first: FramePlan, dry_run: bool) -> None:
        """What stops the whole run, checked on its first frame to matte: the view, then the
        model and the keyframes (a dry run: the keyframes' headers).

        Raises:
            VfxMatteError: for the whole run.
        """
        self.check_view(first.plate)
        if not dry_run:
            self.open()
        self.check_budget(first.plate)
        if not dry_run:
            if self.propagated:
                self.check_keyframes(first)
        elif self.propagated:
            info = read_header(first.plate, layer=self.job.plate.layer, view=self.job.plate.view)
            self.propagation.check_headers((info.full_height, info.full_width))

    def run(
        self,
        frames: Iterable[int] | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> RunReport:
        """Process frames; a failed frame is recorded and the others go on.

        Args:
            frames: see :meth:`plan`.
            dry_run: plan, and open each frame's plate and trimap headers (:meth:`check_frame`):
                read no pixels, load no model, write nothing.
            progress: called with a :class:`FrameEvent` per frame event.

        Raises:
            VfxMatteError: problems for the whole run (no plate on disk, checkpoint, device,
                colour config); per-frame problems are in the report instead.
        """
        start = time.perf_counter()
        plans = self.plan(frames)
        report = RunReport(self.job.shot, self.job.job_hash, self.job.output.path, dry_run=dry_run)
        total = len(plans)

        def emit(kind: EventKind, i: int, item: FramePlan, **kw: Any) -> None:
            if progress is not None:
                progress(FrameEvent(kind, item.frame, i, total, output=item.output, **kw))

        runnable = [p for p in plans if p.skip_reason is None and p.fail_reason is None]
        if runnable:
            self._prepare(runnable[0], dry_run)
        for i, item in enumerate(plans, 1):
            if item.skip_reason is not None:
                report.skipped[item.frame] = item.skip_reason
                log.info("frame %d skipped: %s", item.frame, item.skip_reason)
                emit("skipped", i, item, reason=item.skip_reason)
                continue
            if item.fail_reason is not None:
                report.failed[item.frame] = item.fail_reason
                _log_failure(progress, item.frame, item.fail_reason)
                emit("failed", i, item, reason=item.fail_reason)
                continue
            if dry_run:
                try:  # what the headers show that processing would refuse
                    self.check_frame(item)
                except VfxMatteError as exc:
                    report.failed[item.frame] = str(exc)
                    emit("failed", i, item, reason=str(exc), error=exc)
                    continue
                report.planned.append(item.frame)
                reason = f"held from frame {item.held_from}" if item.held_from is not None else None
                emit("planned", i, item, reason=reason)
                continue
            emit("started", i, item, reason=item.redo_reason)
            t0 = time.perf_counter()
            try:
                self._process_retrying(item, lambda why, exc: emit("retried", i, item, reason=why, error=exc))
            except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the shot (a bug: exit 70)
                reason = str(exc) if isinstance(exc, VfxMatteError) else f"{type(exc).__name__}: {exc}"
                report.failed[item.frame] = reason
                if is_internal(exc):
                    report.internal.add(item.frame)
                _log_failure(progress, item.frame, reason, exc_info=True)
                emit("failed", i, item, reason=reason, seconds=time.perf_counter() - t0, error=exc)
                continue
            dt = time.perf_counter() - t0
            report.done.append(item.frame)
            report.seconds[item.frame] = dt
            log.info("frame %d done in %.2fs -> %s", item.frame, dt, item.output)
            emit("done", i, item, seconds=dt)
        report.total_seconds = time.perf_counter() - start
        return report


def job_frames(job: Job) -> list[int]:
    """The frames a run of ``job`` processes when none are given: ``plate.frames``, else the
    range in the plate pattern, else every plate frame on disk."""
    if job.plate.frame_list is not None:
        return job.plate.frame_list
    if isinstance(job.plate.view, list):
        job = job.for_view(job.plate.view[0])  # the plate pattern may name the view (%V)
    return FrameSequence(job.plate.path).frames


def pipeline_for(job: Job, device: str | None = None, session: Matter | None = None) -> ShotPipeline:
    """The pipeline that runs ``job``: a :class:`~vfxmatte.multiview.MultiViewPipeline` for a
    job of several views, else a :class:`ShotPipeline`."""
    if job.plate.multi_view:
        from vfxmatte.multiview import MultiViewPipeline

        return MultiViewPipeline(job, device=device, session=session)
    return ShotPipeline(job, device=device, session=session)


def propagate_job(
    job: Job,
    frames: Iterable[int] | None = None,
    out: str | None = None,
    progress: Progress | None = None,
) -> RunReport:
    """Write the propagated trimaps of ``job`` (or of the given ``frames``); see
    :meth:`ShotPipeline.propagate`."""
    with pipeline_for(job) as pipe:
        return pipe.propagate(frames, out=out, progress=progress)


def run_job(
    job: Job,
    frames: Iterable[int] | None = None,
    device: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> RunReport:
    """Run ``job`` (or the given ``frames`` of it) and return what happened.

    Args:
        job: from :func:`vfxmatte.jobs.load_job`.
        frames: a subset or other list of frames; default the job's range.
        device: overrides the job's ``model.device``.
        dry_run: plan and check headers only; no pixel is read, nothing loaded or written.
        progress: receives a :class:`FrameEvent` per frame event.

    Returns:
        A :class:`RunReport`; its ``exit_code`` is 1 if any frame failed (70 if one failed
        through a bug).

    Raises:
        VfxMatteError: a problem for the whole run (see :meth:`ShotPipeline.run`).
    """
    with pipeline_for(job, device=device) as pipe:
        return pipe.run(frames, dry_run=dry_run, progress=progress)
