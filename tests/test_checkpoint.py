import json

import pytest
import torch
from safetensors.torch import save_file

from vfxmatte.checkpoint import load_checkpoint, load_model, read_architecture, resolve, save_checkpoint
from vfxmatte.errors import ArchitectureError, CheckpointError, UnknownVariantError
from vfxmatte.model import SMALL, TINY, TCPMattingConfig, build_model
from vfxmatte.trimap import UNKNOWN_CHANNEL


def test_round_trip_keeps_weights_arch_and_provenance(tmp_path):
    m = build_model("tiny").eval()
    p = save_checkpoint(tmp_path / "m.safetensors", m, {"steps": 12, "data": "synthetic"})
    m2, ck = load_model(p, expect="tiny")
    assert ck.config == TINY and ck.provenance == {"steps": 12, "data": "synthetic"}
    assert len(ck.sha256) == 64
    for (k, a), (_, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), k
    x, t = torch.rand(1, 3, 32, 32), torch.zeros(1, 3, 32, 32)
    t[:, UNKNOWN_CHANNEL] = 1
    with torch.no_grad():
        assert torch.equal(m(x, t), m2(x, t))


def test_half_checkpoint_is_smaller_and_close(tmp_path):
    m = build_model("tiny").eval()
    full = save_checkpoint(tmp_path / "f.safetensors", m)
    half = save_checkpoint(tmp_path / "h.safetensors", m, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    m2, _ = load_model(half)
    assert next(m2.parameters()).dtype == torch.float32


def test_architecture_mismatch_names_the_fields(tmp_path):
    p = save_checkpoint(tmp_path / "m.safetensors", build_model("tiny"))
    with pytest.raises(CheckpointError, match="tcp_channels: 16 != 8"):
        load_model(p, expect="small")


def test_weights_that_do_not_fit_the_arch_name_the_tensor(tmp_path):
    m = build_model("tiny")
    sd = {k: v for k, v in m.state_dict().items()}
    sd["tcp.ffu.w_c"] = torch.zeros(2)
    cfg = json.dumps(TINY.to_dict())
    save_file(sd, str(tmp_path / "bad.safetensors"), metadata={"vfxmatte.format": "1", "vfxmatte.arch": cfg})
    with pytest.raises(CheckpointError, match="tcp.ffu.w_c"):
        load_model(tmp_path / "bad.safetensors")
    del sd["tcp.ffu.w_c"]
    save_file(sd, str(tmp_path / "miss.safetensors"), metadata={"vfxmatte.format": "1", "vfxmatte.arch": cfg})
    with pytest.raises(CheckpointError, match="missing 1 tensor"):
        load_model(tmp_path / "miss.safetensors")


def test_non_checkpoint_files_are_rejected_without_unpickling(tmp_path):
    pkl = tmp_path / "evil.safetensors"
    pkl.write_bytes(b"\x80\x04cos\nsystem\n.")
    with pytest.raises(CheckpointError, match="evil.safetensors"):
        load_checkpoint(pkl)
    plain = tmp_path / "plain.safetensors"
    save_file({"x": torch.zeros(1)}, str(plain))
    with pytest.raises(CheckpointError, match="not a vfxmatte checkpoint"):
        load_checkpoint(plain)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.safetensors")


def test_unknown_arch_field_is_rejected():
    with pytest.raises(CheckpointError, match="bogus"):
        TCPMattingConfig.from_dict({**TINY.to_dict(), "bogus": 1})


def test_unknown_expected_variant_is_the_one_variant_error(tmp_path):
    p = save_checkpoint(tmp_path / "m.safetensors", build_model("tiny"))
    with pytest.raises(UnknownVariantError, match="unknown model variant 'small_sp2'") as e:
        load_model(p, expect="small_sp2")
    assert e.value.name == "small_sp2"


def test_shipped_starter_with_its_stored_legacy_key_loads():
    from safetensors import safe_open

    with safe_open(str(resolve("starter")), framework="pt") as f:
        stored = json.loads(f.metadata()["vfxmatte.arch"])
    # Whether or not the shipped header still carries the no-op key, it reads as `small`.
    assert stored.get("sp_downsample", 1) == 1
    assert read_architecture("starter") == SMALL
    model, ckpt = load_model("starter", expect="small")
    assert ckpt.config == SMALL and model.stride == 32


def test_legacy_key_with_another_value_is_refused_naming_the_file(tmp_path):
    m = build_model("tiny")
    arch = json.dumps({**TINY.to_dict(), "sp_downsample": 2})
    bad = tmp_path / "half_sp.safetensors"
    save_file(m.state_dict(), str(bad), metadata={"vfxmatte.format": "1", "vfxmatte.arch": arch})
    with pytest.raises(ArchitectureError, match=r"half_sp\.safetensors: sp_downsample: 2 is not supported"):
        load_model(bad)
    ok = tmp_path / "legacy.safetensors"
    arch = json.dumps({**TINY.to_dict(), "sp_downsample": 1})
    save_file(m.state_dict(), str(ok), metadata={"vfxmatte.format": "1", "vfxmatte.arch": arch})
    assert load_model(ok)[1].config == TINY


def test_failed_save_keeps_the_old_checkpoint_and_names_it(tmp_path, monkeypatch):
    import safetensors.torch

    target = save_checkpoint(tmp_path / "m.safetensors", build_model("tiny"))
    good = target.read_bytes()

    def disk_full(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\x00" * 16)
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    with pytest.raises(CheckpointError, match=r"m\.safetensors: cannot write checkpoint \(disk full\)"):
        save_checkpoint(target, build_model("tiny"))
    assert target.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


def test_checkpoint_is_an_ordinary_data_file(tmp_path):
    import os
    import stat

    umask = os.umask(0o027)
    try:
        p = save_checkpoint(tmp_path / "m.safetensors", build_model("tiny"))
    finally:
        os.umask(umask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o640
