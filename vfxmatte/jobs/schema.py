"""Shot job files: YAML -> validated :class:`Job`.

A job file says which plate to matte, where its trimaps come from, which model runs it and
where the mattes go (schema: ``jobs/README.md``). It is read with ``yaml.safe_load`` (never
``yaml.load``: a job file must not be able to run code) and validated with pydantic. Every
error names the file, the line and the key path::

    jobs/shot010.yaml:12: output.compression: Input should be 'zip', 'dwaa' or 'piz'

Before validation every string value has ``$VAR`` / ``${VAR}`` expanded from the environment
(``$$`` is a literal ``$``; ``$F``/``$F4`` are Houdini frame tokens and stay as they are); an
unset variable is an error naming it. After validation relative paths resolve against the
job file's folder, so a job means the same thing from any working directory.

Example:
    >>> job = load_job("jobs/shot010.yaml")  # doctest: +SKIP
    >>> job.plate.path, job.job_hash[:12]  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    PrivateAttr,
    ValidationInfo,
    field_validator,
)

from vfxmatte.defaults import DEFAULT_OVERLAP, DEFAULT_TILE
from vfxmatte.errors import CheckpointError, ColorError, JobError, SequenceError
from vfxmatte.io.sequence import FrameSequence, parse_frame_range

__all__ = [
    "SCHEMA_VERSION",
    "ColorSpec",
    "Job",
    "KeyframesTrimap",
    "MaskTrimap",
    "ModelSpec",
    "OutputSpec",
    "PlateSpec",
    "SequenceTrimap",
    "check_device_name",
    "check_job",
    "has_frame_token",
    "load_job",
    "parse_job",
]

#: The schema version this release reads. A later schema bumps it and migrates older files.
SCHEMA_VERSION = 1

KeyPath = tuple[Union[str, int], ...]


# --------------------------------------------------------------------------- path helpers

# One of the frame tokens FrameSequence understands: ####, @@@@, %04d, $F / $F4.
_FRAME_TOKEN = re.compile(r"#+|@+|%0?\d*d|\$F\d*(?![A-Za-z0-9_])")


def has_frame_token(path: str | os.PathLike[str]) -> bool:
    """True if the file name of ``path`` holds a frame token (``####``, ``%04d``, ``@@@@``, ``$F4``)."""
    return bool(_FRAME_TOKEN.search(Path(path).name))


def _resolve_path(value: str, info: ValidationInfo) -> str:
    """``~`` expanded, then made absolute against the job file's folder (from the context)."""
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


class PlateSpec(_Section):
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

    @field_validator("frames", mode="before")
    @classmethod
    def _frames_text(cls, v: Any) -> Any:
        # ``frames: 1001`` is a YAML int: a one-frame range.
        return str(v) if isinstance(v, int) and not isinstance(v, bool) else v

    @field_validator("frames")
    @classmethod
    def _frames_parse(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            parse_frame_range(v)
        except SequenceError as exc:
            raise ValueError(str(exc)) from None
        return v.strip()

    @field_validator("path")
    @classmethod
    def _path(cls, v: str, info: ValidationInfo) -> str:
        return _sequence_path(v, info)

    @property
    def frame_list(self) -> list[int] | None:
        """The ``frames`` range as a list, or None when the job leaves it to the pattern/disk."""
        return None if self.frames is None else parse_frame_range(self.frames)


class _TrimapSource(_Section):
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


class MaskTrimap(_TrimapSource):
    """Trimaps derived from a rough roto mask (its A channel, else its first channel): an
    unknown band of ``band_px`` around its edge."""

    mode: Literal["mask"]
    #: Width of the unknown band on each side of the mask edge, in pixels.
    band_px: int = Field(12, ge=0, le=2048)
    #: Mask values at or above this count as inside.
    threshold: float = Field(0.5, gt=0.0, lt=1.0)


class KeyframesTrimap(BaseModel):
    """Reserved: trimaps painted on keyframes and propagated by optical flow (a later release)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    mode: Literal["keyframes"]

    @field_validator("mode")
    @classmethod
    def _reserved(cls, v: str) -> str:
        raise ValueError(
            "'keyframes' is not yet supported (keyframe trimaps propagated by optical flow "
            "come in a later release); use mode 'sequence' or 'mask'"
        )


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
    """Return ``name`` if it is a device a job or ``--device`` may name, else raise ValueError."""
    if not _DEVICE.match(name):
        raise ValueError(f"Input should be 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps', got {name!r}")
    return name


class ModelSpec(_Section):
    """The network and how it runs."""

    #: A built-in name (``starter``) or a ``.safetensors`` checkpoint path.
    checkpoint: str = "starter"
    device: str = "auto"
    #: auto: fp16 autocast on GPUs; bf16 on CPUs with native bf16 (AVX512_BF16 / AMX, ~2x
    #: fp32's speed, held-out scores within 0.6%), else fp32. fp32 where every farm node must
    #: give bit-identical mattes. bf16 on a CPU without native bf16, or fp16 on any CPU, is an error.
    precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto"
    #: Tile edge in pixels (0: the whole frame at once); cost follows the unknown band.
    tile_size: int = Field(DEFAULT_TILE, ge=0)
    #: Least overlap between tiles: enough context that seams vanish (vfxmatte.defaults).
    overlap: int = Field(DEFAULT_OVERLAP, ge=0)
    #: Tiles per forward pass; null: 1 on CPU, 8 on GPU.
    batch_size: int | None = Field(None, ge=1)
    #: Test-time augmentation: "none", or "flip" (each tile also mirrored, the two alphas
    #: averaged; about twice the time for finer edges, see benchmarks/RESULTS.md).
    tta: Literal["none", "flip"] = "none"
    #: Run the full- and half-resolution layers only near the unknown band (same alpha inside
    #: it, to float rounding; on the CPU 1.15-1.35x faster on 800 px photos, 1.6-1.9x on 2K/4K
    #: plates with thin bands). false: dense inference over every tile. null: on for the CPU,
    #: off on GPUs (not yet measured there).
    sparse: bool | None = None

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        return check_device_name(v)

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


_CHANNEL = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*\.)*[A-Za-z_][A-Za-z0-9_]*$")


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


class Job(_Section):
    """A validated shot job. Build with :func:`load_job` (or :func:`parse_job` for text)."""

    version: Literal[1]
    #: Shot name, used in logs and written into the mattes' metadata.
    shot: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]
    plate: PlateSpec
    trimap: TrimapSpec
    color: ColorSpec = ColorSpec()
    model: ModelSpec = ModelSpec()
    output: OutputSpec

    # Where the job came from, for messages from later checks: not part of the schema or hash.
    _source: str = PrivateAttr("<job>")
    _lines: dict[KeyPath, tuple[int, int]] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> str:
        """The job file's path as given to :func:`load_job`."""
        return self._source

    @property
    def job_hash(self) -> str:
        """sha256 of the normalised job: defaults filled in, paths resolved, keys sorted.

        Comments, key order, quoting and YAML formatting do not change it; any value does.
        """
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --------------------------------------------------------------------------- YAML with lines


def _line_map(node: yaml.Node, where: str) -> dict[KeyPath, tuple[int, int]]:
    """``key path -> (line of the key, line of the value)``, 1-based, for every mapping entry.

    Raises JobError on duplicate keys, which ``safe_load`` would silently collapse.
    """
    lines: dict[KeyPath, tuple[int, int]] = {(): (node.start_mark.line + 1,) * 2}

    def walk(n: yaml.Node, path: KeyPath) -> None:
        if isinstance(n, yaml.MappingNode):
            seen: dict[Any, int] = {}
            for k, v in n.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else str(k.value)
                line = k.start_mark.line + 1
                if key in seen:
                    dotted = ".".join(str(p) for p in (*path, key))
                    raise JobError(f"{where}:{line}: {dotted}: duplicate key (first set on line {seen[key]})")
                seen[key] = line
                # A nested mapping or list is reported on its key's line, a scalar on its own.
                scalar = isinstance(v, yaml.ScalarNode)
                lines[(*path, key)] = (line, v.start_mark.line + 1 if scalar else line)
                walk(v, (*path, key))
        elif isinstance(n, yaml.SequenceNode):
            for i, v in enumerate(n.value):
                lines[(*path, i)] = (v.start_mark.line + 1,) * 2
                walk(v, (*path, i))

    walk(node, ())
    return lines


_ENV = re.compile(r"\$\$|\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def _expand(text: str) -> str:
    """Expand ``$VAR``/``${VAR}``; ``$$`` -> ``$``; Houdini frame tokens ``$F``/``$F4`` kept."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) if m.group(1) is not None else m.group(2)
        if m.group(2) is not None and re.fullmatch(r"F\d*", name):
            return m.group(0)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name or ""):
            raise KeyError(f"invalid environment variable reference {m.group(0)!r}")
        if name not in os.environ:
            raise KeyError(f"environment variable ${name} is not set")
        return os.environ[name]

    return _ENV.sub(sub, text)


def _expand_tree(data: Any, path: KeyPath, errors: list[tuple[KeyPath, str]]) -> Any:
    if isinstance(data, dict):
        return {k: _expand_tree(v, (*path, k), errors) for k, v in data.items()}
    if isinstance(data, list):
        return [_expand_tree(v, (*path, i), errors) for i, v in enumerate(data)]
    if isinstance(data, str) and "$" in data:
        try:
            return _expand(data)
        except KeyError as exc:
            errors.append((path, exc.args[0]))
    return data


# --------------------------------------------------------------------------- errors


def _locate(loc: tuple[Any, ...], data: Any, lines: dict[KeyPath, tuple[int, int]], err_type: str) -> tuple[KeyPath, int]:
    """Map a pydantic error location to the key path the user wrote and its line.

    Union tags (``trimap.mask.path``) are dropped because they are not keys of the data; a
    trailing key that is absent (a missing field) is kept and reported on its parent's line.
    """
    path: KeyPath = ()
    node = data
    rest = list(loc)
    while rest:
        seg = rest.pop(0)
        if isinstance(node, dict) and seg in node:
            path, node = (*path, seg), node[seg]
        elif isinstance(node, list) and isinstance(seg, int) and 0 <= seg < len(node):
            path, node = (*path, seg), node[seg]
        elif not rest:
            path = (*path, seg)  # missing or unknown key: name it
    if err_type == "trimap_mode":
        path = (*path, "mode")
    if path in lines:
        key_line, value_line = lines[path]
        # An unknown key points at the key; a bad value at the value (it may be lines below).
        return path, key_line if err_type == "extra_forbidden" else value_line
    for n in range(len(path) - 1, -1, -1):
        if path[:n] in lines:
            return path, lines[path[:n]][0]  # a missing key: its parent's line
    return path, 1


def _dotted(path: KeyPath) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "(job)"


def _message(err: dict[str, Any]) -> str:
    t, msg = err["type"], err["msg"]
    if t == "extra_forbidden":
        return "unknown key"
    if t == "missing":
        return "required key is missing"
    if t == "value_error":
        return msg.removeprefix("Value error, ")
    return msg


def _job_error(where: str, items: list[tuple[int, KeyPath, str]]) -> JobError:
    items = sorted(items, key=lambda x: x[0])
    lines = [f"{where}:{line}: {_dotted(path)}: {msg}" for line, path, msg in items]
    text = lines[0] if len(lines) == 1 else f"{lines[0]} (and {len(lines) - 1} more error(s))"
    err = JobError(text)
    err.errors = lines  # type: ignore[attr-defined]
    return err


# --------------------------------------------------------------------------- loading


def parse_job(text: str, base_dir: str | os.PathLike[str], source: str = "<job>", check: bool = False) -> Job:
    """Validate job YAML ``text``; relative paths resolve against ``base_dir``.

    Args:
        source: the name used in error messages (the job file's path).
        check: also check that the files it names exist (see :func:`check_job`).

    Raises:
        JobError: YAML syntax, schema, environment variable or (with ``check``) file errors;
            ``.errors`` lists every problem found, one ``file:line: key: message`` each.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise JobError(f"{source}{line}: invalid YAML: {problem}") from None
    if root is None or not isinstance(data, dict):
        raise JobError(f"{source}:1: a job file must be a YAML mapping (version, shot, plate, trimap, output)")
    lines = _line_map(root, source)

    env_errors: list[tuple[KeyPath, str]] = []
    data = _expand_tree(data, (), env_errors)
    if env_errors:
        raise _job_error(source, [(lines.get(p, (1, 1))[1], p, m) for p, m in env_errors])

    try:
        job = Job.model_validate(data, context={"base_dir": str(base_dir)})
    except ValidationError as exc:
        items = []
        for err in exc.errors():
            path, line = _locate(tuple(err["loc"]), data, lines, err["type"])
            items.append((line, path, _message(err)))
        raise _job_error(source, items) from None
    job._lines = lines
    job._source = source
    if check:
        check_job(job)
    return job


def load_job(path: str | os.PathLike[str], check: bool = True) -> Job:
    """Read and validate a job file.

    Args:
        path: the ``.yaml`` job file.
        check: check that the checkpoint, OCIO config, plate frames and still trimaps it names
            exist and that the plate's colourspace is known (default).

    Raises:
        JobError: the file is missing or unreadable, or fails validation or checks; the
            message names the file, line and key.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JobError(f"{p}: job file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise JobError(f"{p}: cannot read job file ({exc})") from None
    return parse_job(text, base_dir=p.resolve().parent, source=str(path), check=check)


def _where(job: Job, path: KeyPath) -> str:
    lines, source = job._lines, job._source
    for n in range(len(path), -1, -1):
        if path[:n] in lines:
            return f"{source}:{lines[path[:n]][1]}: {_dotted(path)}"
    return f"{source}: {_dotted(path)}"


def check_job(job: Job) -> None:
    """Check that what the job names exists: checkpoint, OCIO config and colourspace, plate frames
    on disk, still trimap files.

    Frame-by-frame checks (which plate and trimap frames are missing) are the pipeline's plan.

    Raises:
        JobError: naming the job file, line and key of the first problem.
    """
    from vfxmatte import color
    from vfxmatte.checkpoint import read_architecture

    try:
        arch = read_architecture(job.model.checkpoint)
    except CheckpointError as exc:
        raise JobError(f"{_where(job, ('model', 'checkpoint'))}: {exc}") from None
    if job.model.tile_size % arch.stride:
        raise JobError(
            f"{_where(job, ('model', 'tile_size'))}: {job.model.tile_size} is not a multiple of {arch.stride}, "
            f"the stride of {job.model.checkpoint} ({arch.name})"
        )
    try:
        config = color.load_config(job.color.config)
    except ColorError as exc:
        raise JobError(f"{_where(job, ('color', 'config'))}: {exc}") from None
    try:
        color.resolve_colorspace(config, job.plate.colorspace)
    except ColorError as exc:
        raise JobError(f"{_where(job, ('plate', 'colorspace'))}: {exc}") from None
    if job.output.rgb_colorspace is not None:
        if not job.output.rgba:
            raise JobError(f"{_where(job, ('output', 'rgb_colorspace'))}: needs output.rgba: true (no RGB is written)")
        try:
            color.ColorConverter(config, job.plate.colorspace, job.output.rgb_colorspace)
        except ColorError as exc:
            raise JobError(f"{_where(job, ('output', 'rgb_colorspace'))}: {exc}") from None
    try:
        if not FrameSequence(job.plate.path).discover():
            raise JobError(f"{_where(job, ('plate', 'path'))}: no frames of {job.plate.path} exist on disk")
    except SequenceError as exc:
        raise JobError(f"{_where(job, ('plate', 'path'))}: {exc}") from None
    tri = job.trimap
    if isinstance(tri, (SequenceTrimap, MaskTrimap)) and not has_frame_token(tri.path):
        if not Path(tri.path).is_file():
            raise JobError(f"{_where(job, ('trimap', 'path'))}: {tri.path}: no such file")
