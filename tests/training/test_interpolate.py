from __future__ import annotations

import json

import pytest
import torch

from training.cli import main
from training.interpolate import interpolate_checkpoints
from vfxmatte.checkpoint import load_checkpoint, save_checkpoint
from vfxmatte.errors import CheckpointError
from vfxmatte.model import VARIANTS, build_model


def _ckpt(tmp_path, name: str, seed: int, variant: str = "tiny", **changes):
    torch.manual_seed(seed)
    cfg = VARIANTS[variant]
    if changes:
        cfg = type(cfg)(**{**cfg.to_dict(), **changes})
    model = build_model(cfg)
    return save_checkpoint(tmp_path / f"{name}.safetensors", model, {"made_by": name}, half=True)


def test_interpolation_is_a_per_tensor_lerp(tmp_path) -> None:
    a, b = _ckpt(tmp_path, "a", 0), _ckpt(tmp_path, "b", 1)
    ta, tb = load_checkpoint(a).state_dict, load_checkpoint(b).state_dict
    for w in (0.0, 0.3, 1.0):
        out = interpolate_checkpoints(a, b, w, tmp_path / f"mix{w}.safetensors")
        mix = load_checkpoint(out)
        floats = 0
        for k, v in mix.state_dict.items():
            if v.is_floating_point():
                want = (1 - w) * ta[k].float() + w * tb[k].float()
                torch.testing.assert_close(v.float(), want.half().float(), atol=1e-3, rtol=1e-3)
                floats += 1
            else:
                assert torch.equal(v, tb[k])
        assert floats > 10
        interp = mix.provenance["interpolation"]
        assert interp["weight"] == w
        assert interp["base"]["provenance"] == {"made_by": "a"} and interp["tuned"]["sha256"] == load_checkpoint(b).sha256
    # The end points reproduce their inputs exactly (fp16 in, fp16 out).
    for w, src in ((0.0, ta), (1.0, tb)):
        got = load_checkpoint(tmp_path / f"mix{w}.safetensors").state_dict
        assert all(torch.equal(got[k], src[k]) for k in src)


def test_interpolation_refuses_other_architectures_and_bad_weights(tmp_path) -> None:
    a = _ckpt(tmp_path, "a", 0)
    other = _ckpt(tmp_path, "wide", 0, tcp_channels=4)
    with pytest.raises(CheckpointError, match="architecture differs"):
        interpolate_checkpoints(a, other, 0.5, tmp_path / "x.safetensors")
    with pytest.raises(CheckpointError, match=r"weight must be in \[0, 1\]"):
        interpolate_checkpoints(a, a, 1.5, tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_interpolate_command(tmp_path, capsys) -> None:
    a, b = _ckpt(tmp_path, "a", 0), _ckpt(tmp_path, "b", 1)
    out = tmp_path / "mix.safetensors"
    assert main(["interpolate", str(a), str(b), "--weight", "0.5", "--out", str(out)]) == 0
    assert load_checkpoint(out).provenance["interpolation"]["weight"] == 0.5
    assert main(["interpolate", str(a), str(tmp_path / "missing.safetensors"), "-w", "0.5", "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "missing.safetensors" in err and "\n" not in err
