"""The training loop: one process on CPU or GPU, or several GPUs under ``torchrun`` (DDP).

Paper §4.1 recipe: Adam (0.5, 0.999), lr 4e-4, linear warm-up then cosine annealing, synced
batch norm in the TCP. Everything that makes a run reproducible and resumable lives here:

- **Data stream.** Samples are addressed by ``(epoch, index)``; epoch ``e`` visits a
  permutation of the data set drawn from ``(seed, e)``, cut into global batches of
  ``batch_size * world_size`` of which rank ``r`` takes the ``r``-th slice (the
  DistributedSampler split). Position in the stream is the micro-batch counter, so a resumed run
  starts at exactly the next micro-batch. The data set draws its randomness from the item index
  and the epoch (``set_epoch``), not from worker state, so the stream is independent of the
  number of workers.
- **State files.** ``out_dir/states/state_<step>.safetensors``: model, optimizer, scheduler,
  GradScaler, step, epoch, RNG states and the config, written atomically (temp file + rename).
  No pickle: every tensor is a safetensors tensor (``model.<name>``,
  ``optim.state.<param>.<name>``, ``rng.torch``, ``rng.cuda.<i>``, ``rng.numpy.key``) and
  everything else is one JSON document in the file's string metadata, where each tensor is a
  ``{"__tensor__": "<tensor name>"}`` reference (see :func:`save_state`).
- **Exports.** ``out_dir/export/latest.safetensors``: the fp16 inference checkpoint with its
  provenance, rewritten at every state save and at the end.
- **Logs.** ``out_dir/metrics.jsonl``: one JSON object per log, validation and checkpoint event.

The library never prints: progress goes to a ``progress(event)`` callback (the CLI renders it).
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

import vfxmatte
from vfxmatte.checkpoint import load_state, save_checkpoint
from vfxmatte.devices import BF16, FP32, NumericMode, autocast, describe_device, resolve_amp, select_training_device
from vfxmatte.engine import TTA_MODES, Predictor
from vfxmatte.errors import CheckpointError, DataError, DeviceError, TrainingError
from vfxmatte.io.atomic import atomic_write
from vfxmatte.model import TCPMatting, TCPMattingConfig, alpha_from_logits, build_model
from vfxmatte.trimap import composite_known

from training.config import TrainConfig, from_dict
from training.losses import matting_loss, unknown_mask

STATE_FORMAT = "vfxmatte-train-state/2"
STATE_SUFFIX = ".safetensors"
STATES_DIR = "states"
EXPORT_NAME = "export/latest.safetensors"
METRICS_LOG = "metrics.jsonl"


# --------------------------------------------------------------------------------------------
# progress reporting


@dataclass
class TrainEvent:
    """What the loop reports. ``kind`` is one of: ``start``, ``step`` (every ``log_every``),
    ``val``, ``checkpoint``, ``end``."""

    kind: str
    step: int
    total: int
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = ""


ProgressFn = Callable[[TrainEvent], None]


@dataclass
class TrainResult:
    step: int
    total: int
    #: "done" (all steps), "time_limit", or "stopped" (should_stop returned True).
    reason: str
    state_path: Optional[Path]
    export_path: Optional[Path]
    wall_time_s: float
    last_val: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# schedule


def lr_factor(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """Multiplier of the base lr at optimizer step ``step`` (0-based).

    Linear warm-up over ``warmup`` steps (Goyal et al., paper §4.1), then cosine annealing from 1
    to ``min_ratio`` at ``total`` (Loshchilov & Hutter, paper §4.1).
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    t = min(1.0, (step - warmup) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * t))


# --------------------------------------------------------------------------------------------
# data


class BatchStream:
    """Endless, resumable batch sampler over ``(epoch, index)`` pairs, sharded by rank.

    Global micro-batch ``j`` of an epoch holds the consecutive indices ``[j*G, (j+1)*G)`` with
    ``G = batch_size * world``; rank ``r`` takes ``[r*batch_size, (r+1)*batch_size)`` of it (the
    DistributedSampler split, without shuffling). Items are already random per
    ``(epoch, index)``, and consecutive indices in one worker let the data set share a generated
    foreground between neighbours (``synthetic_reuse``). The tail of an epoch that does not fill
    a global batch is dropped, so every rank sees the same number of batches.
    """

    def __init__(self, size: int, batch_size: int, rank: int = 0, world: int = 1, start: int = 0):
        self.size, self.batch_size = size, batch_size
        self.rank, self.world, self.start = rank, world, start
        self.per_epoch = size // (batch_size * world)
        if self.per_epoch < 1:
            raise TrainingError(
                f"data set of {size} samples is smaller than one global batch "
                f"({batch_size} x {world} processes): raise data.epoch_size"
            )

    def epoch_of(self, micro_batch: int) -> int:
        return micro_batch // self.per_epoch

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        k = self.start
        while True:
            epoch, j = divmod(k, self.per_epoch)
            base = (j * self.world + self.rank) * self.batch_size
            yield [(epoch, i) for i in range(base, base + self.batch_size)]
            k += 1


class EpochIndexed(Dataset):
    """Wraps a data set so items are fetched by ``(epoch, index)``.

    Each worker holds its own copy of the data set; calling ``set_epoch`` on that copy before
    the fetch keeps persistent workers in step with the stream (a ``set_epoch`` in the main
    process would not reach them).
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset
        self._epoch: Optional[int] = None

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        if epoch != self._epoch:
            if hasattr(self.dataset, "set_epoch"):
                self.dataset.set_epoch(epoch)
            self._epoch = epoch
        return self.dataset[index]


#: The item fields the loop uses; the rest (fg, bg, ...) stay in the worker.
BATCH_KEYS = ("image", "trimap_sp", "trimap_tcp", "alpha")


def collate_training_batch(items: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """Stack only the fields the loop needs, trimaps as uint8.

    fg/bg stay in the worker and the one-hot trimaps (exactly 0/1) travel as bytes: at
    32 x 512^2 that is 180 MB instead of 340 MB per batch through shared memory and pinning.
    """
    try:
        batch = {k: torch.stack([it[k] for it in items]) for k in BATCH_KEYS}
    except KeyError as exc:
        raise DataError(f"training item lacks '{exc.args[0]}' (needs {', '.join(BATCH_KEYS)})") from exc
    for k in ("trimap_sp", "trimap_tcp"):
        batch[k] = (batch[k] > 0.5).to(torch.uint8)
    return batch


def _worker_init(worker_id: int) -> None:
    # One OpenCV / torch thread per worker: the workers together own the cores.
    try:
        from training.data import worker_init_fn
    except ImportError:  # data module absent: stand-in data sets in tests
        torch.set_num_threads(1)
        return
    worker_init_fn(worker_id)


def describe_data(cfg: TrainConfig) -> str:
    d = cfg.data
    parts = []
    if d.synthetic is not None:
        parts.append(f"synthetic(backgrounds={d.synthetic.backgrounds}, seed={d.synthetic.seed})")
    if d.studio_roots:
        parts.append(f"studio({', '.join(d.studio_roots)})")
    rough = (f"; rough trimaps {d.rough_trimap_prob:g} (kernel {d.rough_trimap_kernel[0]}-{d.rough_trimap_kernel[1]})"
             if d.rough_trimap_prob else "")
    val_rough = f", rough trimaps {d.val_rough_trimap_prob:g}" if d.val_rough_trimap_prob else ""
    held = f"; held objects {d.held_object_prob:g}" if d.held_object_prob else ""
    val_held = f", held objects {d.val_held_object_prob:g}" if d.val_held_object_prob else ""
    return (
        f"{' + '.join(parts)}; crops {d.crop_sizes} -> {d.out_size}px{rough}{held}; "
        f"val: {d.val_samples} synthetic samples seed {d.val_seed} at {d.val_size}px{val_rough}{val_held}"
    )


def build_datasets(cfg: TrainConfig) -> tuple[Any, list[dict[str, Tensor]]]:
    """The training data set and the fixed validation samples a config describes.

    Synthetic data: the photos are split with :func:`training.synthetic.split_holdout`
    (BSDS500's test split, else every 10th photo) so validation composites never reuse a
    training photo. Studio data: one root (``data.studio_roots``), mixed with synthetic items
    at ``data.synthetic.fraction`` when both are given; validation stays synthetic.
    """
    from training.data import MattingDataset, build_validation_set
    from training.synthetic import PhotoLibrary, SyntheticGenerator, list_images, split_holdout

    d = cfg.data
    if len(d.studio_roots) > 1:
        raise TrainingError("data.studio_roots: one studio root is supported per run for now")
    studio = d.studio_roots[0] if d.studio_roots else None
    gen_side = max(d.crop_sizes)
    train_lib = val_lib = None
    gen = val_gen = None
    if d.synthetic is not None:
        photos = list_images(d.synthetic.backgrounds)
        train_paths, held = split_holdout(photos)
        if not held or not train_paths:
            held, train_paths = photos[::10], [p for i, p in enumerate(photos) if i % 10]
        if not held or not train_paths:
            raise DataError(f"{d.synthetic.backgrounds}: too few photos to hold some out for validation")
        train_lib, val_lib = PhotoLibrary(train_paths), PhotoLibrary(held)
        gen = SyntheticGenerator(train_paths, seed=d.synthetic.seed, size=(gen_side, gen_side),
                                 supersample=d.synthetic.supersample, recipes=d.synthetic.recipes,
                                 photos=train_lib)
        val_gen = SyntheticGenerator(held, seed=d.val_seed, size=(gen_side, gen_side),
                                     supersample=d.synthetic.supersample, recipes=d.val_recipes,
                                     photos=val_lib)
    train_set = MattingDataset(
        studio=studio, synthetic=gen, length=d.epoch_size, backgrounds=train_lib,
        out_size=d.out_size, crop_sizes=d.crop_sizes,
        synthetic_fraction=d.synthetic.fraction if d.synthetic else 0.0,
        synthetic_reuse=d.synthetic.reuse if d.synthetic else 1,
        seed=d.synthetic.seed if d.synthetic else cfg.train.seed,
        rough_trimap_prob=d.rough_trimap_prob, rough_trimap_kernel=d.rough_trimap_kernel,
        held_object_prob=d.held_object_prob,
    )
    if d.val_samples == 0:
        return train_set, []
    if val_gen is None:
        raise TrainingError("data.val_samples: validation needs data.synthetic (never benchmark data)")
    val = build_validation_set(val_gen, n=d.val_samples, seed=d.val_seed, size=d.val_size,
                               backgrounds=val_lib, crop_sizes=d.crop_sizes,
                               rough_trimap_prob=d.val_rough_trimap_prob,
                               rough_trimap_kernel=d.rough_trimap_kernel,
                               held_object_prob=d.val_held_object_prob)
    return train_set, val


def build_protocol_sets(cfg: TrainConfig) -> dict[str, list[dict[str, Tensor]]]:
    """The validation samples of each of ``data.val_protocols``, by name (empty without any).

    Each is the main validation set a copy of the config with that protocol's keys would
    build (:func:`build_datasets`), so a protocol's numbers equal ``validate`` with the same
    keys given by ``--set``.
    """
    return {name: [{k: v for k, v in sample.items() if k in VAL_KEYS}
                   for sample in build_datasets(cfg.model_copy(update={"data": cfg.data.protocol(name)}))[1]]
            for name in cfg.data.val_protocols}


#: The fields of a validation sample :func:`validate` reads; a protocol's samples keep only these
#: (7 of an item's 16 MB at 512 px: a run holds one set per protocol in memory).
VAL_KEYS = ("image", "trimap_sp", "alpha")


#: The metrics logged per validation protocol (``<protocol>.<metric>``).
PROTOCOL_METRICS = ("sad", "mse", "grad", "conn", "loss")


def _protocol_metrics(name: str, res: dict[str, Any]) -> dict[str, Any]:
    return {f"{name}.{k}": res[k] for k in PROTOCOL_METRICS if k in res}


#: Prefix of the weight average's metrics in a validation record (``ema.sad``, ``ema.mesh.sad``).
EMA_PREFIX = "ema."


# --------------------------------------------------------------------------------------------
# devices, precision, distribution


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def dist_from_env() -> Dist:
    """torchrun sets RANK, WORLD_SIZE and LOCAL_RANK; a plain launch has none of them."""
    try:
        return Dist(
            int(os.environ.get("RANK", "0")),
            int(os.environ.get("WORLD_SIZE", "1")),
            int(os.environ.get("LOCAL_RANK", "0")),
        )
    except ValueError as exc:
        raise TrainingError(f"bad RANK/WORLD_SIZE/LOCAL_RANK in the environment ({exc})") from exc


def resolve_device(name: str, d: Dist) -> torch.device:
    """``train.device`` for this process (:func:`vfxmatte.devices.select_training_device`)."""
    try:
        return select_training_device(name, d.local_rank if d.enabled else None)
    except DeviceError as exc:
        raise TrainingError(f"train.device: {exc}") from exc


def amp_mode(amp: str, device: torch.device) -> NumericMode:
    """``train.amp`` on ``device`` (:func:`vfxmatte.devices.resolve_amp`): fp32 weights with
    the mode's autocast, if any."""
    try:
        return resolve_amp(device, amp)
    except DeviceError as exc:
        raise TrainingError(f"train.amp: {exc}") from exc


# --------------------------------------------------------------------------------------------
# state files


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": {
            "kind": str(np_state[0]),
            "key": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "gauss": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _to_tuple(x: Any) -> Any:
    return tuple(_to_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(_to_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)


def _cpu(obj: Any) -> Any:
    """Copy every tensor of a nested structure to the CPU (state files load anywhere)."""
    if isinstance(obj, Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj


#: Reference to a tensor in the JSON document of a state file.
_TENSOR_REF = "__tensor__"
#: Tensor name prefix of each top-level entry of a state (others use their own key).
_PREFIX = {"optimizer": "optim"}
#: Metadata keys of a state file: the format tag and the JSON document.
_META_FORMAT, _META_STATE = "vfxmatte.format", "vfxmatte.train_state"


def _pack(obj: Any, name: str, tensors: dict[str, Tensor], seen: set[int]) -> Any:
    """``obj`` as a JSON value; each tensor moves to ``tensors[name]`` and leaves a reference.

    Tuples become lists (the loader restores the ones it needs); dict keys become strings.
    """
    if isinstance(obj, Tensor):
        if name in tensors:
            raise TrainingError(f"training state: two tensors named '{name}'")
        t = obj.detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr() if t.numel() else None
        if ptr is not None and ptr in seen:  # safetensors refuses shared storage
            t = t.clone()
        elif ptr is not None:
            seen.add(ptr)
        tensors[name] = t
        return {_TENSOR_REF: name}
    if isinstance(obj, dict):
        return {str(k): _pack(v, f"{name}.{k}", tensors, seen) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_pack(v, f"{name}.{i}", tensors, seen) for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        return _pack(torch.from_numpy(np.ascontiguousarray(obj)), name, tensors, seen)
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TrainingError(f"training state: '{name}' is a {type(obj).__name__}, not storable without pickle")


def _unpack(obj: Any, tensors: dict[str, Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_TENSOR_REF}:
            return tensors[obj[_TENSOR_REF]]  # KeyError: the file lacks a referenced tensor
        return {k: _unpack(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unpack(v, tensors) for v in obj]
    return obj


def _encode_state(state: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, str]]:
    """A training state as safetensors tensors plus string metadata (one JSON document)."""
    tensors: dict[str, Tensor] = {}
    seen: set[int] = set()
    doc: dict[str, Any] = {}
    for key, value in state.items():
        if key == "path":  # where it was read from, not part of the state
            continue
        if key == "scheduler" and isinstance(value, dict):
            # LambdaLR's lr_lambdas are functions (None in its state_dict): the loop rebuilds them.
            value = {k: v for k, v in value.items() if k != "lr_lambdas"}
        doc[key] = _pack(value, _PREFIX.get(key, key), tensors, seen)
    doc["format"] = STATE_FORMAT
    try:
        text = json.dumps(doc)
    except (TypeError, ValueError) as exc:
        raise TrainingError(f"training state: not JSON-serialisable ({exc})") from exc
    return tensors, {_META_FORMAT: STATE_FORMAT, _META_STATE: text}


def _decode_state(doc: dict[str, Any], tensors: dict[str, Tensor]) -> dict[str, Any]:
    """Inverse of :func:`_encode_state`: the state dict the loop saved."""
    state = _unpack(doc, tensors)
    opt = state.get("optimizer")
    if isinstance(opt, dict):
        opt["state"] = {int(k): v for k, v in opt.get("state", {}).items()}
        for group in opt.get("param_groups", []):
            if isinstance(group.get("betas"), list):
                group["betas"] = tuple(group["betas"])
    sched = state.get("scheduler")
    if isinstance(sched, dict) and "lr_lambdas" not in sched:
        sched["lr_lambdas"] = [None] * len(sched.get("base_lrs", []))
    rng = state.get("rng")
    if isinstance(rng, dict) and "python" in rng:
        rng["python"] = _to_tuple(rng["python"])
    return state


def save_state(state: dict[str, Any], path: Path) -> Path:
    """Write a training state atomically as one ``.safetensors`` file.

    Tensors (anywhere in ``state``) are stored as safetensors tensors named by their path
    (``model.<name>``, ``optim.state.<param>.<name>``, ``rng.torch``, ...); the rest, which
    must be plain JSON-able values, is one JSON document in the metadata. Nothing is pickled.
    The file goes through :func:`vfxmatte.io.atomic.atomic_write`: a failed write leaves the
    previous state file as it was.

    Raises:
        TrainingError: the state is not serialisable or the file cannot be written (any
            failure of the writer, an OSError or a safetensors refusal), naming the file.
    """
    from safetensors.torch import save_file

    tensors, meta = _encode_state(state)
    with atomic_write(path, error=TrainingError, what="training state") as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return path


def load_training_state(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a state file (or a run directory's latest one) without unpickling anything."""
    from safetensors import safe_open

    p = Path(path)
    if p.is_dir():
        found = latest_state(p)
        if found is None:
            raise TrainingError(f"{p}: no training state found (looked in {p / STATES_DIR})")
        p = found
    if not p.is_file():
        raise TrainingError(f"{p}: training state not found")
    try:
        with safe_open(str(p), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad state file
        hint = " (pickled .pt states are no longer read)" if p.suffix == ".pt" else ""
        raise TrainingError(f"{p}: not a readable safetensors training state{hint} ({exc})") from exc
    if meta.get(_META_FORMAT) != STATE_FORMAT or _META_STATE not in meta:
        raise TrainingError(f"{p}: not a vfxmatte training state (format {STATE_FORMAT!r} expected)")
    try:
        doc = json.loads(meta[_META_STATE])
        if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
            raise ValueError("the state document is not a vfxmatte training state")
        state = _decode_state(doc, tensors)
    except KeyError as exc:
        raise TrainingError(f"{p}: corrupt training state (missing tensor {exc.args[0]!r})") from exc
    except (ValueError, TypeError, AttributeError) as exc:
        raise TrainingError(f"{p}: corrupt training state metadata ({exc})") from exc
    state["path"] = str(p)
    return state


#: What a compact state leaves out of a training state: the Adam moments (twice the weights'
#: size) and the GradScaler's state. The weight average, if any, it keeps in fp16 (the
#: precision an export has; the average's rounding decays away as training goes on).
COMPACT_DROPS = ("optimizer", "scaler")


def compact_state(state: str | os.PathLike[str], path: str | os.PathLike[str]) -> Path:
    """Write the compact resume state of a training state file (or a run directory's latest).

    Everything of the state except :data:`COMPACT_DROPS`: fp32 weights, the weight average in
    fp16 (if the run keeps one), step, schedule, RNG states, stream position (from the step),
    config and lineage, in the state format (a third of the full state's size, or 3/8 with an
    average: small enough for git). :func:`train` resumes from it with a
    fresh Adam whose lr ramps up again over ``train.rewarm_steps`` steps; the data stream
    continues at the next micro-batch as after a full resume.
    """
    st = load_training_state(state)
    source = st.pop("path")
    for key in COMPACT_DROPS:
        st[key] = None
    if st.get("ema"):
        st["ema"]["model"] = {k: v.half() if v.is_floating_point() else v for k, v in st["ema"]["model"].items()}
    st["compact"] = {"from": Path(source).name, "dropped": list(COMPACT_DROPS)}
    return save_state(st, Path(path))


def list_states(out_dir: Path) -> list[Path]:
    """State files in ``out_dir/states``, oldest step first."""
    d = Path(out_dir) / STATES_DIR
    if not d.is_dir():
        return []

    def step_of(p: Path) -> int:
        try:
            return int(p.stem.split("_")[-1])
        except ValueError:
            return -1

    return sorted((p for p in d.glob(f"state_*{STATE_SUFFIX}") if step_of(p) >= 0), key=step_of)


def latest_state(out_dir: Path) -> Optional[Path]:
    states = list_states(out_dir)
    return states[-1] if states else None


def check_init_checkpoint(name: str, sha256: str) -> Path:
    """The ``init_checkpoint`` file, after checking it is the one the config pins.

    Raises:
        CheckpointError: the file is missing, or its sha256 is not ``sha256``; the message
            names the file, the key and both hashes.
    """
    from vfxmatte.checkpoint import file_sha256, resolve

    path = resolve(name)
    actual = file_sha256(path)
    if actual != sha256.lower():
        raise CheckpointError(
            f"{path}: init_checkpoint_sha256: the config pins {sha256.lower()}, the file's sha256 is {actual}"
        )
    return path


def _init_record(name: str, ckpt: Any) -> dict[str, Any]:
    """What a run was warm-started from: the checkpoint's name, hash and its own provenance, so
    an export carries its whole training lineage (e.g. GPU chunks, then a CPU fine-tune)."""
    return {"checkpoint": str(name), "sha256": ckpt.sha256, "provenance": ckpt.provenance}


#: Which weights of a training state an export writes: ``auto`` the weight average where the
#: state has one (``train.ema_decay``), else the trained weights; ``ema`` / ``raw`` either.
EXPORT_WEIGHTS = ("auto", "ema", "raw")


def export_inference_checkpoint(
    state: dict[str, Any] | str | os.PathLike[str],
    path: str | os.PathLike[str],
    weights: str = "auto",
) -> Path:
    """Write the fp16 inference checkpoint of a training state (a dict or a state file/run dir).

    The checkpoint carries its architecture and a provenance record: the training config,
    steps, wall time, data description, device, vfxmatte version and which weights it holds
    (``weights``: :data:`EXPORT_WEIGHTS`).

    Raises:
        TrainingError: the state is unreadable or lacks a key, or ``weights="ema"`` and the
            state has no weight average.
    """
    if weights not in EXPORT_WEIGHTS:
        raise TrainingError(f"weights must be one of {', '.join(EXPORT_WEIGHTS)}, got {weights!r}")
    if not isinstance(state, dict):
        state = load_training_state(state)
    source = str(state.get("path", "training state"))
    ema = state.get("ema")
    if weights == "ema" and not ema:
        raise TrainingError(f"{source}: has no weight average (train.ema_decay was off); export --weights raw")
    use_ema = bool(ema) and weights != "raw"
    try:
        arch = TCPMattingConfig.from_dict(state["arch"], source="training state")
        model = build_model(arch)
        load_state(model, ema["model"] if use_ema else state["model"], source=source)
    except KeyError as exc:
        raise TrainingError(f"training state lacks '{exc.args[0]}'") from exc
    provenance = {
        "trainer": "vfxmatte training (training.train)",
        "config": state.get("config", {}),
        "steps": int(state["step"]),
        "total_steps": int(state.get("total_steps", 0)),
        "epoch": int(state.get("epoch", 0)),
        "wall_time_s": round(float(state.get("wall_time", 0.0)), 1),
        "data": state.get("data", ""),
        "device": state.get("device", ""),
        "world_size": int(state.get("world_size", 1)),
        "vfxmatte_version": vfxmatte.__version__,
        "trained_with_version": state.get("vfxmatte_version", ""),
        "last_val": state.get("last_val", {}),
        "weights": (f"exponential moving average (decay {ema['decay']}, since step {ema['since']})"
                    if use_ema else "trained"),
    }
    if state.get("init"):
        provenance["initialised_from"] = state["init"]
    try:
        return save_checkpoint(path, model, provenance, half=True)
    except CheckpointError as exc:
        raise TrainingError(str(exc)) from exc


# --------------------------------------------------------------------------------------------
# validation


def _metrics_fn() -> Optional[Callable[..., dict]]:
    try:
        from vfxmatte.metrics import evaluate
    except ImportError:
        return None
    return evaluate


def _trimap_canonical(onehot: Tensor) -> np.ndarray:
    """One-hot (bg, unknown, fg) [3, H, W] -> canonical float trimap [H, W] (0, 0.5, 1)."""
    idx = onehot.argmax(dim=0).float() * 0.5
    return idx.numpy().astype(np.float32)


@torch.no_grad()
def validate(
    model: TCPMatting,
    samples: Sequence[dict[str, Tensor]],
    cfg: TrainConfig,
    device: torch.device,
    numeric: NumericMode = FP32,
    batch_size: int = 8,
    tta: str = "none",
) -> dict[str, Any]:
    """Loss and matting metrics on the fixed validation samples, plus TCP diagnostics.

    The network runs through the engine's :class:`vfxmatte.engine.Predictor`, as users run it:
    batch norm folded into a copy (``model`` itself, and its train/eval modes, are left as they
    are), weights and inputs in ``numeric``'s dtype under its autocast, channels_last, and
    ``tta`` (``"flip"``: the mean of the alpha and the mirrored input's alpha mirrored back).
    The metrics score the matte users get, the trimap's known pixels copied over the
    prediction as :meth:`vfxmatte.engine.MattingSession.matte` does; the loss is over the
    unknown region, where it is defined (paper §3.3).

    ``sp_std`` / ``tcp_std``: standard deviation of each path's logit over the unknown region;
    with ``w_c`` (of the network as run) they show whether the TCP carries any of the
    prediction (of the plain view).
    """
    if tta not in TTA_MODES:
        raise TrainingError(f"tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")

    predictor = Predictor(model, device, numeric, tta=tta)
    evaluate = _metrics_fn()
    totals: dict[str, float] = {}
    counts: dict[str, int] = {}
    sp_vals, tcp_vals = [], []
    loss_sum = alpha_sum = bg_sum = grad_sum = 0.0
    n_batches = 0
    for start in range(0, len(samples), batch_size):
        chunk = samples[start : start + batch_size]
        batch = {k: torch.stack([s[k] for s in chunk]) for k in ("image", "trimap_sp", "alpha")}
        trimap = batch["trimap_sp"].to(device)
        gt = batch["alpha"].to(device)
        pred, out = predictor.with_paths(batch["image"], trimap)  # [B, 1, H, W] float32
        terms = matting_loss(
            pred, gt, trimap,
            alpha_weight=cfg.loss.alpha_weight, bg_weight=cfg.loss.bg_weight,
            theta=cfg.loss.theta, eps=cfg.loss.eps, grad_weight=cfg.loss.grad_weight,
        )
        loss_sum += float(terms.total)
        alpha_sum += float(terms.alpha)
        bg_sum += float(terms.bg)
        grad_sum += float(terms.grad)
        n_batches += 1
        unknown = unknown_mask(trimap)
        sp_vals.append(out.sp_logit.float()[unknown].cpu())
        tcp_vals.append(out.tcp_logit.float()[unknown].cpu())
        if evaluate is not None:
            pred_np = pred.cpu().numpy()
            gt_np = gt.float().cpu().numpy()
            tri_cpu = batch["trimap_sp"]
            for i in range(pred_np.shape[0]):
                tri = _trimap_canonical(tri_cpu[i])
                m = evaluate(composite_known(pred_np[i, 0], tri), gt_np[i, 0], tri)
                for k, v in m.items():
                    if isinstance(v, (int, float)) and math.isfinite(float(v)):
                        totals[k] = totals.get(k, 0.0) + float(v)
                        counts[k] = counts.get(k, 0) + 1
    result: dict[str, Any] = {
        "loss": loss_sum / max(1, n_batches),
        "loss_alpha": alpha_sum / max(1, n_batches),
        "loss_bg": bg_sum / max(1, n_batches),
        **({"loss_grad": grad_sum / max(1, n_batches)} if cfg.loss.grad_weight else {}),
    }
    result.update({k: totals[k] / counts[k] for k in totals})
    sp = torch.cat(sp_vals) if sp_vals else torch.zeros(0)
    tcp = torch.cat(tcp_vals) if tcp_vals else torch.zeros(0)
    result["w_c"] = float(predictor.model.w_c.detach().float())
    result["sp_std"] = float(sp.std()) if sp.numel() > 1 else 0.0
    result["tcp_std"] = float(tcp.std()) if tcp.numel() > 1 else 0.0
    result["tcp_sp_std_ratio"] = result["tcp_std"] / result["sp_std"] if result["sp_std"] > 0 else 0.0
    return result


def validate_all(
    model: TCPMatting,
    val: Sequence[dict[str, Tensor]],
    protocols: dict[str, Sequence[dict[str, Tensor]]],
    cfg: TrainConfig,
    device: torch.device,
    numeric: NumericMode = FP32,
    tta: str = "none",
) -> dict[str, Any]:
    """:func:`validate` on the main held-out set, plus each protocol's metrics as ``<protocol>.<metric>``."""
    res = validate(model, val, cfg, device, numeric, cfg.train.batch_size, tta=tta)
    for name, samples in protocols.items():
        res.update(_protocol_metrics(name, validate(model, samples, cfg, device, numeric, cfg.train.batch_size, tta=tta)))
    return res


def validate_checkpoints(
    cfg: TrainConfig,
    checkpoints: Sequence[str | os.PathLike[str]],
    device: str = "cpu",
    tta: str = "none",
    precision: str = "fp32",
) -> list[dict[str, Any]]:
    """Score inference checkpoints on the config's held-out validation composites.

    The same samples, loss and metrics as the periodic validation of :func:`train` (so numbers
    compare with a run's ``val`` log lines at the same ``data.val_*`` settings): the way to pick
    between checkpoints without touching benchmark data. Each result adds ``checkpoint``.
    The network runs as the engine runs it (:func:`validate`); ``precision="bf16"`` runs it
    as the engine does on CPUs with native bf16 (:data:`vfxmatte.devices.BF16`: weights and
    inputs in bf16, alpha formed in float32); results then add ``precision``.

    Each of ``data.val_protocols`` adds its metrics as ``<protocol>.<metric>``.

    Raises:
        CheckpointError: a checkpoint is missing, unreadable or not of the config's architecture.
        DeviceError: ``device`` is not available here.
        TrainingError: the config describes no validation data.
    """
    from vfxmatte.checkpoint import load_model
    from vfxmatte.devices import select_device

    if precision not in ("fp32", "bf16"):
        raise TrainingError(f"precision must be fp32 or bf16, got {precision!r}")
    if cfg.data.val_samples <= 0:
        raise TrainingError("data.val_samples: 0 (nothing to validate on)")
    arch = cfg.architecture()
    models = [(str(c), load_model(c, expect=arch)[0]) for c in checkpoints]  # fail before data
    _, val = build_datasets(cfg)
    protocols = build_protocol_sets(cfg)
    dev = select_device(device)
    numeric = BF16 if precision == "bf16" else FP32
    out = []
    for name, model in models:
        res = validate_all(model.float(), val, protocols, cfg, dev, numeric, tta=tta)
        extra = {**({"tta": tta} if tta != "none" else {}), **({"precision": precision} if precision != "fp32" else {})}
        out.append({"checkpoint": name, **extra, **res})
    return out


def set_train_mode(model: nn.Module, freeze_norm_stats: bool = False) -> None:
    """``model.train()``, optionally with every batch norm left in eval mode (running statistics
    fixed and used for normalisation; affine parameters still receive gradients)."""
    model.train()
    if freeze_norm_stats:
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()


class PathLogits(nn.Module):
    """``forward`` = the network's ``forward_paths`` logits, for DDP / torch.compile to wrap.

    The loop turns the logits into alpha in float32 outside autocast: under bf16, alpha near 1
    would otherwise be quantised in steps of 1/256, coarser than the mattes' fine detail.
    """

    def __init__(self, net: TCPMatting) -> None:
        super().__init__()
        self.net = net

    def forward(self, image: Tensor, trimap: Tensor, tcp_trimap: Tensor) -> tuple[Tensor, Tensor]:
        out = self.net.forward_paths(image, trimap, tcp_trimap)
        return out.sp_logit, out.tcp_logit


class WeightAverage:
    """The exponential moving average of a network's weights (``train.ema_decay``).

    Invariant: after :meth:`update` at step ``s``, every floating tensor of :attr:`model` is
    ``decay * previous + (1 - decay) * weights`` (in float32), and every integer buffer (batch
    norm's step counters) equals the network's; at :attr:`since` the average was the weights.
    :attr:`model` is a copy that never trains (eval mode, no gradients).
    """

    def __init__(self, model: nn.Module, decay: float, since: int, saved: Optional[dict[str, Any]] = None,
                 source: str = "training state") -> None:
        self.decay = float(decay)
        self.model = copy.deepcopy(model).requires_grad_(False).eval()
        self.since = int(since)
        if saved is not None:
            try:
                load_state(self.model, saved["model"], source=f"{source} (ema)")
                self.since = int(saved["since"])
            except (CheckpointError, KeyError, TypeError) as exc:
                raise TrainingError(f"{source}: unreadable weight average ({exc})") from exc

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for avg, now in zip(self.model.state_dict().values(), model.state_dict().values()):
            if avg.is_floating_point():
                avg.lerp_(now, 1.0 - self.decay)
            else:
                avg.copy_(now)

    def state(self) -> dict[str, Any]:
        return {"decay": self.decay, "since": self.since, "model": _cpu(self.model.state_dict())}


# --------------------------------------------------------------------------------------------
# the loop


class _JsonLog:
    def __init__(self, path: Optional[Path]) -> None:
        self._f = open(path, "a", encoding="utf-8") if path is not None else None

    def write(self, record: dict[str, Any]) -> None:
        if self._f is not None:
            self._f.write(json.dumps(record, sort_keys=True) + "\n")
            self._f.flush()

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


def _find_resume(cfg: TrainConfig, out_dir: Path) -> Optional[Path]:
    mode = cfg.train.resume
    if mode == "auto":
        found = latest_state(out_dir)
        fallback = cfg.train.fallback_state
        if found is None and fallback and Path(fallback).expanduser().is_file():
            return Path(fallback).expanduser()
        return found
    if mode == "never":
        existing = latest_state(out_dir)
        if existing is not None:
            raise TrainingError(
                f"{out_dir}: already holds training state {existing.name} and train.resume is 'never' "
                "(use another out_dir or resume: auto)"
            )
        return None
    p = Path(mode).expanduser()
    if not p.exists():
        raise TrainingError(f"train.resume: {p} not found")
    return latest_state(p) if p.is_dir() else p


def train(
    cfg: TrainConfig,
    progress: Optional[ProgressFn] = None,
    *,
    train_set: Any = None,
    val_set: Optional[Sequence[dict[str, Tensor]]] = None,
    protocol_sets: Optional[dict[str, Sequence[dict[str, Tensor]]]] = None,
    should_stop: Optional[Callable[[], bool]] = None,
) -> TrainResult:
    """Train (or continue training) the network a config describes.

    Args:
        cfg: validated config (see :mod:`training.config`).
        progress: called with a :class:`TrainEvent` on start, every ``log_every`` steps, after
            validation and checkpoints, and at the end.
        train_set / val_set: override the data sets the config describes (tests). The training
            set needs ``__len__``, ``__getitem__`` returning a dict of tensors ``image``,
            ``trimap_sp``, ``trimap_tcp``, ``alpha``, and optionally ``set_epoch``.
        protocol_sets: override the sets of ``data.val_protocols`` (tests; ``{}``: none).
        should_stop: polled after every step; True stops cleanly like the time limit (the CLI
            wires SIGTERM/SIGINT to it).

    Returns:
        A :class:`TrainResult`; ``reason`` tells whether all steps ran.
    """
    t_start = time.monotonic()
    dd = dist_from_env()
    # Under DDP only rank 0 reports and writes files; the others train in step.
    report = progress if (progress is not None and dd.main) else (lambda e: None)
    device = resolve_device(cfg.train.device, dd)
    if dd.enabled and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    loader_iter = None
    log = _JsonLog(None)
    threads_before = torch.get_num_threads()
    try:
        out_dir = Path(cfg.train.out_dir)
        resume_from = _find_resume(cfg, out_dir)
        if cfg.init_checkpoint and cfg.init_checkpoint_sha256 and resume_from is None:
            check_init_checkpoint(cfg.init_checkpoint, cfg.init_checkpoint_sha256)  # before any file is written
        if dd.main:
            out_dir.mkdir(parents=True, exist_ok=True)
            log = _JsonLog(out_dir / METRICS_LOG)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        amp = amp_mode(cfg.train.amp, device)
        amp_dtype = amp.autocast
        channels_last = cfg.train.channels_last == "on" or (
            cfg.train.channels_last == "auto" and device.type == "cuda"
        )

        # Same seed on every rank: identical initial weights (DDP also broadcasts rank 0's).
        seed = cfg.train.seed
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        arch = cfg.architecture()
        model = build_model(arch)
        if cfg.encoder_init and resume_from is None:
            from vfxmatte.model import load_torchvision_weights, read_torchvision_file

            try:
                load_torchvision_weights(model.semantic.encoder, read_torchvision_file(cfg.encoder_init))
            except CheckpointError as exc:
                raise TrainingError(f"encoder_init: {exc}") from exc
        init_record: dict[str, Any] = {}  # lineage: what the weights were initialised from
        if cfg.init_checkpoint and resume_from is None:
            from vfxmatte.checkpoint import load_model

            from vfxmatte.model.config import SHAPE_FREE_FIELDS

            try:  # fields that change no tensor (e.g. the name) may differ: same weights
                init, init_ckpt = load_model(cfg.init_checkpoint, expect=arch, ignore=SHAPE_FREE_FIELDS)
            except CheckpointError as exc:
                raise TrainingError(f"init_checkpoint: {exc}") from exc
            model.load_state_dict(init.state_dict())
            init_record = _init_record(cfg.init_checkpoint, init_ckpt)
        model.to(device)
        if channels_last:
            model.to(memory_format=torch.channels_last)

        total = cfg.train.steps
        optimizer = torch.optim.Adam(
            model.parameters(), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas), weight_decay=cfg.optim.weight_decay
        )
        min_ratio = cfg.optim.min_lr / cfg.optim.lr
        warmup = cfg.optim.warmup_steps
        # After a compact state (no Adam moments) the lr ramps up again from its step: from 0 to
        # rewarm steps later the factor goes 1/steps .. 1 (empty: no re-warm-up).
        rewarm: dict[str, int] = {}

        def lr_at(s: int) -> float:
            f = lr_factor(s, total, warmup, min_ratio)
            if rewarm and s >= rewarm["from"]:
                f *= min(1.0, (s - rewarm["from"] + 1) / rewarm["steps"])
            return f

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
        scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)

        step = 0
        wall_before = 0.0
        last_val: dict[str, Any] = {}
        saved_ema: Optional[dict[str, Any]] = None
        if resume_from is not None:
            state = load_training_state(resume_from)
            try:
                load_state(model, state["model"], source=str(resume_from))
            except CheckpointError as exc:
                raise TrainingError(f"{resume_from}: cannot resume with this model config ({exc})") from exc
            step = int(state["step"])
            rewarm.update(state.get("rewarm") or {})
            if state.get("optimizer") is None:  # a compact state: a fresh Adam, re-warmed
                rewarm.update({"from": step, "steps": cfg.train.rewarm_steps})
            else:
                optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if state.get("optimizer") is None:
                for group, base in zip(optimizer.param_groups, scheduler.base_lrs):
                    group["lr"] = base * lr_at(step)
                scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]
            if scaler.is_enabled() and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            wall_before = float(state.get("wall_time", 0.0))
            last_val = dict(state.get("last_val", {}))
            init_record = dict(state.get("init", {}))
            _set_rng_state(state["rng"])
            saved_ema = state.get("ema")
            del state

        # The average continues from the state's, or starts here from the weights (a resume of a
        # state saved without one included). Off: a state's average is dropped.
        ema = (WeightAverage(model, cfg.train.ema_decay, step, saved_ema, source=str(resume_from))
               if cfg.train.ema_decay is not None else None)

        # Multi-GPU: synced batch norm (paper §4.1 puts it in the TCP; we convert the whole
        # network so the Semantic Path's statistics also see the global batch).
        train_module: nn.Module = PathLogits(model)
        if dd.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            if device.type == "cuda":
                train_module = nn.SyncBatchNorm.convert_sync_batchnorm(train_module)
            train_module = DDP(
                train_module, device_ids=[device.index] if device.type == "cuda" else None
            )
        if cfg.train.compile:
            train_module = torch.compile(train_module)

        # Data.
        if train_set is None or val_set is None:
            built_train, built_val = build_datasets(cfg)
            train_set = built_train if train_set is None else train_set
            val_set = built_val if val_set is None else val_set
        if protocol_sets is None:
            protocol_sets = build_protocol_sets(cfg) if dd.main else {}
        accum = cfg.train.grad_accum
        stream = BatchStream(len(train_set), cfg.train.batch_size, dd.rank, dd.world, start=step * accum)
        workers = cfg.data.workers
        loader = DataLoader(
            EpochIndexed(train_set),
            batch_sampler=stream,
            num_workers=workers,
            pin_memory=device.type == "cuda",
            persistent_workers=workers > 0,
            prefetch_factor=cfg.data.prefetch_factor if workers > 0 else None,
            worker_init_fn=_worker_init if workers > 0 else None,
            collate_fn=collate_training_batch,
            multiprocessing_context=cfg.data.start_method if workers > 0 else None,
            generator=torch.Generator().manual_seed(seed),
        )
        loader_iter = iter(loader)

        def state_dict_now() -> dict[str, Any]:
            return {
                "format": STATE_FORMAT,
                "model": _cpu(model.state_dict()),
                "optimizer": _cpu(optimizer.state_dict()),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler.is_enabled() else {},
                "step": step,
                "total_steps": total,
                "epoch": stream.epoch_of(step * accum),
                "micro_batches": step * accum,
                "wall_time": wall_before + (time.monotonic() - t_start),
                "rng": _rng_state(),
                "config": cfg.to_dict(),
                "arch": arch.to_dict(),
                "data": describe_data(cfg),
                "device": describe_device(device),
                "world_size": dd.world,
                "vfxmatte_version": vfxmatte.__version__,
                "last_val": last_val,
                "init": init_record,
                "rewarm": dict(rewarm),
                "ema": ema.state() if ema is not None else None,
            }

        def checkpoint() -> tuple[Optional[Path], Optional[Path]]:
            if not dd.main:
                _barrier(dd)
                return None, None
            st = state_dict_now()
            sp = save_state(st, out_dir / STATES_DIR / f"state_{step:08d}{STATE_SUFFIX}")
            for old in list_states(out_dir)[: -cfg.train.keep_states]:
                old.unlink(missing_ok=True)
            ep = export_inference_checkpoint(st, out_dir / EXPORT_NAME)
            log.write({"kind": "checkpoint", "step": step, "state": str(sp), "export": str(ep)})
            report(TrainEvent("checkpoint", step, total, {"state": str(sp), "export": str(ep)}))
            _barrier(dd)
            return sp, ep

        def run_validation() -> dict[str, Any]:
            if dd.main and val_set:
                res = validate_all(model, val_set, protocol_sets, cfg, device, amp)
                if ema is not None:
                    averaged = validate_all(ema.model, val_set, protocol_sets, cfg, device, amp)
                    res.update({f"{EMA_PREFIX}{k}": v for k, v in averaged.items()})
                res["step"] = step
                log.write({"kind": "val", **res})
                report(TrainEvent("val", step, total, res))
                _barrier(dd)
                return res
            _barrier(dd)
            return last_val

        report(TrainEvent("start", step, total, {
            "device": describe_device(device), "world_size": dd.world, "amp": str(amp_dtype).removeprefix("torch.") if amp_dtype else "off",
            "resumed_from": str(resume_from) if resume_from else None,
            "params": sum(p.numel() for p in model.parameters()), "out_dir": str(out_dir),
            "data": describe_data(cfg),
            **({"ema": {"decay": ema.decay, "since": ema.since}} if ema is not None else {}),
        }))
        log.write({"kind": "start", "step": step, "total": total, "resumed_from": str(resume_from) if resume_from else None})

        set_train_mode(model, cfg.train.freeze_norm_stats)
        limit_s = cfg.train.time_limit_minutes * 60.0 if cfg.train.time_limit_minutes else None
        reason = "done"
        window = {"loss": torch.zeros((), device=device), "alpha": torch.zeros((), device=device),
                  "bg": torch.zeros((), device=device), "grad": torch.zeros((), device=device)}
        window_steps = 0
        window_t0 = time.monotonic()
        data_wait = 0.0
        state_path = export_path = None
        saved_at = -1

        while step < total:
            for micro in range(accum):
                t0 = time.monotonic()
                batch = next(loader_iter)
                data_wait += time.monotonic() - t0
                image = batch["image"].to(device, non_blocking=True)
                tri_sp = batch["trimap_sp"].to(device, non_blocking=True).float()
                tri_tcp = batch["trimap_tcp"].to(device, non_blocking=True).float()
                gt = batch["alpha"].to(device, non_blocking=True)
                if channels_last:
                    image = image.contiguous(memory_format=torch.channels_last)
                    tri_sp = tri_sp.contiguous(memory_format=torch.channels_last)
                    tri_tcp = tri_tcp.contiguous(memory_format=torch.channels_last)
                sync = (
                    train_module.no_sync()
                    if dd.enabled and micro < accum - 1 and hasattr(train_module, "no_sync")
                    else contextlib.nullcontext()
                )
                with sync:
                    with autocast(device, amp):
                        sp_logit, tcp_logit = train_module(image, tri_sp, tri_tcp)
                    pred = alpha_from_logits(sp_logit.float(), tcp_logit.float())  # [B, 1, H, W]
                    terms = matting_loss(
                        pred, gt, tri_sp,
                        alpha_weight=cfg.loss.alpha_weight, bg_weight=cfg.loss.bg_weight,
                        theta=cfg.loss.theta, eps=cfg.loss.eps, grad_weight=cfg.loss.grad_weight,
                    )
                    scaler.scale(terms.total / accum).backward()
                window["loss"] += terms.total.detach() / accum
                window["alpha"] += terms.alpha.detach() / accum
                window["bg"] += terms.bg.detach() / accum
                window["grad"] += terms.grad.detach() / accum
            if cfg.optim.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            step += 1
            window_steps += 1
            if ema is not None:
                ema.update(model)

            if step % cfg.train.log_every == 0 or step == total:
                if dd.enabled:  # the logged loss is the mean over all ranks' samples
                    packed = torch.stack(list(window.values()))
                    dist.all_reduce(packed)
                    for v, r in zip(window.values(), packed / dd.world):
                        v.copy_(r)
                vals = {k: float(v) / window_steps for k, v in window.items()}
                if not math.isfinite(vals["loss"]) and amp_dtype != torch.float16:
                    raise TrainingError(f"loss became {vals['loss']} at step {step} (try a lower optim.lr)")
                dt = time.monotonic() - window_t0
                rec = {
                    "step": step, "loss": vals["loss"], "loss_alpha": vals["alpha"], "loss_bg": vals["bg"],
                    **({"loss_grad": vals["grad"]} if cfg.loss.grad_weight else {}),
                    "lr": scheduler.get_last_lr()[0], "w_c": float(model.w_c.detach()),
                    "step_time_s": dt / window_steps, "data_wait_s": data_wait / window_steps,
                    "samples_per_s": window_steps * accum * cfg.train.batch_size * dd.world / max(dt, 1e-9),
                    "elapsed_s": time.monotonic() - t_start,
                }
                if scaler.is_enabled():
                    rec["grad_scale"] = float(scaler.get_scale())
                log.write({"kind": "train", **rec})
                report(TrainEvent("step", step, total, rec))
                for v in window.values():
                    v.zero_()
                window_steps, data_wait, window_t0 = 0, 0.0, time.monotonic()

            if step % cfg.train.val_every == 0 or step == total:
                last_val = run_validation()
            over_time = limit_s is not None and time.monotonic() - t_start >= limit_s
            stop_now = _any_rank(over_time or bool(should_stop and should_stop()), dd, device)
            if step % cfg.train.ckpt_every == 0 or step == total or stop_now:
                state_path, export_path = checkpoint()
                saved_at = step
            if stop_now and step < total:
                reason = "time_limit" if over_time else "stopped"
                break

        if saved_at != step:  # nothing ran (already finished) or the last save is stale
            state_path, export_path = checkpoint()
        wall = wall_before + (time.monotonic() - t_start)
        log.write({"kind": "end", "step": step, "reason": reason, "wall_time_s": wall})
        report(TrainEvent("end", step, total, {"reason": reason, "wall_time_s": wall,
                                               "state": str(state_path), "export": str(export_path)}))
        return TrainResult(step, total, reason, state_path, export_path, wall, last_val)
    finally:
        if loader_iter is not None:
            del loader_iter  # shuts the workers down
        log.close()
        torch.set_num_threads(threads_before)
        if dd.enabled and dist.is_initialized():
            dist.destroy_process_group()


def _barrier(dd: Dist) -> None:
    if dd.enabled:
        dist.barrier()


def _any_rank(flag: bool, dd: Dist, device: torch.device) -> bool:
    """True on every rank if it is True on any (all ranks must stop at the same step)."""
    if not dd.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def load_config_from_state(state: dict[str, Any]) -> TrainConfig:
    """The config a training state was made with."""
    return from_dict(state["config"], source=str(state.get("path", "training state")))
