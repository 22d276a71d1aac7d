"""Device and precision selection (vfxmatte.devices), shared by the engine and the trainer."""

from __future__ import annotations

import pytest
import torch

from vfxmatte.devices import (
    BF16,
    FP32,
    NumericMode,
    autocast,
    cpu_has_native_bf16,
    describe_device,
    resolve_amp,
    resolve_precision,
    select_device,
    select_training_device,
)
from vfxmatte.errors import DeviceError

CPU = torch.device("cpu")


def test_device_and_precision_selection():
    assert select_device("cpu").type == "cpu"
    auto = select_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else auto.type)
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            select_device("cuda")
    with pytest.raises(DeviceError, match="choose"):
        select_device("tpu")
    # CPUs: bf16 weights (no autocast) only where the CPU has native bf16 instructions.
    assert resolve_precision(CPU, "auto", native_bf16=False) == NumericMode("fp32") == FP32
    assert resolve_precision(CPU, "auto", native_bf16=True) == NumericMode("bf16", torch.bfloat16) == BF16
    assert resolve_precision(CPU, "bf16", native_bf16=True).autocast is None
    assert resolve_precision(CPU, "fp32", native_bf16=True) == NumericMode("fp32")
    with pytest.raises(DeviceError, match="no native bf16.*use fp32"):
        resolve_precision(CPU, "bf16", native_bf16=False)
    with pytest.raises(DeviceError, match="fp16 is many times slower"):
        resolve_precision(CPU, "fp16", native_bf16=True)
    with pytest.raises(DeviceError, match="choose auto"):
        resolve_precision(CPU, "int8")
    # GPUs: autocast over fp32 weights.
    assert resolve_precision(torch.device("cuda"), "auto") == NumericMode("fp16-autocast", autocast=torch.float16)
    assert resolve_precision(torch.device("cuda"), "bf16").autocast == torch.bfloat16
    assert resolve_precision(torch.device("cuda"), "bf16").dtype == torch.float32


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    check = cpu_has_native_bf16.__wrapped__  # uncached
    (tmp_path / "zen4").write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16 avx512_vnni\n")
    (tmp_path / "spr").write_text("flags\t\t: fpu avx2 avx512f amx_bf16 amx_tile\n")
    (tmp_path / "avx2").write_text("flags\t\t: fpu avx2 fma f16c\n")
    assert check(str(tmp_path / "zen4")) and check(str(tmp_path / "spr"))
    assert not check(str(tmp_path / "avx2")) and not check(str(tmp_path / "missing"))


def test_auto_precision_follows_the_cpu_check(monkeypatch):
    monkeypatch.setattr("vfxmatte.devices.cpu_has_native_bf16", lambda: True)
    assert resolve_precision(CPU) == BF16
    monkeypatch.setattr("vfxmatte.devices.cpu_has_native_bf16", lambda: False)
    assert resolve_precision(CPU) == FP32


def test_training_device_never_picks_metal_by_itself_and_names_one_gpu(monkeypatch):
    assert select_training_device("cpu") == CPU
    assert select_training_device("cpu", local_rank=1) == CPU  # DDP on gloo: CPUs stay CPUs
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert select_device("auto").type == "mps"  # inference takes Metal...
    assert select_training_device("auto") == CPU  # ...training only when asked
    assert select_training_device("mps").type == "mps"
    with pytest.raises(DeviceError, match="CUDA is not available"):
        select_training_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 3)
    assert select_training_device("auto") == torch.device("cuda", 3)
    assert select_training_device("cuda") == torch.device("cuda", 3)
    assert select_training_device("cuda:1") == torch.device("cuda", 1)
    assert select_training_device("cuda:1", local_rank=2) == torch.device("cuda", 2)  # DDP: own GPU


def test_training_amp_modes():
    assert resolve_amp(CPU, "off") == FP32 and resolve_amp(CPU, "auto") == FP32
    bf16 = resolve_amp(CPU, "bf16")
    assert bf16.autocast == torch.bfloat16 and bf16.dtype == torch.float32  # autocast, fp32 weights
    with pytest.raises(DeviceError, match="fp16 needs a CUDA device"):
        resolve_amp(CPU, "fp16")
    with pytest.raises(DeviceError, match="choose auto"):
        resolve_amp(CPU, "fp8")
    assert resolve_amp(torch.device("cuda"), "fp16").autocast == torch.float16


def test_autocast_enters_the_modes_autocast_only():
    with autocast(CPU, FP32):
        assert not torch.is_autocast_enabled("cpu")
    with autocast(CPU, resolve_amp(CPU, "bf16")):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
        y = torch.nn.functional.linear(torch.ones(2, 4), torch.ones(3, 4))
    assert y.dtype == torch.bfloat16


def test_describe_device():
    assert describe_device(CPU) == "cpu"
    if torch.cuda.is_available():
        assert describe_device(torch.device("cuda", 0)).startswith("cuda (")
