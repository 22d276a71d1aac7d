"""The job file schema: pydantic models of a validated shot job.

The models are strict (YAML already types its scalars, so nothing is coerced), forbid unknown
keys and are frozen. Validation runs after environment expansion and needs a ``base_dir`` in
the validation context: every relative path resolves against the job file's folder, so a job
means the same thing from any working directory. Reading files and reporting errors with line
numbers is :mod:`vfxmatte.jobs.load`'s part; checking what the job names exists on disk is
:mod:`vfxmatte.jobs.checks`'s.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from vfxmatte.env import KeyPath
from vfxmatte.errors import DeviceError, SequenceError
from vfxmatte.io.sequence import FrameRanges, FrameSequence, parse_frame_range, parse_frames
from vfxmatte.tiling import DEFAULT_OVERLAP, DEFAULT_TILE

__all__ = [
    "SCHEMA_VERSION",
    "ColorSpec",
    "FarmSpec",
    "Job",
    "KeyframesTrimap",
    "MaskTrimap",
    "ModelSpec",
    "OutputSpec",
    "PlateSpec",
    "PropagationSpec",
    "RetrySpec",
    "SequenceTrimap",
    "TemporalSpec",
    "TrimapSpec",
    "ALL_VIEWS",
    "check_device_name",
    "in_view",
    "has_frame_token",
    "job_hash_data",
    "same_files",
]

#: The schema version this release reads. A later schema bumps it and migrates older files.
SCHEMA_VERSION = 1


# --------------------------------------------------------------------------- path helpers

# One of the frame tokens FrameSequence understands: ####, @@@@, %04d, $F / $F4.
_FRAME_TOKEN = re.compile(r"#+|@+|%0?\d*d|\$F\d*(?![A-Za-z0-9_])")


def has_frame_token(path: str | os.PathLike[str]) -> bool:
    """True if the file name of ``path`` holds a frame token (``####``, ``%04d``, ``@@@@``, ``$F4``)."""
    return bool(_FRAME_TOKEN.search(Path(path).name))


def _resolve_path(value: str, info: ValidationInfo) -> str:
    """``~`` expanded, then made absolute against the job file's folder (from the context).
    A NUL character is refused here, naming the key: no file system takes one."""
    if "\0" in value:
        raise ValueError(f"a path cannot hold a NUL character, got {value!r}")
    p = Path(os.path.expanduser(value))
    base = (info.context or {}).get("base_dir")
    if not p.is_absolute() and base is not None:
        p = Path(base) / p
    return os.path.normpath(str(p))


def _sequence_path(value: str, info: ValidationInfo) -> str:
    """A resolved path that must be a frame sequence pattern (ValueError naming the problem)."""
    path = _resolve_path(value, info)
    try:
        FrameSequence(path)
    except SequenceError as exc:
        raise ValueError(str(exc)) from None
    return path


# --------------------------------------------------------------------------- schema


class _Section(BaseModel):
    # strict: YAML already types its scalars, so "1024" for an int or 1 for a string is a mistake
    # (``shot: 010`` is the octal int 8 in YAML 1.1: quoting it is the fix, not coercing it).
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class _FrameList(_Section):
    """A section with a ``frames`` range (text; a YAML int is a one-frame range)."""

    @field_validator("frames", mode="before", check_fields=False)
    @classmethod
    def _frames_text(cls, v: Any) -> Any:
        # ``frames: 1001`` is a YAML int: a one-frame range.
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("frames", check_fields=False)
    @classmethod
    def _frames_parse(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            parse_frames(v)  # runs, not a list: a 3,000,000-frame range checks at once
        except SequenceError as exc:
            raise ValueError(str(exc)) from None
        return v.strip()


_VIEW_NAME = r"^[A-Za-z0-9_-]+$"
#: ``plate.view: all``: every view each plate file holds, in its order (default view first).
ALL_VIEWS = "all"


def in_view(text: str, view: str) -> str:
    """``text`` with Nuke's view variables replaced: ``%V`` by ``view``, ``%v`` by its first letter."""
    return text.replace("%V", view).replace("%v", view[0])


def _names_view(text: str) -> bool:
    return "%V" in text or "%v" in text


class PlateSpec(_FrameList):
    """The plate: the image sequence to matte."""

    #: Sequence pattern: ``shot010.####.exr``, ``%04d``, ``@@@@`` or ``$F4``; EXR, DPX, TIFF, PNG.
    path: str
    #: Frames to process (``1001-1024``, ``1001-1100x2``, ``1001,1010-1020``); null: the range
    #: embedded in the pattern, else every frame on disk.
    frames: str | None = None
    #: Colourspace of the plate's RGB: a vfxmatte alias (acescg, lin_rec709, srgb, acescct,
    #: cineon) or any colourspace name of the OCIO config.
    colorspace: str = "acescg"
    #: Multi-part part name or channel prefix holding R, G, B (``beauty`` for ``beauty.R``).
    layer: str | None = None
    #: What a missing plate frame does: fail that frame, skip it, or hold the nearest frame.
    missing: Literal["error", "skip", "hold"] = "error"
    #: The view of a multi-view (stereo) EXR plate to matte, by name (``left``, ``right``): a
    #: part with that ``view`` attribute, or a single-part file's ``view.R`` channels (the
    #: default view's unprefixed ones); ``%V`` / ``%v`` in the job's paths are replaced by the
    #: view's name / its first letter. A list of views (``[left, right]``), or ``all`` (every
    #: view of each plate file), mattes each view and writes them all into one file per frame,
    #: the first view its default (jobs/README.md, "Stereo").
    view: Union[str, list[str]] | None = None

    @field_validator("view", mode="before")
    @classmethod
    def _view_names(cls, v: Any) -> Any:
        # One message for any wrong shape (a union's would be one per member).
        names = v if isinstance(v, list) else [v]
        if v is not None and not (names and all(isinstance(n, str) and re.match(_VIEW_NAME, n) for n in names)):
            raise ValueError(f"a view is a name matching pattern {_VIEW_NAME!r} (left, right), a list of names "
                             f"([left, right]) or {ALL_VIEWS}, got {v!r}")
        return v

    @field_validator("view")
    @classmethod
    def _views_once(cls, v: str | list[str] | None) -> str | list[str] | None:
        if isinstance(v, list) and len(set(v)) != len(v):
            raise ValueError(f"each view is named once, got {v}")
        if isinstance(v, list) and ALL_VIEWS in v:
            raise ValueError(f"{ALL_VIEWS!r} stands for every view of the plate: give it alone, not in a list")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str, info: ValidationInfo) -> str:
        return _sequence_path(v, info)

    @property
    def multi_view(self) -> bool:
        """True when the job mattes several views into one file (``view`` a list, or ``all``)."""
        return isinstance(self.view, list) or self.view == ALL_VIEWS

    @property
    def frame_list(self) -> list[int] | None:
        """The ``frames`` range as a list, or None when the job leaves it to the pattern/disk."""
        return None if self.frames is None else parse_frame_range(self.frames)

    @property
    def frame_ranges(self) -> FrameRanges | None:
        """The ``frames`` range as runs (no per-frame list), or None as :attr:`frame_list`."""
        return None if self.frames is None else parse_frames(self.frames)


class _TrimapSource(_FrameList):
    #: A sequence pattern, or one still file used for every frame.
    path: str

    @field_validator("path")
    @classmethod
    def _path(cls, v: str, info: ValidationInfo) -> str:
        return _resolve_path(v, info)


class SequenceTrimap(_TrimapSource):
    """Trimaps painted or generated per frame (8/16-bit PNG/TIFF or float EXR, 0 / 0.5 / 1)."""

    mode: Literal["sequence"] = "sequence"
    #: Accept values within this distance of a palette entry (0.25 would make them ambiguous).
    tolerance: float = Field(0.1, ge=0.0, lt=0.25)

    @property
    def propagated(self) -> bool:
        """False: every frame has its own trimap (see :attr:`KeyframesTrimap.propagated`)."""
        return False


def same_files(a: str, b: str) -> bool:
    """True if two paths, each a sequence pattern or one file, can name one same file: in any
    frame-token spelling (``####``, ``%04d``, ``@@@@``, ``$F4``) or padding, and through
    symlinked folders, ``..`` and relative spellings (:meth:`FrameSequence.overlaps`)."""
    try:
        seqs = [FrameSequence(p) if has_frame_token(p) else None for p in (a, b)]
        if seqs[0] is not None:
            return seqs[0].overlaps(seqs[1] if seqs[1] is not None else b)
        if seqs[1] is not None:
            return seqs[1].overlaps(a)
    except SequenceError:
        return False
    return os.path.realpath(a) == os.path.realpath(b)


def _links_into(pattern: str, path: str) -> bool:
    """True if a file of ``path`` (a sequence or one file) on disk is a symlink to a file that
    writing ``pattern`` would replace (plates linked from a render folder, say)."""
    if has_frame_token(path):
        try:
            linked = FrameSequence(path).linked_files()
        except SequenceError:
            return False
    else:
        linked = [Path(os.path.realpath(path))] if os.path.islink(path) else []
    return any(same_files(pattern, str(f)) for f in linked)


def _value_error(loc: tuple[str, ...], message: str, value: Any) -> ValidationError:
    """A validation error placed at ``loc`` (a cross-section check, reported at its key's line)."""
    return ValidationError.from_exception_data(
        "Job", [{"type": "value_error", "loc": loc, "input": value, "ctx": {"error": ValueError(message)}}]
    )


class PropagationSpec(_Section):
    """How keyframe trimaps are propagated to the other frames (issue 17 §2).

    The defaults mirror :class:`vfxmatte.propagate.PropagationSettings` (a test keeps them
    equal); :meth:`settings` builds that object.
    """

    #: Dense optical flow between consecutive frames: OpenCV's DIS.
    method: Literal["dis"] = "dis"
    #: DIS preset: ultrafast | fast | medium (slower, steadier flow).
    preset: Literal["ultrafast", "fast", "medium"] = "medium"
    #: Flow runs on the plate scaled so its longest side is at most this (2K/4K plates).
    max_side: int = Field(1024, ge=32, le=16384)
    #: Unknown band re-dilation at distance 0 from the keyframe, pixels.
    band_px: float = Field(1.0, ge=0.0, le=2048.0)
    #: ... plus this many pixels per frame of distance from the keyframe.
    band_growth_px: float = Field(0.0, ge=0.0, le=256.0)
    #: Forward-backward flow disagreement above this (pixels) makes a pixel unknown.
    occlusion_px: float = Field(1.0, gt=0.0, le=1000.0)
    #: A frame farther than this from every keyframe fails with an error naming it.
    max_distance: int = Field(100, ge=0)
    #: Folder of the on-disk flow cache shared by farm chunks (keyed by plate content; never
    #: changes results); null: no cache.
    cache: str | None = None
    #: Pattern of the propagated trimaps ``vfxmatte propagate`` writes and ``vfxmatte run``
    #: reads when up to date (8-bit PNG); null: ``<output dir>/trimaps/<shot>[.<view>].propagated.####.png``.
    out: str | None = None

    @field_validator("cache")
    @classmethod
    def _cache(cls, v: str | None, info: ValidationInfo) -> str | None:
        return None if v is None else _resolve_path(v, info)

    @field_validator("out")
    @classmethod
    def _out(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return v
        v = _sequence_path(v, info)
        if Path(v).suffix.lower() != ".png":
            raise ValueError(f"propagated trimaps are 8-bit PNG: the pattern must end in .png, got {Path(v).name!r}")
        return v

    def settings(self) -> Any:
        """The :class:`vfxmatte.propagate.PropagationSettings` these options describe."""
        from vfxmatte.flow import FlowSettings
        from vfxmatte.propagate import PropagationSettings

        return PropagationSettings(
            flow=FlowSettings(method=self.method, preset=self.preset, max_side=self.max_side),
            band_px=self.band_px,
            band_growth_px=self.band_growth_px,
            occlusion_px=self.occlusion_px,
            max_distance=self.max_distance,
        )


class MaskTrimap(_TrimapSource):
    """Trimaps derived from a rough roto mask (its A channel, else its first channel): an
    unknown band of ``band_px`` around its edge.

    With ``missing: propagate`` the masks are keyframes (``frames``, else every mask on disk),
    given in the plate's display window; each becomes a trimap (:func:`vfxmatte.trimap.from_mask`)
    that is propagated to the other frames as in ``mode: keyframes``.
    """

    mode: Literal["mask"]
    #: Width of the unknown band on each side of the mask edge, in pixels.
    band_px: int = Field(12, ge=0, le=2048)
    #: Mask values at or above this count as inside.
    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    #: A frame without a mask: fail it (``error``), or propagate the keyframe masks' trimaps.
    missing: Literal["error", "propagate"] = "error"
    #: With ``missing: propagate``: the mask frames used as keyframes; null: every one on disk.
    frames: str | None = None
    #: With ``missing: propagate``: how the trimaps are propagated.
    propagation: PropagationSpec = PropagationSpec()

    @model_validator(mode="after")
    def _propagate_keys(self) -> "MaskTrimap":
        if self.missing != "propagate":
            for key in ("frames", "propagation"):
                if key in self.model_fields_set:
                    raise _value_error((key,), "needs missing: propagate (masks on every frame need no keyframes)", None)
        elif not has_frame_token(self.path):
            raise _value_error(("path",), "missing: propagate needs a mask sequence pattern (####), not one file", self.path)
        return self

    @property
    def propagated(self) -> bool:
        """True when frames without a mask get propagated trimaps."""
        return self.missing == "propagate"

    @property
    def keyframe_list(self) -> list[int] | None:
        """The ``frames`` list, or None when the keyframes are the masks found on disk."""
        return None if self.frames is None else parse_frame_range(self.frames)


class KeyframesTrimap(_TrimapSource):
    """Trimaps painted on a few keyframes (8/16-bit PNG/TIFF or float EXR, 0 / 0.5 / 1, in the
    plate's display window) and propagated by optical flow to every other frame (issue 17)."""

    mode: Literal["keyframes"]
    #: Keyframes (any frames, any order, inside or outside the plate range); null: every
    #: file of ``path`` on disk.
    frames: str | None = None
    #: Accept values within this distance of a palette entry (0.25 would make them ambiguous).
    tolerance: float = Field(0.1, ge=0.0, lt=0.25)
    propagation: PropagationSpec = PropagationSpec()

    @field_validator("path")
    @classmethod
    def _path(cls, v: str, info: ValidationInfo) -> str:
        return _sequence_path(v, info)

    @property
    def propagated(self) -> bool:
        return True

    @property
    def keyframe_list(self) -> list[int] | None:
        """The ``frames`` list, or None when the keyframes are the files found on disk."""
        return None if self.frames is None else parse_frame_range(self.frames)


_TRIMAP_MODES = ("sequence", "mask", "keyframes")


def _trimap_mode(v: Any) -> str | None:
    if isinstance(v, dict):
        mode = v.get("mode", "sequence")
        return mode if mode in _TRIMAP_MODES else None
    if isinstance(v, BaseModel):
        return getattr(v, "mode", None)
    return "sequence"  # not a mapping: let the sequence model say so


TrimapSpec = Annotated[
    Union[
        Annotated[SequenceTrimap, Tag("sequence")],
        Annotated[MaskTrimap, Tag("mask")],
        Annotated[KeyframesTrimap, Tag("keyframes")],
    ],
    Discriminator(
        _trimap_mode,
        custom_error_type="trimap_mode",
        custom_error_message="Input should be 'sequence', 'mask' or 'keyframes'",
    ),
]


class ColorSpec(_Section):
    """Colour management."""

    #: OCIO config: a file or an ``ocio://`` built-in; null uses ``$OCIO``, else the built-in
    #: ``ocio://cg-config-latest``.
    config: str | None = None

    @field_validator("config")
    @classmethod
    def _config(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None or v.startswith("ocio://"):
            return v
        return _resolve_path(v, info)


_DEVICE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_device_name(name: str) -> str:
    """Return ``name`` if it is a device a job or ``--device`` may name.

    Raises:
        DeviceError: ``name`` is not ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    """
    if not _DEVICE.match(name):
        raise DeviceError(f"Input should be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {name!r}")
    return name


class ModelSpec(_Section):
    """The network and how it runs."""

    #: A built-in name (``starter``) or a ``.safetensors`` checkpoint path.
    checkpoint: str = "starter"
    device: str = "auto"
    #: auto: fp16 autocast on GPUs; bf16 on CPUs with native bf16 (AVX512_BF16 / AMX), else
    #: fp32 (speed and score differences: benchmarks/RESULTS.md). fp32 where every farm node must
    #: give bit-identical mattes. bf16 on a CPU without native bf16, or fp16 on any CPU, is an error.
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    #: Tile edge in pixels (0: the whole frame at once); cost follows the unknown band.
    tile_size: int = Field(DEFAULT_TILE, ge=0)
    #: Least overlap between tiles: enough context that seams vanish.
    overlap: int = Field(DEFAULT_OVERLAP, ge=0)
    #: Tiles per forward pass; null: 1 on CPU, 8 on GPU.
    batch_size: int | None = Field(None, ge=1)
    #: Memory budget of the process in GiB (null: none): per frame, the batch and then the tile
    #: edge shrink until the estimated peak fits (vfxmatte.memory). Hashed: a shrunk tiling
    #: changes the alpha within the tiling tests' bounds, so not to the byte.
    memory_gb: float | None = Field(None, gt=0)
    #: Test-time augmentation: "none", or "flip" (each tile also mirrored, the two alphas
    #: averaged: finer edges for about twice the time; benchmarks/RESULTS.md).
    tta: Literal["none", "flip"] = "none"
    #: Run the full- and half-resolution layers only near the unknown band (the same alpha
    #: inside it, to float rounding; faster where the band is thin, benchmarks/RESULTS.md).
    #: false: dense inference over every tile. null: on for the CPU, off on GPUs.
    sparse: bool | None = None

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        try:
            return check_device_name(v)
        except DeviceError as exc:
            raise ValueError(str(exc)) from None

    @field_validator("checkpoint")
    @classmethod
    def _checkpoint(cls, v: str, info: ValidationInfo) -> str:
        from vfxmatte.checkpoint import BUILTIN

        return v if v in BUILTIN else _resolve_path(v, info)

    @field_validator("overlap")
    @classmethod
    def _overlap(cls, v: int, info: ValidationInfo) -> int:
        tile = info.data.get("tile_size")
        # Tiles blend over the overlap from both sides: more than half a tile leaves no core.
        if tile and v * 2 >= tile:
            raise ValueError(f"overlap {v} must be less than half of tile_size {tile}")
        return v


class TemporalSpec(_Section):
    """The optional temporal stage (:mod:`vfxmatte.temporal`): each frame's alpha inside its
    unknown band blended with its flow-warped neighbours' where the flow is reliable and the
    alphas agree, to take out frame-to-frame flicker without smearing motion or strands.

    The defaults mirror :class:`vfxmatte.temporal.TemporalSettings` (a test keeps them equal);
    :meth:`settings` builds that object.
    """

    #: Off by default: it lowers dtSSD, MESSDdt and SAD on the propagation benchmark's clips but
    #: raises SAD and dtSSD slightly on the example shot, for 20-35% more run time
    #: (benchmarks/RESULTS.md, keyframe propagation, has the with/without rows).
    enabled: bool = False
    #: Neighbours on each side: frame f's matte depends on the plates f - radius .. f + radius
    #: (those on disk whose trimap exists), never on which frames a chunk runs.
    radius: int = Field(1, ge=1, le=8)
    #: A warped neighbour alpha this far from the frame's own gets no weight (real change).
    alpha_tolerance: float = Field(0.3, gt=0.0, le=1.0)
    #: The largest weight of one neighbour relative to the frame itself.
    strength: float = Field(1.0, gt=0.0, le=1.0)
    #: Forward-backward flow disagreement above this (pixels): that neighbour pixel is not used.
    occlusion_px: float = Field(1.0, gt=0.0, le=1000.0)
    #: DIS preset and working resolution of the flow to each neighbour.
    preset: Literal["ultrafast", "fast", "medium"] = "medium"
    max_side: int = Field(1024, ge=32, le=16384)
    #: Folder of an on-disk flow cache (never changes results); null: the propagation's
    #: ``cache`` when the trimaps are propagated, else none.
    cache: str | None = None

    @field_validator("cache")
    @classmethod
    def _cache(cls, v: str | None, info: ValidationInfo) -> str | None:
        return None if v is None else _resolve_path(v, info)

    def settings(self) -> Any:
        """The :class:`vfxmatte.temporal.TemporalSettings` these options describe."""
        from vfxmatte.flow import FlowSettings
        from vfxmatte.temporal import TemporalSettings

        return TemporalSettings(
            radius=self.radius,
            alpha_tolerance=self.alpha_tolerance,
            strength=self.strength,
            occlusion_px=self.occlusion_px,
            flow=FlowSettings(preset=self.preset, max_side=self.max_side),
        )


_CHANNEL = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*\.)*[A-Za-z_][A-Za-z0-9_]*$")


class RetrySpec(_Section):
    """Per-frame retries of failures that can be transient (an I/O error reading a plate or
    writing a matte on a network filesystem; never a bad trimap, a missing layer or a size
    mismatch: :func:`vfxmatte.errors.is_transient`). They never change a matte's bytes."""

    #: Further tries of a frame after a transient failure (0: fail at once).
    count: int = Field(0, ge=0, le=10)
    #: Seconds before the first retry; doubled before each later one.
    backoff_s: float = Field(2.0, ge=0.0, le=600.0)


class OutputSpec(_Section):
    """Where and how mattes are written (always half-float OpenEXR)."""

    #: Output pattern with a frame token, ending in ``.exr``.
    path: str
    #: Alpha channel name: ``A``, or ``matte.A`` for a named layer.
    channel: str = "A"
    #: Also write the plate's RGB beside the alpha (same layer prefix as ``channel``).
    rgba: bool = False
    #: Colourspace of that RGB: unset writes the plate's RGB bit-exact, as read (a log plate
    #: stays log); a name (``scene_linear``, ``acescg``, ``lin_rec709``, any colourspace or role
    #: of the config) converts it there, e.g. so a Cineon DPX plate lands as linear light in the
    #: EXR that Nuke reads as linear. Only meaningful with ``rgba: true``.
    rgb_colorspace: str | None = None
    compression: Literal["zip", "dwaa", "piz"] = "zip"
    #: Leave frames whose output already exists (resume an interrupted run).
    skip_existing: bool = False

    @field_validator("channel")
    @classmethod
    def _channel(cls, v: str) -> str:
        if not _CHANNEL.match(v):
            raise ValueError(f"Input should be a channel name such as 'A' or 'matte.A', got {v!r}")
        return v

    @field_validator("path")
    @classmethod
    def _path(cls, v: str, info: ValidationInfo) -> str:
        v = _sequence_path(v, info)
        if Path(v).suffix.lower() != ".exr":
            raise ValueError(f"output must be an OpenEXR sequence ending in .exr, got {Path(v).name!r}")
        return v

    @property
    def rgb_channels(self) -> tuple[str, str, str]:
        """Names of the RGB channels written in ``rgba`` mode: the alpha's layer prefix + R, G, B."""
        prefix = self.channel.rpartition(".")[0]
        return tuple(f"{prefix}.{c}" if prefix else c for c in "RGB")  # type: ignore[return-value]


_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$"


class FarmSpec(_Section):
    """How ``vfxmatte submit`` splits the job for a render farm and what it asks the farm for.

    Not part of the job hash: none of it changes a pixel. Every key can be overridden on the
    ``submit`` command line.
    """

    #: Frames per farm task (OpenCue chunk, Deadline ChunkSize): each task loads the model once.
    chunk_size: int = Field(10, ge=1, le=100000)
    #: The program a farm node runs: a name on the node's PATH, a path, or a list (a wrapper
    #: such as ``[rez-env, vfxmatte, --, vfxmatte]``).
    executable: Union[str, list[str]] = "vfxmatte"
    #: OpenCue show (null: pyoutline's configured default show).
    show: Annotated[str, Field(pattern=_NAME)] | None = None
    #: OpenCue shot (null: the job's ``shot``).
    shot: Annotated[str, Field(pattern=_NAME)] | None = None
    #: OpenCue service of the layers (null: pyoutline's default, ``shell``).
    service: Annotated[str, Field(pattern=_NAME)] | None = None
    #: Cores each task books (OpenCue ``cores``; also its torch/OpenCV thread count).
    cores: float | None = Field(None, gt=0, le=1024)
    #: Memory each task books (OpenCue): whole gigabytes ``8g`` or megabytes ``512m``.
    memory: Annotated[str, Field(pattern=r"^[1-9][0-9]*g$|^[1-9][0-9]*m$")] | None = None
    #: OpenCue layer tags (letters and digits).
    tags: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9]+$")]] = []
    #: Job priority (OpenCue and Deadline).
    priority: int | None = Field(None, ge=0, le=1000000)
    #: Deadline pool and group.
    pool: Annotated[str, Field(pattern=_NAME)] | None = None
    group: Annotated[str, Field(pattern=_NAME)] | None = None
    #: Environment variables set for every task (OpenCue layer env, Deadline EnvironmentKeyValue).
    env: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")], str] = {}

    @field_validator("executable")
    @classmethod
    def _executable(cls, v: str | list[str]) -> str | list[str]:
        if not v or (isinstance(v, list) and not all(v)):
            raise ValueError("the farm executable must name a program (a string, or a list of non-empty strings)")
        return v

    @property
    def argv(self) -> list[str]:
        """The executable as the start of an argument list."""
        return [self.executable] if isinstance(self.executable, str) else list(self.executable)


#: Job sections whose strings may hold ``%V`` / ``%v`` (the view, see :class:`PlateSpec`).
_VIEW_SECTIONS = ("plate", "trimap", "output", "temporal")


class Job(_Section):
    """A validated shot job. Build with :func:`~vfxmatte.jobs.load_job` (or
    :func:`~vfxmatte.jobs.parse_job` for text)."""

    version: Literal[1]
    #: Shot name, used in logs and written into the mattes' metadata.
    shot: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]
    plate: PlateSpec
    trimap: TrimapSpec
    color: ColorSpec = ColorSpec()
    model: ModelSpec = ModelSpec()
    temporal: TemporalSpec = TemporalSpec()
    output: OutputSpec
    farm: FarmSpec = FarmSpec()
    retries: RetrySpec = RetrySpec()

    @model_validator(mode="before")
    @classmethod
    def _view_in_paths(cls, data: Any, info: ValidationInfo) -> Any:
        """``%V`` / ``%v`` in the plate, trimap, output and temporal sections' strings become
        ``plate.view`` / its first letter (Nuke's view variables), before any path is checked.
        A job of several views keeps them: each view's own job (:meth:`for_view`) replaces them."""
        if not isinstance(data, dict):
            return data
        plate = data.get("plate")
        view = plate.get("view") if isinstance(plate, dict) else None
        out = data.get("output")
        path = out.get("path") if isinstance(out, dict) else None
        if isinstance(view, list) or view == ALL_VIEWS:
            return cls._several_views(data, view, path)
        if view is not None and not (isinstance(view, str) and re.match(_VIEW_NAME, view)):
            return data  # plate.view's own check reports it

        def sub(node: Any, loc: tuple[str, ...]) -> Any:
            if isinstance(node, dict):
                return {k: sub(v, (*loc, str(k))) for k, v in node.items()}
            if isinstance(node, list):
                return [sub(v, (*loc, str(i))) for i, v in enumerate(node)]
            if isinstance(node, str) and _names_view(node):
                if view is None:
                    raise _value_error(loc, "%V / %v stand for the view: set plate.view (left, right ...)", node)
                return in_view(node, view)
            return node

        one_of_several = (info.context or {}).get("one_view_of_several", False)
        if view is not None and not one_of_several and isinstance(path, str) and not (_names_view(path) or view in path):
            # Two eyes' jobs differing by plate.view alone would write one same file, in turn.
            raise _value_error(
                ("output", "path"), f"name the view in the mattes' pattern (%V, or {view!r}) so each view's files are its own", path
            )
        return {k: sub(v, (k,)) if k in _VIEW_SECTIONS else v for k, v in data.items()}

    @staticmethod
    def _several_views(data: dict[str, Any], view: Any, path: Any) -> dict[str, Any]:
        """The keys a job of several views must get right: one matte file holds every view,
        so its pattern names none; each view writes its own propagated trimaps; ``all`` reads
        the views from each plate file, so the plate pattern names none either."""
        if isinstance(path, str) and _names_view(path):
            raise _value_error(("output", "path"), "one matte file holds every view of plate.view: drop %V / %v from "
                               "the pattern (or matte one view per job)", path)
        plate_path = data["plate"].get("path")
        if view == ALL_VIEWS and isinstance(plate_path, str) and _names_view(plate_path):
            raise _value_error(("plate", "path"), "plate.view: all reads the views each plate file holds: the pattern "
                               "cannot name one (%V); list the views instead ([left, right])", plate_path)
        trimap = data.get("trimap")
        prop = trimap.get("propagation") if isinstance(trimap, dict) else None
        prop_out = prop.get("out") if isinstance(prop, dict) else None
        if isinstance(prop_out, str) and not _names_view(prop_out):
            raise _value_error(("trimap", "propagation", "out"), "each view's propagated trimaps are its own: name the "
                               "view in the pattern (%V)", prop_out)
        return data

    # Where the job came from, for messages from later checks: not part of the schema or hash.
    # Set by the loader once validation has passed.
    _source: str = PrivateAttr("<job>")
    _lines: dict[KeyPath, tuple[int, int]] = PrivateAttr(default_factory=dict)
    # The folder relative paths resolved against (the validation context's base_dir).
    _base_dir: str | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _remember_base_dir(self, info: ValidationInfo) -> "Job":
        base = (info.context or {}).get("base_dir")
        self._base_dir = None if base is None else os.path.normpath(str(base))
        return self

    @model_validator(mode="after")
    def _each_view_is_a_job(self) -> "Job":
        # Each listed view's job is checked now (its paths, what it writes onto what it reads);
        # ``all``'s views are known from the plate files only (jobs.checks.job_views).
        if isinstance(self.plate.view, list):
            for view in self.plate.view:
                self.for_view(view)
        return self

    def for_view(self, view: str) -> "Job":
        """This job as one view of its several sees it: ``plate.view`` that view, ``%V`` / ``%v``
        in its paths replaced. Its mattes are that view's channels of this job's files, so
        ``skip_existing`` is off: only the job of every view keeps or redoes a file.

        Raises:
            pydantic.ValidationError: that view's paths are not a valid job (the loader reports
                them as one line each).
        """
        data = self.model_dump(exclude_unset=True)
        data["plate"]["view"] = view
        data["output"]["skip_existing"] = False
        job = Job.model_validate(data, context={"base_dir": self._base_dir, "one_view_of_several": True})
        job._source, job._lines = self._source, self._lines
        return job

    @model_validator(mode="after")
    def _written_patterns_are_not_inputs(self) -> "Job":
        # What a job writes (mattes, propagated trimaps) must never land on what it reads.
        for key, pattern in self.inputs_overwritten_by(self.output.path, propagated=True):
            raise _value_error(
                ("output", "path"), f"the mattes would overwrite {key} ({pattern}): choose another pattern", self.output.path
            )
        tri = self.trimap
        if tri.propagated:
            out = self.propagated_trimaps
            for key, pattern in self.inputs_overwritten_by(out):
                loc = ("trimap", "propagation", "out") if tri.propagation.out is not None else ("trimap", "path")
                raise _value_error(
                    loc, f"the propagated trimaps {out} would overwrite {key} ({pattern}): choose another pattern", out
                )
        return self

    def inputs_overwritten_by(self, pattern: str, propagated: bool = False) -> list[tuple[str, str]]:
        """The job's inputs (key, pattern) that files written to ``pattern`` could overwrite:
        the plates and the trimaps, masks or keyframes (``trimap.path``), plus, with
        ``propagated``, the propagated trimaps a matte run reads. Paths are compared by
        :func:`same_files` (every token spelling and padding; real folders), and an input's
        files on disk that are symlinks by the files they point to. The one check
        behind the job's ``output.path`` and ``propagation.out`` and ``propagate --out``."""
        inputs = [("trimap.path", self.trimap.path), ("plate.path", self.plate.path)]
        if propagated and self.trimap.propagated:
            inputs.append(("trimap.propagation.out", self.propagated_trimaps))
        return [(key, other) for key, other in inputs if same_files(pattern, other) or _links_into(pattern, other)]

    @property
    def propagated_trimaps(self) -> str:
        """Pattern of the propagated trimaps (``trimap.propagation.out``, else
        ``<output dir>/trimaps/<shot>[.<view>].propagated.####.png``); only meaningful in the propagated
        modes (``keyframes``, ``mask`` with ``missing: propagate``)."""
        tri = self.trimap
        out = getattr(getattr(tri, "propagation", None), "out", None)
        if out is not None:
            return out
        # One view's trimaps are not the other's: the view is in the name (%V for several).
        view = "" if self.plate.view is None else ".%V" if self.plate.multi_view else f".{self.plate.view}"
        return str(Path(self.output.path).parent / "trimaps" / f"{self.shot}{view}.propagated.####.png")

    @property
    def source(self) -> str:
        """The job file's path as given to :func:`~vfxmatte.jobs.load_job`."""
        return self._source

    @property
    def lines(self) -> dict[KeyPath, tuple[int, int]]:
        """Key path -> (line of the key, line of the value) in the job file, 1-based; empty for
        a job not read from YAML text."""
        return self._lines

    @property
    def job_hash(self) -> str:
        """sha256 of what determines the mattes' pixels and metadata (:func:`job_hash_data`).

        Comments, key order, quoting and YAML formatting do not change it, nor do the keys that
        leave the mattes as they are (``skip_existing``, the device, the frame range, where the
        mattes and propagated trimaps go, the flow cache) or the folder the shot is mounted at.
        """
        text = json.dumps(job_hash_data(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


#: Keys left out of the job hash: each leaves every matte's bytes as they are. ``plate.frames``
#: says which frames run, not what one frame is; the rest say where or how, not what.
UNHASHED_KEYS: tuple[KeyPath, ...] = (
    ("output", "skip_existing"),
    ("output", "path"),
    ("model", "device"),
    ("plate", "frames"),
    ("trimap", "propagation", "cache"),
    ("trimap", "propagation", "out"),
    ("temporal", "cache"),
    ("farm",),  # where and how the frames run on a farm, never what they hold
    ("retries",),
)
#: Path keys hashed relative to the job file's folder, so a shot re-mounted or moved with its
#: job file keeps its hash (built-in checkpoint names and ``ocio://`` configs are names).
HASHED_PATH_KEYS: tuple[KeyPath, ...] = (
    ("plate", "path"),
    ("trimap", "path"),
    ("color", "config"),
    ("model", "checkpoint"),
)


def job_hash_data(job: Job) -> dict[str, Any]:
    """What :attr:`Job.job_hash` hashes: the normalised job (defaults filled in) less
    :data:`UNHASHED_KEYS`, with :data:`HASHED_PATH_KEYS` relative to the job file's folder
    (both as real paths)."""
    data = job.model_dump(mode="json")

    def parent(path: KeyPath) -> dict[str, Any] | None:
        node: Any = data
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        return node if isinstance(node, dict) else None

    for path in UNHASHED_KEYS:
        node = parent(path)
        if node is not None:
            node.pop(path[-1], None)
    if data["plate"].get("view") is None:
        del data["plate"]["view"]  # a job without views keeps the hash it had before views existed
    base = job._base_dir
    for path in HASHED_PATH_KEYS:
        node = parent(path)
        value = None if node is None else node.get(path[-1])
        if base is not None and isinstance(value, str) and os.path.isabs(value):
            # Real paths: a mount reached through a symlink is the same folder.
            node[path[-1]] = Path(os.path.relpath(os.path.realpath(value), os.path.realpath(base))).as_posix()
    return data
