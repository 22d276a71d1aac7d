"""Where the network runs and in what arithmetic: the one device and precision selector.

The engine (:class:`vfxmatte.engine.MattingSession`) and the training loop (``training.train``)
both pick their device and their numeric mode here, so inference and training mean the same
thing by ``cuda``, ``bf16`` or ``auto``.

- :func:`select_device`: inference devices (``auto`` prefers CUDA, then Apple Metal, then the
  CPU); :func:`select_training_device` adds the training rules (``auto`` never picks Metal; one
  GPU per process under DDP).
- :class:`NumericMode`: the dtype the weights and inputs are cast to, and the autocast dtype on
  top. :func:`resolve_precision` maps an inference ``precision`` to it, :func:`resolve_amp` a
  training ``amp`` setting; :func:`autocast` enters the mode's autocast.
"""

from __future__ import annotations

import contextlib
import functools
from dataclasses import dataclass
from typing import Literal

import torch

from vfxmatte.errors import DeviceError

__all__ = [
    "BF16",
    "FP32",
    "AmpMode",
    "DeviceName",
    "NumericMode",
    "Precision",
    "autocast",
    "cpu_has_native_bf16",
    "describe_device",
    "resolve_amp",
    "resolve_precision",
    "select_device",
    "select_training_device",
    "set_threads",
]

DeviceName = Literal["auto", "cpu", "cuda", "mps"] | str
#: Inference precision (``model.precision`` of a job, ``--precision`` of the CLI).
Precision = Literal["auto", "fp32", "fp16", "bf16"]
#: Training mixed precision (``train.amp`` of a training config).
AmpMode = Literal["auto", "fp16", "bf16", "off"]


# --------------------------------------------------------------------------- devices


def select_device(preference: DeviceName = "auto") -> torch.device:
    """Pick cuda, then mps, then cpu for "auto"; check that an explicit device exists.

    Raises:
        DeviceError: the device is not available here, or the name is not one of auto, cpu,
            cuda, cuda:N, mps.
    """
    pref = str(preference).lower()
    mps_ok = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_ok:
            return torch.device("mps")
        return torch.device("cpu")
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{preference}': CUDA is not available on this machine")
        return torch.device(pref)
    if pref == "mps":
        if not mps_ok:
            raise DeviceError("device 'mps': Apple Metal is not available on this machine")
        return torch.device("mps")
    if pref == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"device '{preference}': choose auto, cpu, cuda, cuda:N or mps")


def select_training_device(preference: DeviceName = "auto", local_rank: int | None = None) -> torch.device:
    """The device one training process runs on.

    ``auto`` is CUDA where available, else the CPU: training picks Apple Metal only when asked
    for ``mps``. A CUDA device always carries its index, so every process (and the state it
    saves) names one GPU: ``cuda`` alone is the current CUDA device, and under DDP
    (``local_rank`` given) every CUDA choice becomes the process's own GPU,
    ``cuda:<local_rank>``.

    Raises:
        DeviceError: as :func:`select_device`.
    """
    pref = str(preference).lower()
    if pref == "auto":
        pref = "cuda" if torch.cuda.is_available() else "cpu"
    device = select_device(pref)
    if device.type == "cuda" and (local_rank is not None or device.index is None):
        return torch.device("cuda", torch.cuda.current_device() if local_rank is None else local_rank)
    return device


def describe_device(device: torch.device) -> str:
    """The device for logs and provenance: ``cuda (<GPU model>)`` for a GPU, else its type."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


_BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True where the CPU has bf16 dot-product instructions (AVX512_BF16 or AMX-BF16).

    On them oneDNN runs bf16 convolutions faster than fp32; without them bf16 is emulated and
    far slower than fp32 (benchmarks/RESULTS.md). Read from ``/proc/cpuinfo`` (Linux);
    elsewhere False.
    """
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[-1].split())
                    return any(flag in flags for flag in _BF16_CPU_FLAGS)
    except OSError:
        pass
    return False


# --------------------------------------------------------------------------- numeric modes


@dataclass(frozen=True)
class NumericMode:
    """How the network's arithmetic runs on a device.

    ``dtype``: what the weights and inputs are cast to; ``autocast``: the autocast dtype on top,
    or None. Whatever the mode, the two paths' logits are summed into alpha in float32
    (:func:`vfxmatte.model.alpha_from_logits`).
    """

    name: str  # "fp32", "bf16" (bf16 weights), "fp16-autocast", "bf16-autocast"
    dtype: torch.dtype = torch.float32
    autocast: torch.dtype | None = None


#: Plain float32.
FP32 = NumericMode("fp32")
#: The whole network in bf16 (weights cast once, no autocast): CPUs with native bf16.
BF16 = NumericMode("bf16", torch.bfloat16)
_FP16_AUTOCAST = NumericMode("fp16-autocast", autocast=torch.float16)
_BF16_AUTOCAST = NumericMode("bf16-autocast", autocast=torch.bfloat16)


def resolve_precision(
    device: torch.device, preference: Precision = "auto", native_bf16: bool | None = None
) -> NumericMode:
    """The arithmetic an inference ``preference`` means on ``device``.

    GPUs get fp16 autocast by default (bf16 autocast on request). CPUs with native bf16
    instructions (:func:`cpu_has_native_bf16`; ``native_bf16`` overrides the check) run the
    whole network in bf16 by default (:data:`BF16`: faster, and its held-out scores stay close
    to fp32's, benchmarks/RESULTS.md). Other CPUs run fp32 and refuse bf16 (emulated, it is
    many times slower); fp16 is refused on every CPU. On a CPU the weights are cast once
    instead of autocasting every op.

    Raises:
        DeviceError: an unknown precision, or one this device cannot run at speed.
    """
    pref = str(preference).lower()
    if pref not in ("auto", "fp32", "fp16", "bf16"):
        raise DeviceError(f"precision '{preference}': choose auto, fp32, fp16 or bf16")
    if pref == "fp32":
        return FP32
    if device.type == "cpu":
        native = cpu_has_native_bf16() if native_bf16 is None else native_bf16
        if pref == "auto":
            return BF16 if native else FP32
        if pref == "bf16" and native:
            return BF16
        why = (
            "this CPU has no native bf16 instructions (AVX512_BF16 or AMX), so bf16 would run many times slower"
            if pref == "bf16"
            else "fp16 is many times slower than fp32 on CPUs"
        )
        raise DeviceError(f"precision '{preference}' on cpu: {why}; use fp32 or auto")
    if pref == "bf16":
        return _BF16_AUTOCAST
    return _FP16_AUTOCAST


def resolve_amp(device: torch.device, amp: AmpMode = "auto") -> NumericMode:
    """The training loop's mixed precision on ``device``: fp32 weights, autocast or not.

    ``off`` is plain fp32. Off CUDA, ``bf16`` autocasts in bf16, ``auto`` is fp32 and ``fp16``
    is refused. On CUDA, ``auto`` is bf16 autocast where the GPU supports bf16, else fp16
    autocast (which the loop pairs with a gradient scaler).

    Raises:
        DeviceError: fp16 off CUDA, bf16 on a GPU without bf16, or an unknown setting.
    """
    if amp not in ("auto", "fp16", "bf16", "off"):
        raise DeviceError(f"amp '{amp}': choose auto, fp16, bf16 or off")
    if amp == "off":
        return FP32
    if device.type != "cuda":
        if amp == "bf16":
            return _BF16_AUTOCAST
        if amp == "fp16":
            raise DeviceError("fp16 needs a CUDA device (use bf16 or off on CPU)")
        return FP32
    if amp == "fp16":
        return _FP16_AUTOCAST
    if amp == "bf16":
        if not torch.cuda.is_bf16_supported():
            raise DeviceError("bf16 is not supported by this GPU (use fp16 or auto)")
        return _BF16_AUTOCAST
    return _BF16_AUTOCAST if torch.cuda.is_bf16_supported() else _FP16_AUTOCAST


def autocast(device: torch.device, mode: NumericMode) -> contextlib.AbstractContextManager:
    """The mode's autocast on ``device``; a no-op context for modes without one."""
    if mode.autocast is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=mode.autocast)


def set_threads(count: int) -> None:
    """Give this process ``count`` CPU threads in torch (intra-op), OpenCV and OpenImageIO:
    how a farm task or a local worker keeps to its share of a machine.

    Raises:
        DeviceError: ``count`` is below 1.
    """
    if count < 1:
        raise DeviceError(f"thread count must be at least 1, got {count}")
    import cv2
    import OpenImageIO as oiio

    torch.set_num_threads(count)
    cv2.setNumThreads(count)
    oiio.attribute("threads", count)
