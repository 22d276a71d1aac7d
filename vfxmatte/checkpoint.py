"""Inference checkpoints: safetensors weights plus metadata that carries the architecture.

A checkpoint is one ``.safetensors`` file. Its string metadata holds:

- ``vfxmatte.format``: checkpoint format version (``1``)
- ``vfxmatte.arch``: the :class:`TCPMattingConfig` as JSON, so the file rebuilds its own network
- ``vfxmatte.version``: the vfxmatte version that wrote it
- ``vfxmatte.provenance``: JSON describing how the weights were made (config, steps, data, time)

Files are never unpickled: safetensors holds raw tensors only.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vfxmatte import __version__
from vfxmatte.errors import CheckpointError
from vfxmatte.io.atomic import atomic_write
from vfxmatte.model import TCPMatting, TCPMattingConfig, build_model, variant

FORMAT_VERSION = "1"
WEIGHTS_DIR = Path(__file__).parent / "weights"
#: Names that resolve to checkpoints shipped inside the package.
BUILTIN = {"starter": WEIGHTS_DIR / "starter.safetensors"}


@dataclass
class Checkpoint:
    path: Path
    config: TCPMattingConfig
    state_dict: dict[str, torch.Tensor]
    version: str
    provenance: dict[str, Any] = field(default_factory=dict)
    sha256: str = ""

    @property
    def short_hash(self) -> str:
        return self.sha256[:12]


def resolve(name_or_path: str | os.PathLike[str]) -> Path:
    """Turn a built-in name ("starter") or a path into an existing checkpoint path.

    ``~`` is expanded; environment variables are not: they are expanded once, where text
    enters (job files and training configs through :func:`vfxmatte.env.expand_env`, command
    lines by the shell), so a ``$`` left in a name is part of the file name.

    Raises:
        CheckpointError: no such file, naming it (and the built-in names).
    """
    key = str(name_or_path)
    p = BUILTIN.get(key, Path(os.path.expanduser(key)))
    if not p.is_file():
        from vfxmatte.io.sequence import not_a_file

        what = not_a_file(p) or "not a regular file"
        if what != "missing":
            raise CheckpointError(f"{p}: {what}, not a checkpoint file")
        hint = f" (built-in names: {', '.join(BUILTIN)})" if key not in BUILTIN else ""
        raise CheckpointError(f"{p}: checkpoint not found{hint}")
    return p


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_checkpoint(
    path: str | os.PathLike[str],
    model: TCPMatting,
    provenance: dict[str, Any] | None = None,
    half: bool = False,
) -> Path:
    """Write ``model``'s weights and architecture to ``path`` atomically.

    The file is written by :func:`vfxmatte.io.atomic.atomic_write` (a failed write leaves an
    existing checkpoint as it was) with ordinary data-file permissions (``0o666`` less the umask).

    Args:
        half: store floating tensors as fp16 (halves the file; inference upcasts on load).

    Raises:
        CheckpointError: the file cannot be written, naming it.
    """
    from safetensors.torch import save_file

    target = Path(path)
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        if half and v.is_floating_point():
            v = v.half()
        state[k] = v
    meta = {
        "vfxmatte.format": FORMAT_VERSION,
        "vfxmatte.arch": json.dumps(model.config.to_dict(), sort_keys=True),
        "vfxmatte.version": __version__,
        "vfxmatte.provenance": json.dumps(provenance or {}, sort_keys=True, default=str),
    }
    with atomic_write(target, error=CheckpointError, what="checkpoint", mode=0o666) as tmp:
        save_file(state, str(tmp), metadata=meta)
    return target


def _read(path: Path, tensors: bool) -> tuple[TCPMattingConfig, dict[str, Any], dict[str, str], dict[str, torch.Tensor]]:
    """Architecture, provenance, raw metadata and (if ``tensors``) the tensors of a checkpoint."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()} if tensors else {}
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad checkpoint
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({exc})") from exc
    if meta.get("vfxmatte.format") != FORMAT_VERSION or "vfxmatte.arch" not in meta:
        raise CheckpointError(f"{path}: not a vfxmatte checkpoint (missing vfxmatte.arch metadata)")
    try:
        arch = json.loads(meta["vfxmatte.arch"])
        provenance = json.loads(meta.get("vfxmatte.provenance", "{}"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: corrupt checkpoint metadata ({exc})") from exc
    if not isinstance(arch, dict):
        raise CheckpointError(f"{path}: corrupt checkpoint metadata (vfxmatte.arch is not a JSON object)")
    return TCPMattingConfig.from_dict(arch, source=str(path)), provenance, meta, state


def load_checkpoint(name_or_path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint's tensors and metadata (no model is built)."""
    path = resolve(name_or_path)
    config, provenance, meta, state = _read(path, tensors=True)
    return Checkpoint(path, config, state, meta.get("vfxmatte.version", "?"), provenance, file_sha256(path))


def read_architecture(name_or_path: str | os.PathLike[str]) -> TCPMattingConfig:
    """A checkpoint's architecture from its header alone (no tensors are read)."""
    return _read(resolve(name_or_path), tensors=False)[0]


def _check_fit(own: dict[str, tuple[int, ...]], shapes: dict[str, tuple[int, ...]], source: str) -> None:
    """Raise naming the first missing, unexpected or mis-shaped tensor of ``shapes`` (name ->
    shape) against the architecture's ``own``."""
    missing = sorted(set(own) - set(shapes))
    unexpected = sorted(set(shapes) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} tensor(s) e.g. '{missing[0]}'")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} tensor(s) e.g. '{unexpected[0]}'")
        raise CheckpointError(f"{source}: weights do not fit the architecture: {'; '.join(parts)}")
    for k, shape in shapes.items():
        if tuple(shape) != tuple(own[k]):
            raise CheckpointError(
                f"{source}: tensor '{k}' has shape {tuple(shape)}, the architecture expects {tuple(own[k])}"
            )


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model``, naming the first missing, unexpected or mis-shaped tensor."""
    own = model.state_dict()
    _check_fit({k: tuple(v.shape) for k, v in own.items()}, {k: tuple(v.shape) for k, v in state.items()}, source)
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})


def check_checkpoint(name_or_path: str | os.PathLike[str]) -> TCPMattingConfig:
    """A checkpoint's architecture, once its tensors are known to fit it: the names and shapes
    in the file's header are those of the network its metadata describes (built on PyTorch's
    meta device: no memory, whatever the widths). What :func:`load_model` would reject, found
    without reading the weights.

    Raises:
        CheckpointError: no such file, not a checkpoint, absurd architecture metadata, or
            tensors that do not fit it; naming the file.
    """
    from safetensors import safe_open

    path = resolve(name_or_path)
    config = _read(path, tensors=False)[0]
    try:
        with safe_open(str(path), framework="pt") as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad checkpoint
        raise CheckpointError(f"{path}: not a readable safetensors checkpoint ({exc})") from exc
    with torch.device("meta"):
        own = {k: tuple(v.shape) for k, v in build_model(config).state_dict().items()}
    _check_fit(own, shapes, str(path))
    return config


def load_model(
    name_or_path: str | os.PathLike[str],
    expect: TCPMattingConfig | str | None = None,
    device: str | torch.device = "cpu",
    ignore: frozenset[str] = frozenset(),
) -> tuple[TCPMatting, Checkpoint]:
    """Build the network a checkpoint describes, load its weights, return it in eval mode.

    Args:
        expect: if given, the architecture the caller needs (a config or a variant name); a
            checkpoint of another architecture raises :class:`CheckpointError` listing the
            differing fields.
        ignore: architecture fields allowed to differ from ``expect`` (the checkpoint's own
            architecture is built either way).

    Raises:
        UnknownVariantError: ``expect`` names no built-in variant.
    """
    ckpt = load_checkpoint(name_or_path)
    if expect is not None:
        want = variant(expect) if isinstance(expect, str) else expect
        diff = want.diff(ckpt.config, ignore)
        if diff:
            raise CheckpointError(
                f"{ckpt.path}: architecture mismatch with '{want.name}': {'; '.join(diff)}"
            )
    model = build_model(ckpt.config)
    load_state(model, ckpt.state_dict, str(ckpt.path))
    return model.to(device).eval(), ckpt
