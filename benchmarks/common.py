"""Shared helpers for benchmark scripts: machine description and peak memory."""

from __future__ import annotations

import os
import platform
import resource


def machine_description() -> dict:
    """CPU model, core count, RAM, GPU (if any) and library versions of this machine."""
    import numpy
    import torch

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = None
    try:
        with open("/proc/meminfo") as f:
            mem_gib = round(int(f.readline().split()[1]) / 2**20, 1)
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "ram_gib": mem_gib,
        "gpu": gpu,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "native_bf16": _native_bf16(),
    }


def _native_bf16() -> bool | None:
    """Whether the CPU has bf16 dot-product instructions (the engine then runs bf16 on it)."""
    try:
        from vfxmatte.devices import cpu_has_native_bf16
    except ImportError:
        return None
    return cpu_has_native_bf16()


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far (VmHWM), in MiB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
