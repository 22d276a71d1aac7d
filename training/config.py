"""Training configuration: YAML files validated by a pydantic schema.

A run is described by one YAML file, usually a few lines on top of ``configs/base.yaml``::

    inherit: base.yaml          # or a list, merged in order; paths relative to this file
    model: small                # a variant name, or a dict of architecture fields
    train: {steps: 2000, batch_size: 8}

Loading order: inherited files (recursively, in list order), then the file itself, then
``--set key.sub=value`` overrides (values parsed as YAML: ``3``, ``1e-4``, ``[320, 480]``,
``true``). Dicts merge key by key; lists and scalars replace. Strings may name environment
variables with the syntax job files use (:func:`vfxmatte.env.expand_env`: ``$VAR``, ``${VAR}``,
``${VAR:-default}``, ``$$`` for a literal ``$``); they are expanded once, after merging, so a
base path can point at an env var (``backgrounds: ${VFXMATTE_BACKGROUNDS:-/data/backgrounds}``).
An unset variable without a default is an error naming the file and key. ``inherit:`` names are
expanded as each file is read.

Files are read with ``yaml.safe_load`` only (no object construction) and every section forbids
unknown keys: a typo raises :class:`~vfxmatte.errors.ConfigError` (a
:class:`~vfxmatte.errors.TrainingError`) naming the key path, e.g.
``tiny.yaml: train.bach_size: unknown key``.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vfxmatte.env import expand_env, expand_env_tree
from vfxmatte.errors import CheckpointError, ConfigError, EnvVarError, VfxMatteError
from vfxmatte.model import TCPMattingConfig, variant
from training.trimaps import ROUGH_KERNEL

CONFIG_DIR = Path(__file__).parent / "configs"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def _check_recipes(v: dict[str, float] | None) -> dict[str, float] | None:
    if v is None:
        return v
    from training.synthetic import recipe_odds_problem

    problem = recipe_odds_problem(v)
    if problem:
        raise ValueError(problem)
    return v


class SyntheticDataConfig(_Section):
    #: Folder of background/foreground photos the synthetic generator crops from.
    backgrounds: str
    #: Seed of the procedural training stream (each sample derives its own seed from it).
    seed: int = 0
    #: Consecutive items sharing one generated foreground (different crop, background,
    #: jitter): generating the foreground dominates an item's cost, so 2 nearly halves it.
    reuse: int = 1
    #: Share of synthetic items when studio data is also given.
    fraction: float = 0.5
    #: Supersampling of the strand canvas (training.synthetic; 3 by default).
    supersample: int = 3
    #: Odds of each scene recipe in the training stream (``training.synthetic.RECIPES``, e.g.
    #: ``{hair: 0.3, shrub: 0.2, ...}``); unset = the generator's default mix.
    recipes: Optional[dict[str, float]] = None

    @field_validator("recipes")
    @classmethod
    def _recipes(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        return _check_recipes(v)

    @field_validator("reuse", "supersample")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be >= 1")
        return v

    @field_validator("fraction")
    @classmethod
    def _fraction(cls, v: float) -> float:
        if not 0.0 <= v <= 1.0:
            raise ValueError("must be in [0, 1]")
        return v


#: The data keys a validation protocol (``data.val_protocols``) may change.
PROTOCOL_KEYS = ("val_samples", "val_seed", "val_size", "val_rough_trimap_prob", "rough_trimap_kernel",
                 "val_held_object_prob", "val_recipes")


class DataConfig(_Section):
    synthetic: Optional[SyntheticDataConfig] = None
    #: Roots of studio matting sets (image/alpha pairs) mixed into the stream.
    studio_roots: list[str] = Field(default_factory=list)
    #: Square crop sizes drawn at random before resizing to ``out_size``: cropping 320..640 and
    #: resizing teaches scale variety (the DIM/GCA recipe).
    crop_sizes: list[int] = Field(default_factory=lambda: [320, 480, 640])
    #: Side of the training samples the network sees.
    out_size: int = 320
    #: Samples per epoch (an epoch only sets the data stream's reshuffle period).
    epoch_size: int = 10_000
    #: Data loader worker processes (0 = load in the training process).
    workers: int = 2
    #: Batches each worker prepares ahead.
    prefetch_factor: int = 4
    #: How loader workers start. spawn: fresh interpreters. fork can deadlock workers (a lock of
    #: OpenCV's/torch's thread pools, taken while the validation set is built, is copied held
    #: into the child), so it is opt-in.
    start_method: Literal["spawn", "forkserver", "fork"] = "spawn"
    #: Held-out synthetic validation set: number of samples, seed and side. Never a benchmark
    #: set (alphamatting-dev stays unseen).
    val_samples: int = 32
    val_seed: int = 999_983
    val_size: int = 320
    #: Share of training items whose trimaps start from a *rough* trimap: the paper's SP trimap
    #: with its unknown band dilated by a kernel side drawn from ``rough_trimap_kernel`` (in
    #: ``out_size`` pixels). Not in the paper (0 = the paper's trimaps exactly): it teaches the
    #: wide bands of loosely drawn trimaps and rough rotos, whose unknown region holds opaque
    #: interior far from any known pixel.
    rough_trimap_prob: float = 0.0
    rough_trimap_kernel: tuple[int, int] = ROUGH_KERNEL
    #: The same for the validation set: 0 = the paper's trimaps, 1 = every sample rough (the
    #: "rough" protocol, e.g. ``validate --set data.val_rough_trimap_prob=1``).
    val_rough_trimap_prob: float = 0.0
    #: Share of composited training items that get a *held object* (a flag, board, bag: its own
    #: photo texture, often dark or background-coloured) pasted over the foreground's edge and
    #: marked all unknown (``training.synthetic.held_object``). Not in the paper (0 = off): it
    #: teaches opaque parts that look nothing like the known foreground and lie wholly inside
    #: a hand-drawn band (alphamatting.com's GT16 flag is the case on the benchmark).
    held_object_prob: float = 0.0
    #: The same for the validation set ("held" protocol: ``--set data.val_held_object_prob=1``).
    val_held_object_prob: float = 0.0
    #: Recipe odds of the validation composites; unset = the generator's default mix. One
    #: recipe makes a protocol of it ("shrub": ``--set 'data.val_recipes={shrub: 1}'``).
    val_recipes: Optional[dict[str, float]] = None
    #: Further validation protocols, each scored on its own set at every validation: a name and
    #: the keys of :data:`PROTOCOL_KEYS` it changes from this section, e.g. ``{rough:
    #: {val_rough_trimap_prob: 1, rough_trimap_kernel: [15, 95]}, shrub: {val_recipes: {shrub:
    #: 1}}}``. This section's own val_* settings stay the main protocol (plain metric names);
    #: a protocol's metrics are named ``<name>.sad`` etc. Empty: the main protocol only.
    val_protocols: dict[str, dict[str, Any]] = Field(default_factory=dict)

    def protocol(self, name: str) -> "DataConfig":
        """This section with validation protocol ``name``'s keys applied (and no protocols)."""
        merged = {**self.model_dump(mode="json"), **self.val_protocols[name], "val_protocols": {}}
        return DataConfig.model_validate(merged)

    @model_validator(mode="after")
    def _protocols(self) -> "DataConfig":
        for name, keys in self.val_protocols.items():
            if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
                raise ValueError(f"val_protocols: {name!r}: a name of letters, digits, _ and -")
            if not isinstance(keys, dict):
                raise ValueError(f"val_protocols.{name}: expected a mapping of data keys")
            unknown = sorted(set(keys) - set(PROTOCOL_KEYS))
            if unknown:
                raise ValueError(f"val_protocols.{name}: {', '.join(unknown)}: not a validation key "
                                 f"(allowed: {', '.join(PROTOCOL_KEYS)})")
            try:
                self.protocol(name)
            except ValidationError as exc:
                raise ValueError(f"val_protocols.{name}: {_format_errors(exc)}") from None
        return self

    @field_validator("val_recipes")
    @classmethod
    def _val_recipes(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        return _check_recipes(v)

    @field_validator("crop_sizes")
    @classmethod
    def _crops(cls, v: list[int]) -> list[int]:
        if not v or any(c < 8 for c in v):
            raise ValueError("needs at least one crop size, each >= 8")
        return v

    @field_validator("out_size", "val_size")
    @classmethod
    def _size(cls, v: int) -> int:
        if v < 32:
            raise ValueError("must be >= 32 (the Semantic Path's stride)")
        return v

    @field_validator("rough_trimap_prob", "val_rough_trimap_prob", "held_object_prob", "val_held_object_prob")
    @classmethod
    def _probability(cls, v: float) -> float:
        if not 0.0 <= v <= 1.0:
            raise ValueError("must be in [0, 1]")
        return v

    @field_validator("rough_trimap_kernel")
    @classmethod
    def _kernel_range(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= v[0] <= v[1]:
            raise ValueError("must be [low, high] with 1 <= low <= high")
        return v

    @field_validator("workers", "val_samples")
    @classmethod
    def _non_negative(cls, v: int) -> int:
        if v < 0:
            raise ValueError("must be >= 0")
        return v

    @field_validator("epoch_size", "prefetch_factor")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be >= 1")
        return v


class OptimConfig(_Section):
    #: Adam (paper §4.1): beta1 = 0.5, beta2 = 0.999, lr 4e-4.
    lr: float = 4e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 0.0
    #: Linear warm-up from ~0 to ``lr`` (paper §4.1, after Goyal et al.).
    warmup_steps: int = 300
    #: Cosine annealing ends at this learning rate (paper §4.1, after Loshchilov & Hutter).
    min_lr: float = 1e-6
    #: Clip the global gradient norm (0 = off).
    grad_clip: float = 0.0

    @field_validator("lr")
    @classmethod
    def _lr(cls, v: float) -> float:
        if v <= 0:
            raise ValueError("must be > 0")
        return v

    @field_validator("min_lr", "weight_decay", "grad_clip")
    @classmethod
    def _nonneg(cls, v: float) -> float:
        if v < 0:
            raise ValueError("must be >= 0")
        return v

    @field_validator("warmup_steps")
    @classmethod
    def _warmup(cls, v: int) -> int:
        if v < 0:
            raise ValueError("must be >= 0")
        return v


class LossConfig(_Section):
    #: w1, w2 and theta of paper §3.3.
    alpha_weight: float = 0.9
    bg_weight: float = 0.1
    theta: float = 0.1
    #: Charbonnier epsilon; 1e-6 as in Deep Image Matting (see training.losses).
    eps: float = 1e-6
    #: Weight of the gradient term (training.losses.gradient_loss), not in the paper; 0: off.
    grad_weight: float = Field(0.0, ge=0.0)


class TrainLoopConfig(_Section):
    #: Optimizer steps in the whole run; the cosine schedule spans them.
    steps: int = 1000
    #: Samples per micro-batch per process.
    batch_size: int = 8
    #: Micro-batches accumulated per optimizer step.
    grad_accum: int = 1
    #: auto: bf16 on a CUDA GPU that supports it, else fp16 with a GradScaler; off on CPU.
    amp: Literal["auto", "fp16", "bf16", "off"] = "auto"
    #: auto: cuda if available, else cpu.
    device: str = "auto"
    #: channels_last memory format (auto: on CUDA only; it speeds up tensor-core convs).
    channels_last: Literal["auto", "on", "off"] = "auto"
    #: torch.compile the model (slow start; off by default).
    compile: bool = False
    #: CPU threads for torch (null: torch's default).
    threads: Optional[int] = None
    #: Keep every batch norm's running statistics fixed (norms run in eval mode; their affine
    #: weights still train). For fine-tuning with small batches (a few crops per step on a CPU),
    #: whose batch statistics are too noisy to normalise with or to average into the weights.
    freeze_norm_stats: bool = False
    log_every: int = 10
    val_every: int = 500
    ckpt_every: int = 500
    #: Stop cleanly (checkpoint + export) once this much wall time has passed (null: no limit).
    time_limit_minutes: Optional[float] = None
    seed: int = 0
    out_dir: str = "runs/default"
    #: auto: continue from the latest state in out_dir if one exists; never: start afresh
    #: (refuses if out_dir already holds a state); or a path to a state file.
    resume: str = "auto"
    #: Training-state files kept in out_dir/states (older ones are deleted).
    keep_states: int = 2
    #: With ``resume: auto`` and no state in out_dir: continue from this state file instead
    #: (full, or compact as ``python -m training compact`` writes it; training/state/README.md),
    #: so a fresh checkout continues a long run from its committed state. Absent file: start
    #: afresh (the start event says so). Null: no fallback.
    fallback_state: Optional[str] = None
    #: Steps over which the learning rate ramps up again (linearly from 1/rewarm_steps of the
    #: schedule's value) after resuming from a compact state, whose Adam moments were dropped.
    rewarm_steps: int = 50
    #: Keep an exponential moving average of the weights (Polyak averaging): after every
    #: optimizer step ``avg <- decay * avg + (1 - decay) * weights`` (floating tensors; integer
    #: buffers are copied), over a horizon of about ``1 / (1 - decay)`` steps. It starts from the
    #: weights at the step it is switched on (a run's first step, or the step a run without one
    #: resumes at). Validations then score both (the average's metrics under ``ema.<metric>``),
    #: and exports write the average. Null: off.
    ema_decay: Optional[float] = None

    @field_validator("ema_decay")
    @classmethod
    def _decay(cls, v: Optional[float]) -> Optional[float]:
        if v is not None and not 0.0 <= v < 1.0:
            raise ValueError("must be in [0, 1) (or null for no average)")
        return v

    @field_validator("steps", "batch_size", "grad_accum", "log_every", "val_every", "ckpt_every", "keep_states",
                     "rewarm_steps")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be >= 1")
        return v

    @field_validator("amp", "channels_last", mode="before")
    @classmethod
    def _yaml_bool(cls, v: Any) -> Any:
        # YAML 1.1 reads a bare on/off as a bool.
        if isinstance(v, bool):
            return "on" if v else "off"
        return v

    @field_validator("time_limit_minutes")
    @classmethod
    def _limit(cls, v: Optional[float]) -> Optional[float]:
        if v is not None and v <= 0:
            raise ValueError("must be > 0 (or null for no limit)")
        return v

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        if v != "auto" and not re.fullmatch(r"cpu|cuda(:\d+)?|mps", v):
            raise ValueError("must be auto, cpu, cuda, cuda:N or mps")
        return v


class TrainConfig(_Section):
    """The whole run. ``model`` is a variant name or a dict of architecture fields
    (optionally ``variant: small`` to start from a named variant)."""

    model: Union[str, dict[str, Any]] = "small"
    data: DataConfig
    optim: OptimConfig = Field(default_factory=OptimConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    train: TrainLoopConfig = Field(default_factory=TrainLoopConfig)
    #: Optional torchvision ResNet weight file (.pth/.safetensors) for the encoder (§4.1).
    encoder_init: Optional[str] = None
    #: Optional vfxmatte inference checkpoint to warm-start the whole network from (a fresh
    #: optimizer and schedule): continues training on another machine when only the exported
    #: weights, not the full training state, travel.
    init_checkpoint: Optional[str] = None
    #: The sha256 of the ``init_checkpoint`` file (64 hex digits), checked before training
    #: starts: a recipe that reproduces shipped weights pins the exact file it started from, so
    #: a built-in name that now means newer weights, or a stale local copy, fails loudly.
    init_checkpoint_sha256: Optional[str] = None

    @field_validator("init_checkpoint_sha256")
    @classmethod
    def _sha256(cls, v: Optional[str]) -> Optional[str]:
        if v is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", v):
            raise ValueError("must be a sha256: 64 hex digits")
        return v.lower() if v is not None else v

    @model_validator(mode="after")
    def _pin_has_checkpoint(self) -> "TrainConfig":
        if self.init_checkpoint_sha256 is not None and not self.init_checkpoint:
            raise ValueError("init_checkpoint_sha256: pins a file, but init_checkpoint is not set")
        return self

    @field_validator("model")
    @classmethod
    def _model(cls, v: Union[str, dict[str, Any]]) -> Union[str, dict[str, Any]]:
        _arch(v)  # raises ValueError with the reason
        return v

    @model_validator(mode="after")
    def _has_data(self) -> "TrainConfig":
        if self.data.synthetic is None and not self.data.studio_roots:
            raise ValueError("data: needs data.synthetic or data.studio_roots")
        return self

    def architecture(self) -> TCPMattingConfig:
        return _arch(self.model)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def _arch(spec: Union[str, dict[str, Any]]) -> TCPMattingConfig:
    """The architecture a ``model:`` value names; a ValueError (for pydantic to place at the
    key) caused by the core's typed error (e.g. :class:`~vfxmatte.errors.UnknownVariantError`)."""
    try:
        if isinstance(spec, str):
            return variant(spec)
        fields = dict(spec)
        name = fields.pop("variant", None)
        if name is not None:
            fields = {**variant(name).to_dict(), **fields}
        return TCPMattingConfig.from_dict(fields, source="model")
    except CheckpointError as exc:
        raise ValueError(str(exc).removeprefix("model: ")) from exc


def _typed_cause(exc: ValidationError) -> VfxMatteError | None:
    """The first core error behind a validation failure (the ``model:`` key's), if any."""
    for err in exc.errors():
        cause = getattr(err.get("ctx", {}).get("error"), "__cause__", None)
        if isinstance(cause, VfxMatteError):
            return cause
    return None


# --------------------------------------------------------------------------------------------
# loading


def _expand(raw: dict[str, Any], source: str) -> dict[str, Any]:
    """Every string of a merged raw config expanded (:func:`vfxmatte.env.expand_env`).

    Raises:
        ConfigError: ``source: key.path: reason`` for every string that cannot be expanded.
    """
    out, errors = expand_env_tree(raw)
    if errors:
        raise ConfigError("; ".join(f"{source}: {'.'.join(map(str, path))}: {exc.reason}" for path, exc in errors))
    return out


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``: dicts merge key by key, anything else replaces."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _normalise(raw: dict[str, Any]) -> dict[str, Any]:
    # A variant name becomes {variant: name} so files and --set can refine single fields.
    if isinstance(raw.get("model"), str):
        raw = {**raw, "model": {"variant": raw["model"]}}
    return raw


def _resolve(ref: str, base_dir: Path, source: Path) -> Path:
    """An ``inherit:`` name of ``source`` as a path: expanded, then relative to ``base_dir``, else
    to the shipped configs."""
    try:
        ref = expand_env(ref)
    except EnvVarError as exc:
        raise ConfigError(f"{source}: inherit: {exc.reason}") from None
    p = Path(os.path.expanduser(ref))
    if not p.is_absolute():
        p = base_dir / p
        if not p.exists() and (CONFIG_DIR / ref).exists():
            p = CONFIG_DIR / ref
    return p


def read_layers(path: str | os.PathLike[str], _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read one YAML config file with everything it inherits merged in (not validated)."""
    p = Path(path).resolve()
    if p in _seen:
        raise ConfigError(f"{p}: inherit loop ({' -> '.join(x.name for x in _seen + (p,))})")
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        raw = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        reason = " ".join(str(exc).split())
        raise ConfigError(f"{p}: not valid YAML ({reason})") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{p}: expected a mapping at the top level, got {type(raw).__name__}")
    parents = raw.pop("inherit", None)
    if parents is None:
        parents = []
    elif isinstance(parents, str):
        parents = [parents]
    elif not isinstance(parents, list) or not all(isinstance(x, str) for x in parents):
        raise ConfigError(f"{p}: inherit: expected a file name or a list of file names")
    merged: dict[str, Any] = {}
    for ref in parents:
        merged = deep_merge(merged, read_layers(_resolve(ref, p.parent, p), _seen + (p,)))
    return deep_merge(merged, _normalise(raw))


def apply_override(raw: dict[str, Any], assignment: str) -> dict[str, Any]:
    """Apply one ``key.sub=value`` override; the value is parsed as YAML."""
    key, sep, text = assignment.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"--set {assignment}: expected key.sub=value")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {assignment}: value is not valid YAML") from exc
    parts = key.split(".")
    if parts[0] == "model" and len(parts) == 1 and isinstance(value, str):
        value = {"variant": value}  # --set model=tiny replaces the architecture entirely
        out = dict(raw)
        out["model"] = value
        return out
    out = copy.deepcopy(raw)
    node = out
    for i, part in enumerate(parts[:-1]):
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {assignment}: {'.'.join(parts[: i + 1])} is not a section")
        node = nxt
    node[parts[-1]] = value
    return out


def _format_errors(exc: ValidationError) -> str:
    msgs = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"] if not str(x).startswith("function-"))
        # Union branches add type tags to the location (e.g. model.str, model.dict[str,any]).
        loc = re.sub(r"\.(str|dict\[.*?\])$", "", loc)
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "required key is missing"
        msgs.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(dict.fromkeys(msgs))


def validate(raw: dict[str, Any], source: str = "config", expand: bool = True) -> TrainConfig:
    """Validate a merged raw config; errors name the key path (``train.batch_size: ...``).

    Args:
        expand: expand environment variables first (off for a config that was stored after
            validation, whose strings are already expanded: a ``$`` in them is literal).

    Raises:
        ConfigError: naming ``source`` and every failing key path.
    """
    if expand:
        raw = _expand(raw, source)
    model = raw.get("model")
    if isinstance(model, dict) and set(model) == {"variant"}:
        raw = {**raw, "model": model["variant"]}
    try:
        return TrainConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_format_errors(exc)}") from _typed_cause(exc)


def load_config(
    paths: str | os.PathLike[str] | list[str | os.PathLike[str]],
    overrides: list[str] | None = None,
) -> TrainConfig:
    """Load one config file (or several, merged in order), apply ``--set`` overrides, validate."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise ConfigError("no config file given")
    raw: dict[str, Any] = {}
    for p in paths:
        raw = deep_merge(raw, read_layers(p))
    for assignment in overrides or []:
        raw = apply_override(raw, assignment)
    return validate(raw, source=Path(paths[-1]).name)


def from_dict(data: dict[str, Any], source: str = "config") -> TrainConfig:
    """Validate a config dict stored after validation (e.g. in a training state): its strings
    are already expanded and are not expanded again."""
    return validate(_normalise(dict(data)), source, expand=False)
