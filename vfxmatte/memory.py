"""Memory budget of inference: how large tiles and batches may be for a process to stay under it.

The engine's peak over what the process already holds is estimated as

    CONSTANT + FRAME_PIXEL_BYTES * frame pixels
             + (1 + BATCH_EXTRA * (batch - 1)) * tile pixels * tile_pixel_bytes(model)

where ``tile_pixel_bytes = PIXEL_BYTES + itemsize * (CHANNEL_BYTES + CHANNEL_SCALE * load)``,
``itemsize`` is the bytes of the network's dtype (4 fp32, 2 bf16/fp16) and ``load`` is
:func:`channel_load`, the feature channels per input pixel summed over the network's
resolution levels. The constants were fitted to the peak RSS of single mattes on the CPU with
the tiny and small (starter) networks, fp32 and bf16, dense (``benchmarks/bench_memory.py``,
``benchmarks/RESULTS.md``): dense inference is the estimate also for block-sparse sessions,
which fall back to it where the band is dense. :func:`fit_tiling` shrinks the batch first (the
alpha depends on it only to float rounding), then the tile edge in steps of the network stride down to
:data:`MIN_TILE`, until the estimate fits the budget less what the process holds
(:func:`held_bytes`).

The plan is a function of the budget, the frame size, the network and its dtype only, never of
the process's memory at the time: every frame of a shot gets the same tiles, in whatever chunk
or process it runs, so chunked and resumed runs stay byte-identical (memory freed by one frame
stays in the process's heap and is reused by the next).

On a GPU the activations live in device memory: the budget then bounds host memory only, with
the same (host-side) frame buffers and a conservative tile term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from vfxmatte.errors import MemoryBudgetError
from vfxmatte.tiling import DEFAULT_OVERLAP, padded_size, plan_tiles

if TYPE_CHECKING:
    from torch import nn

    from vfxmatte.jobs import Job
    from vfxmatte.model.config import TCPMattingConfig

__all__ = [
    "Budget",
    "HELD_PIXEL_BYTES",
    "MIN_TILE",
    "channel_load",
    "estimate_peak_bytes",
    "fit_tiling",
    "held_bytes",
    "job_budget",
    "job_held_pixel_bytes",
    "least_bytes",
    "temporal_pixel_bytes",
    "tile_pixel_bytes",
    "weight_bytes",
]

GIB = 2**30
#: Smallest tile a budget may shrink to: below it the network sees too little context for the
#: matte to stay within the tiling tests' bounds (tests/test_engine.py, 256 px with 64 overlap).
MIN_TILE = 256
#: Per-call allocations that do not scale with pixels (oneDNN scratch, allocator slack), bytes.
CONSTANT = 32 * 2**20
#: Frame-sized engine buffers per frame pixel beyond the caller's image and trimap: the clipped
#: image copy, the unknown mask, two float32 accumulators, the composited alpha (at least their
#: measured sum, benchmarks/RESULTS.md "Memory budget").
FRAME_PIXEL_BYTES = 32
#: Per tile pixel, whatever the dtype: crops, one-hot trimap, float32 inputs and alpha (the
#: fit, rounded up).
PIXEL_BYTES = 140
#: Per tile pixel and byte of dtype: a fixed part and one per unit of :func:`channel_load`
#: (the fit, rounded up).
CHANNEL_BYTES = 18
CHANNEL_SCALE = 1.16
#: Each tile past the first in a batch costs this many single tiles: more than a batch was
#: measured to add, so a batch is never planned larger than what fits.
BATCH_EXTRA = 1.5
#: A vfxmatte process before its first frame: Python, torch, OpenImageIO, OpenColorIO, OpenCV,
#: the CLI (its measured size; a larger install needs a larger budget).
PROCESS_BYTES = 320 * 2**20
#: What the caller holds per frame pixel while and just after a frame is matted (the pipeline:
#: the plate as read, its working RGB, the trimap, the alpha being written; at least the
#: measured).
HELD_PIXEL_BYTES = 80
#: What the temporal stage holds per frame pixel and neighbour (plates, raw mattes, trimaps and
#: flow of its window; at least the measured).
TEMPORAL_PIXEL_BYTES = 56
#: Share of the free budget the estimate may use: room for the fit's residuals.
HEADROOM = 0.85


def channel_load(config: TCPMattingConfig) -> float:
    """Feature channels per input pixel over the resolution levels: the input and TCP at full
    resolution, then encoder and decoder widths at strides 2 to 32 (each divided by the
    stride squared)."""
    enc, dec = config.encoder_widths, config.decoder_widths
    levels = [
        (1, config.in_channels + config.tcp_channels),
        (2, enc[0] + dec[3]),
        (4, enc[1] + dec[2]),
        (8, enc[2] + dec[1]),
        (16, enc[3] + dec[0]),
        (32, enc[4]),
    ]
    return sum(ch / (s * s) for s, ch in levels)


def tile_pixel_bytes(config: TCPMattingConfig, itemsize: int) -> float:
    """Estimated peak bytes per pixel of a tile in a batch."""
    return PIXEL_BYTES + itemsize * (CHANNEL_BYTES + CHANNEL_SCALE * channel_load(config))


def estimate_peak_bytes(
    config: TCPMattingConfig, height: int, width: int, tile: int, overlap: int, batch: int, itemsize: int, stride: int
) -> int:
    """Estimated peak growth of the process while one ``height`` x ``width`` frame is matted
    with these tiles (``tile = 0``: the whole frame), over its memory before the call."""
    tiles = plan_tiles(height, width, tile, overlap if tile else 0, stride)
    t = tiles[0]
    n = min(batch, len(tiles))
    per_batch = (1 + BATCH_EXTRA * (n - 1)) * t.h * t.w * tile_pixel_bytes(config, itemsize)
    frame = padded_size(height, stride) * padded_size(width, stride) * FRAME_PIXEL_BYTES
    return int(CONSTANT + frame + per_batch)


def held_bytes(weights: int, height: int, width: int, pixel_bytes: int = HELD_PIXEL_BYTES) -> int:
    """Estimated memory of a process matting a ``height`` x ``width`` frame outside the engine's
    own buffers, with ``weights`` bytes of network weights loaded and ``pixel_bytes`` per frame
    pixel held by the caller (:data:`HELD_PIXEL_BYTES`, plus :func:`temporal_pixel_bytes`)."""
    return PROCESS_BYTES + weights + pixel_bytes * height * width


def least_bytes(weights: int, pixel_bytes: int, config: "TCPMattingConfig", itemsize: int) -> int:
    """The least budget a process can matte in at all: a :data:`MIN_TILE` frame in one tile."""
    engine = estimate_peak_bytes(config, MIN_TILE, MIN_TILE, MIN_TILE, 0, 1, itemsize, config.stride)
    return int(held_bytes(weights, MIN_TILE, MIN_TILE, pixel_bytes) + engine / HEADROOM)


def temporal_pixel_bytes(radius: int) -> int:
    """What the temporal stage of ``radius`` neighbours a side holds per frame pixel."""
    return 2 * radius * TEMPORAL_PIXEL_BYTES


def _shrunk_overlap(tile: int, overlap: int, stride: int) -> int:
    # The job's overlap while it leaves a core; else 3/8 of the tile (96 at 256 px), on the stride.
    return overlap if overlap * 2 < tile else max(stride, (tile * 3 // 8) // stride * stride)


def fit_tiling(
    budget: int,
    used: int,
    config: TCPMattingConfig,
    height: int,
    width: int,
    tile: int,
    overlap: int,
    batch: int,
    itemsize: int,
    stride: int,
) -> tuple[int, int, int]:
    """``(tile, overlap, batch)`` for a frame within ``budget`` bytes when the process holds
    ``used`` bytes: the given ones where they fit, else batch 1, then smaller tiles.

    Raises:
        MemoryBudgetError: even :data:`MIN_TILE` tiles one at a time do not fit.
    """
    free = (budget - used) * HEADROOM

    def fits(t: int, o: int, b: int) -> bool:
        return estimate_peak_bytes(config, height, width, t, o, b, itemsize, stride) <= free

    if fits(tile, overlap, batch):
        return tile, overlap, batch
    for b in range(batch - 1, 0, -1):
        if fits(tile, overlap, b):
            return tile, overlap, b
    edge = max(padded_size(height, stride), padded_size(width, stride))
    start = min(tile or edge, edge - stride) // stride * stride
    for t in range(start, MIN_TILE - 1, -stride):
        o = _shrunk_overlap(t, overlap, stride)
        if fits(t, o, 1):
            return t, o, 1
    smallest = min(MIN_TILE, padded_size(max(height, width), stride))
    need = estimate_peak_bytes(config, height, width, smallest, _shrunk_overlap(smallest, overlap, stride), 1,
                               itemsize, stride) / HEADROOM
    raise MemoryBudgetError(
        f"model.memory_gb {budget / GIB:.2f}: a {width}x{height} frame needs about {(used + need) / GIB:.2f} GiB "
        f"even with {smallest} px tiles one at a time (the process holds about {used / GIB:.2f} GiB); raise the budget"
    )


def weight_bytes(model: "nn.Module") -> int:
    """Network weights a matting process holds for ``model``, the network as it runs (folded,
    in its dtype): the caller's network and the copy that runs, about twice its parameters."""
    return 2 * sum(p.numel() * p.element_size() for p in model.parameters())


def job_held_pixel_bytes(job: "Job") -> int:
    """What a pipeline running ``job`` holds per frame pixel beside the engine: the frame
    (:data:`HELD_PIXEL_BYTES`) and, with the temporal stage, its window."""
    t = job.temporal
    return HELD_PIXEL_BYTES + (temporal_pixel_bytes(t.radius) if t.enabled else 0)


@dataclass(frozen=True)
class Budget:
    """A process's memory budget for one network as it runs: what planning its tiles needs.

    One object for the session (:class:`vfxmatte.engine.MattingSession`) and for checks that
    load no weights (:func:`job_budget`), so both plan, and refuse, alike.
    """

    #: bytes the whole process may hold
    total: int
    #: network weights held (:func:`weight_bytes`)
    weights: int
    #: what the caller holds per frame pixel (:func:`job_held_pixel_bytes`)
    held_pixel_bytes: int
    config: "TCPMattingConfig"
    #: bytes of the dtype the network runs in
    itemsize: int

    def tiling(self, height: int, width: int, tile: int, overlap: int, batch: int) -> tuple[int, int, int]:
        """``(tile, overlap, batch)`` of a ``height`` x ``width`` frame (:func:`fit_tiling`; an
        untiled session that must tile overlaps its tiles by the default).

        Raises:
            MemoryBudgetError: even :data:`MIN_TILE` tiles one at a time do not fit.
        """
        held = held_bytes(self.weights, height, width, self.held_pixel_bytes)
        return fit_tiling(self.total, held, self.config, height, width, tile, overlap or DEFAULT_OVERLAP, batch,
                          self.itemsize, self.config.stride)

    def check_floor(self, tile: int, overlap: int, batch: int) -> None:
        """The process and one :data:`MIN_TILE` tile must fit at all.

        Raises:
            MemoryBudgetError: naming the key and the least budget.
        """
        try:
            self.tiling(MIN_TILE, MIN_TILE, tile, overlap, batch)
        except MemoryBudgetError:
            need = least_bytes(self.weights, self.held_pixel_bytes, self.config, self.itemsize)
            raise MemoryBudgetError(
                f"model.memory_gb {self.total / GIB:.2f}: the process with this network and one {MIN_TILE} px "
                f"tile needs about {need / GIB:.2f} GiB; raise the budget") from None


def job_budget(job: "Job", device: str | None = None) -> "tuple[Budget, tuple[int, int, int]] | None":
    """The budget of ``job``'s matting process (``model.memory_gb``) and the session's own
    ``(tile, overlap, batch)``, as :class:`~vfxmatte.engine.MattingSession` would have them on
    ``device`` (default the job's), from the checkpoint's header and the network built on
    PyTorch's meta device: no weights are read. None when the job sets no budget.

    Raises:
        CheckpointError, DeviceError: as loading the session would.
    """
    if job.model.memory_gb is None:
        return None
    import torch

    from vfxmatte.checkpoint import check_checkpoint
    from vfxmatte.devices import resolve_precision, select_device
    from vfxmatte.engine import default_batch_size
    from vfxmatte.model import build_model
    from vfxmatte.model.fuse import fold_batchnorm

    m = job.model
    config = check_checkpoint(m.checkpoint)
    dev = select_device(device or m.device)
    numeric = resolve_precision(dev, m.precision)
    with torch.device("meta"):
        net: Any = fold_batchnorm(build_model(config)).to(dtype=numeric.dtype)
    budget = Budget(int(m.memory_gb * GIB), weight_bytes(net), job_held_pixel_bytes(job), config,
                    numeric.dtype.itemsize)
    own = (m.tile_size, m.overlap if m.tile_size else 0, m.batch_size or default_batch_size(dev))
    return budget, own
