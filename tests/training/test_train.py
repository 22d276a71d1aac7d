"""Training config, loop, resume and export on CPU with the tiny config.

The loop tests use a small procedural stand-in data set (a soft disc over noise) so they test
the loop and not the synthetic generator; every item is a pure function of (epoch, index), the
contract the loop relies on for resumable streams.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import training.train as train_mod
from training import cli
from training.config import CONFIG_DIR, load_config
from training.train import (
    BatchStream,
    export_inference_checkpoint,
    latest_state,
    load_training_state,
    lr_factor,
    train,
)
from vfxmatte.checkpoint import load_model
from vfxmatte.errors import ConfigError, TrainingError

TINY = CONFIG_DIR / "tiny.yaml"
REPO = Path(__file__).resolve().parents[2]


class DiscSet:
    """Soft disc over noise; ``fixed`` ignores the epoch (an overfitting set)."""

    def __init__(self, n: int = 16, size: int = 64, seed: int = 0, fixed: bool = False) -> None:
        self.n, self.size, self.seed, self.fixed, self.epoch = n, size, seed, fixed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, 0 if self.fixed else self.epoch, i])
        s = self.size
        yy, xx = np.mgrid[0:s, 0:s] / s
        cx, cy, r = rng.uniform(0.3, 0.7, 3)
        d = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        alpha = np.clip((0.6 * r - d) / 0.1 + 0.5, 0, 1).astype(np.float32)
        fg = (rng.uniform(0, 1, (3, 1, 1)) * np.ones((3, s, s))).astype(np.float32)
        bg = rng.uniform(0, 1, (3, s, s)).astype(np.float32)
        image = alpha * fg + (1 - alpha) * bg
        labels = np.where(alpha <= 0.01, 0, np.where(alpha >= 0.99, 2, 1))
        labels[(np.abs(d - 0.6 * r) < 0.08)] = 1  # a band wider than the soft edge
        tri = np.stack([labels == 0, labels == 1, labels == 2]).astype(np.float32)
        t = lambda x: torch.from_numpy(np.ascontiguousarray(x))  # noqa: E731
        return {"image": t(image), "trimap_sp": t(tri), "trimap_tcp": t(tri.copy()),
                "alpha": t(alpha[None]), "fg": t(fg), "bg": t(bg)}


VAL = [DiscSet(seed=99)[i] for i in range(2)]


def tiny_cfg(out: Path, *extra: str):
    return load_config(TINY, [f"train.out_dir={out}", "train.log_every=1", *extra])


def read_log(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


class StopAfter:
    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def __call__(self) -> bool:
        self.calls += 1
        return self.calls >= self.n


# ---------------------------------------------------------------------------------------------
# config


def test_tiny_config_loads_through_inheritance():
    cfg = load_config(TINY)
    assert cfg.model == "tiny" and cfg.architecture().name == "tiny"
    assert cfg.data.out_size == 64 and cfg.train.batch_size == 2
    assert cfg.optim.betas == (0.5, 0.999) and cfg.optim.lr == 4e-4  # paper §4.1, from base.yaml
    assert cfg.loss.alpha_weight == 0.9 and cfg.loss.theta == 0.1  # paper §3.3


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIG_DIR.glob("*.yaml")))
def test_shipped_configs_validate(name):
    load_config(CONFIG_DIR / name)


def test_gpu_config_is_one_h100_recipe():
    cfg = load_config(CONFIG_DIR / "starter_gpu.yaml")
    assert cfg.model == "small" and cfg.train.amp == "bf16"
    assert cfg.train.time_limit_minutes is not None and cfg.train.time_limit_minutes < 10
    assert cfg.train.resume == "auto" and cfg.data.workers <= 15


@pytest.mark.parametrize(
    "override, key",
    [
        ("train.bach_size=3", "train.bach_size: unknown key"),
        ("train.amp=fp8", "train.amp:"),
        ("optim.lr=-1", "optim.lr: must be > 0"),
        ("data.crop_sizes=[]", "data.crop_sizes:"),
        ("model=huge", "model: unknown model variant 'huge' (choose from r34, small, tiny)"),
        ("model={variant: small_sp2}", "model: unknown model variant 'small_sp2'"),
        ("model.sp_downsample=2", "model: sp_downsample: 2 is not supported"),
        ("model.tcp_width=3", "model: unknown architecture field(s) tcp_width"),
        ("loss.theta=abc", "loss.theta:"),
        ("data.synthetic.sed=1", "data.synthetic.sed: unknown key"),
        ("data.val_rough_trimap_prob=2", "data.val_rough_trimap_prob: must be in [0, 1]"),
        ("data.held_object_prob=1.5", "data.held_object_prob: must be in [0, 1]"),
        ("data.rough_trimap_kernel=[40, 20]", "data.rough_trimap_kernel: must be [low, high]"),
        ("data.val_recipes={feathers: 1}", "data.val_recipes: unknown recipe(s) feathers"),
        ("data.val_recipes={shrub: 0}", "data.val_recipes: odds must be >= 0"),
        ("train.ema_decay=1", "train.ema_decay: must be in [0, 1)"),
    ],
)
def test_config_errors_name_the_key(override, key):
    with pytest.raises(ConfigError) as e:
        load_config(TINY, [override])
    msg = str(e.value)
    assert key in msg and "\n" not in msg and msg.startswith("tiny.yaml: ")


def test_unknown_model_variant_is_the_cores_error_at_the_key():
    """The config names its file and key; the cause is the one error every place raises for
    an unknown variant (build_model, load_model), with the same message."""
    from vfxmatte.errors import UnknownVariantError
    from vfxmatte.model import build_model

    with pytest.raises(ConfigError) as e:
        load_config(TINY, ["model=huge", "optim.lr=-1"])
    cause = e.value.__cause__
    assert isinstance(cause, UnknownVariantError) and cause.name == "huge"
    with pytest.raises(UnknownVariantError) as direct:
        build_model("huge")
    assert str(e.value).startswith(f"tiny.yaml: model: {direct.value}; ")


def test_set_overrides_parse_yaml_values():
    cfg = load_config(TINY, ["train.steps=7", "optim.lr=1e-3", "data.crop_sizes=[64, 128]",
                             "train.time_limit_minutes=null", "model.tcp_channels=4"])
    assert cfg.train.steps == 7 and cfg.optim.lr == 1e-3 and cfg.data.crop_sizes == [64, 128]
    assert cfg.architecture().tcp_channels == 4 and cfg.architecture().encoder_widths[0] == 8


def test_recipe_odds_reach_the_training_and_validation_generators(tmp_path, monkeypatch):
    """data.synthetic.recipes biases the training stream, data.val_recipes makes a protocol."""
    import cv2

    import training.synthetic as synthetic

    for i in range(2):
        cv2.imwrite(str(tmp_path / f"p{i}.png"), np.full((80, 80, 3), 60 * i + 40, np.uint8))
    made = []

    class Recording(synthetic.SyntheticGenerator):
        def __init__(self, *args, **kwargs):
            made.append(kwargs.get("recipes"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(synthetic, "SyntheticGenerator", Recording)
    cfg = load_config(TINY, [f"data.synthetic={{backgrounds: {tmp_path}}}", "data.synthetic.recipes={hair: 1, shrub: 1}",
                             "data.val_recipes={shrub: 1}", "data.val_samples=1"])
    train_mod.build_datasets(cfg)
    assert made == [{"hair": 1, "shrub": 1}, {"shrub": 1}]


def test_inherit_list_merges_in_order_and_expands_env(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text(f"inherit: {TINY}\ntrain: {{steps: 3, batch_size: 4}}\n")
    (tmp_path / "b.yaml").write_text(
        "train: {steps: 5}\ndata:\n  synthetic:\n    backgrounds: ${BG_DIR:-/x/default}\n"
    )
    (tmp_path / "c.yaml").write_text("inherit: [a.yaml, b.yaml]\ntrain: {seed: 9}\n")
    monkeypatch.delenv("BG_DIR", raising=False)
    cfg = load_config(tmp_path / "c.yaml")
    assert (cfg.train.steps, cfg.train.batch_size, cfg.train.seed) == (5, 4, 9)
    assert cfg.data.synthetic.backgrounds == "/x/default"
    assert cfg.data.out_size == 64  # from tiny.yaml two levels up
    monkeypatch.setenv("BG_DIR", "/from/env")
    assert load_config(tmp_path / "c.yaml").data.synthetic.backgrounds == "/from/env"


def test_unset_env_var_without_default_is_an_error(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_VFXMATTE_VAR", raising=False)
    (tmp_path / "c.yaml").write_text(f"inherit: {TINY}\ntrain:\n  out_dir: ${{NO_SUCH_VFXMATTE_VAR}}/run\n")
    with pytest.raises(ConfigError, match="NO_SUCH_VFXMATTE_VAR"):
        load_config(tmp_path / "c.yaml")


def test_yaml_tags_that_build_objects_are_refused(tmp_path):
    (tmp_path / "evil.yaml").write_text("model: !!python/object/apply:os.system ['true']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "evil.yaml")


def test_inherit_loop_is_reported(tmp_path):
    (tmp_path / "a.yaml").write_text("inherit: b.yaml\n")
    (tmp_path / "b.yaml").write_text("inherit: a.yaml\n")
    with pytest.raises(ConfigError, match="inherit loop"):
        load_config(tmp_path / "a.yaml")


# ---------------------------------------------------------------------------------------------
# schedule and data stream


def test_lr_warms_up_linearly_then_anneals_to_min():
    f = [lr_factor(s, 100, 10, 0.01) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert f[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[10:], f[11:]))
    assert lr_factor(100, 100, 10, 0.01) == pytest.approx(0.01)
    assert f[55] == pytest.approx(0.01 + 0.99 * 0.5, abs=1e-6)  # half way through the cosine


def test_batch_stream_shards_disjointly_and_resumes_mid_epoch():
    whole = BatchStream(20, 2, world=1)
    r0, r1 = BatchStream(20, 2, rank=0, world=2), BatchStream(20, 2, rank=1, world=2)
    it0, it1, itw = iter(r0), iter(r1), iter(whole)
    seen = []
    for _ in range(7):  # across an epoch boundary (5 global batches of 4 per epoch of 20)
        a, b = next(it0), next(it1)
        assert not set(a) & set(b)
        assert a + b == next(itw) + next(itw)
        seen += a + b
    assert sorted(seen[:20]) == [(0, i) for i in range(20)] and seen[20] == (1, 0)
    later = iter(BatchStream(20, 2, start=7))
    full = iter(BatchStream(20, 2))
    for _ in range(7):
        next(full)
    assert [next(later) for _ in range(5)] == [next(full) for _ in range(5)]


def test_batch_stream_refuses_a_set_smaller_than_a_batch():
    with pytest.raises(TrainingError, match="epoch_size"):
        BatchStream(3, 2, world=2)


# ---------------------------------------------------------------------------------------------
# the loop


def test_short_run_overfits_a_fixed_batch(tmp_path):
    fixed = DiscSet(n=2, fixed=True)
    cfg = tiny_cfg(tmp_path, "train.steps=40", "optim.lr=3e-3", "optim.min_lr=3e-3",
                   "optim.warmup_steps=0", "train.val_every=1000", "train.ckpt_every=1000")
    result = train(cfg, train_set=fixed, val_set=[fixed[0], fixed[1]])
    assert result.reason == "done" and result.step == 40
    losses = [r["loss"] for r in read_log(tmp_path) if r["kind"] == "train"]
    assert len(losses) == 40 and all(np.isfinite(losses))
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])


def test_run_reports_progress_logs_and_validates(tmp_path):
    events = []
    cfg = tiny_cfg(tmp_path, "train.steps=4", "train.val_every=2", "train.ckpt_every=2")
    result = train(cfg, events.append, train_set=DiscSet(), val_set=VAL)
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end" and kinds.count("step") == 4
    assert kinds.count("val") == 2 and kinds.count("checkpoint") == 2
    val = [e for e in events if e.kind == "val"][-1].metrics
    for key in ("loss", "sad", "mse", "grad", "conn", "w_c", "sp_std", "tcp_std"):
        assert key in val and np.isfinite(val[key]), key
    log = read_log(tmp_path)
    assert {r["kind"] for r in log} == {"start", "train", "val", "checkpoint", "end"}
    assert result.export_path == tmp_path / "export" / "latest.safetensors"
    # keep_states (2) bounds the state files on disk.
    assert len(list((tmp_path / "states").glob("state_*.safetensors"))) == 2


def test_gradient_term_is_trained_and_logged_only_when_weighted(tmp_path):
    plain = tiny_cfg(tmp_path / "plain", "train.steps=2", "train.val_every=2", "train.ckpt_every=2")
    train(plain, train_set=DiscSet(), val_set=VAL)
    assert not any("loss_grad" in r for r in read_log(tmp_path / "plain"))
    cfg = tiny_cfg(tmp_path / "grad", "train.steps=2", "train.val_every=2", "train.ckpt_every=2",
                   "loss.grad_weight=0.5")
    train(cfg, train_set=DiscSet(), val_set=VAL)
    log = read_log(tmp_path / "grad")
    steps = [r for r in log if r["kind"] == "train"]
    assert steps and all(r["loss_grad"] > 0 for r in steps)
    # The total carries the term: loss = 0.9 L_a + 0.1 L_bg + 0.5 L_grad, step by step.
    for r in steps:
        assert r["loss"] == pytest.approx(0.9 * r["loss_alpha"] + 0.1 * r["loss_bg"] + 0.5 * r["loss_grad"], rel=1e-4)
    val = [r for r in log if r["kind"] == "val"][-1]
    assert val["loss_grad"] > 0


def test_resume_continues_bitwise_identically(tmp_path):
    # Straight: 8 steps. Split: stopped after 4 (as SIGTERM or the time limit would), then
    # resumed in a fresh call, this time with a loader worker process: same stream, same weights.
    straight = train(tiny_cfg(tmp_path / "a", "train.steps=8", "train.val_every=3"),
                     train_set=DiscSet(), val_set=VAL)
    first = train(tiny_cfg(tmp_path / "b", "train.steps=8", "train.val_every=3"),
                  train_set=DiscSet(), val_set=VAL, should_stop=StopAfter(4))
    assert (first.reason, first.step) == ("stopped", 4)
    events = []
    second = train(tiny_cfg(tmp_path / "b", "train.steps=8", "train.val_every=3", "data.workers=1"),
                   events.append, train_set=DiscSet(), val_set=VAL)
    assert second.step == 8 and events[0].metrics["resumed_from"].endswith("state_00000004.safetensors")
    a, b = load_training_state(straight.state_path), load_training_state(second.state_path)
    assert a["model"].keys() == b["model"].keys()
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for k, v in a["optimizer"]["state"].items():
        assert torch.equal(v["exp_avg_sq"], b["optimizer"]["state"][k]["exp_avg_sq"])
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 8


def test_state_file_is_safetensors_with_json_metadata(tmp_path):
    train(tiny_cfg(tmp_path, "train.steps=2"), train_set=DiscSet(), val_set=VAL)
    path = latest_state(tmp_path)
    assert path.name == "state_00000002.safetensors"
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        names = set(f.keys())
        rng_torch = f.get_tensor("rng.torch")
    assert set(meta) == {"vfxmatte.format", "vfxmatte.train_state"}
    doc = json.loads(meta["vfxmatte.train_state"])
    assert doc["format"] == meta["vfxmatte.format"] == train_mod.STATE_FORMAT
    assert doc["step"] == 2 and doc["micro_batches"] == 2 and doc["config"]["model"] == "tiny"
    for key in ("model", "optimizer", "scheduler", "scaler", "rng", "epoch", "wall_time", "arch"):
        assert key in doc, key
    assert isinstance(doc["optimizer"]["param_groups"], list) and "lr_lambdas" not in doc["scheduler"]
    assert doc["scheduler"]["last_epoch"] == 2 and doc["rng"]["python"][0] == 3
    assert {"optim.state.0.exp_avg", "optim.state.0.exp_avg_sq", "optim.state.0.step",
            "rng.torch", "rng.numpy.key"} <= names
    assert any(n.startswith("model.") for n in names)
    assert rng_torch.dtype == torch.uint8
    assert not list(path.parent.glob(".*.tmp"))  # atomic write left no temp file
    state = load_training_state(path)
    assert state["step"] == 2 and isinstance(state["rng"]["python"], tuple)
    assert all(isinstance(k, int) for k in state["optimizer"]["state"])
    assert state["optimizer"]["param_groups"][0]["betas"] == (0.5, 0.999)
    assert state["scheduler"]["lr_lambdas"] == [None]


def test_resume_never_unpickles(tmp_path, monkeypatch):
    train(tiny_cfg(tmp_path, "train.steps=2"), train_set=DiscSet(), val_set=VAL)

    def refuse(*args, **kwargs):
        raise AssertionError("a training state was unpickled")

    for mod, name in [(pickle, "loads"), (pickle, "load"), (pickle, "Unpickler"),
                      (torch, "load"), (torch.serialization, "load")]:
        monkeypatch.setattr(mod, name, refuse)
    result = train(tiny_cfg(tmp_path, "train.steps=3"), train_set=DiscSet(), val_set=VAL)
    assert result.step == 3 and load_training_state(tmp_path)["step"] == 3
    export_inference_checkpoint(tmp_path, tmp_path / "m.safetensors")


def test_training_package_has_no_pickle_loader():
    for src in (REPO / "training").glob("*.py"):
        text = src.read_text()
        assert "torch.load" not in text and "import pickle" not in text, src.name


def test_corrupt_or_foreign_state_files_are_refused(tmp_path):
    states = tmp_path / "states"
    states.mkdir()
    garbage = states / "state_00000001.safetensors"
    garbage.write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(TrainingError, match="state_00000001.safetensors: not a readable"):
        load_training_state(tmp_path)
    old = tmp_path / "state_00000001.pt"
    old.write_bytes(b"\x80\x04pickled")
    with pytest.raises(TrainingError, match=r"state_00000001\.pt: .*pickled \.pt states"):
        load_training_state(old)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign), metadata={"x": "y"})
    with pytest.raises(TrainingError, match="foreign.safetensors: not a vfxmatte training state"):
        load_training_state(foreign)
    bad_json = tmp_path / "bad.safetensors"
    save_file({"w": torch.zeros(2)}, str(bad_json),
              metadata={"vfxmatte.format": train_mod.STATE_FORMAT, "vfxmatte.train_state": "{oops"})
    with pytest.raises(TrainingError, match="bad.safetensors: corrupt training state"):
        load_training_state(bad_json)
    missing = tmp_path / "missing.safetensors"
    doc = {"format": train_mod.STATE_FORMAT, "model": {"w": {"__tensor__": "model.w"}}}
    save_file({"w": torch.zeros(2)}, str(missing),
              metadata={"vfxmatte.format": train_mod.STATE_FORMAT, "vfxmatte.train_state": json.dumps(doc)})
    with pytest.raises(TrainingError, match="missing.safetensors: corrupt training state .*model.w"):
        load_training_state(missing)
    with pytest.raises(TrainingError, match=r"state_00000001\.safetensors"):
        export_inference_checkpoint(tmp_path, tmp_path / "m.safetensors")


def test_finished_run_resumes_to_a_no_op(tmp_path):
    train(tiny_cfg(tmp_path, "train.steps=2"), train_set=DiscSet(), val_set=VAL)
    again = train(tiny_cfg(tmp_path, "train.steps=2"), train_set=DiscSet(), val_set=VAL)
    assert again.step == 2 and again.reason == "done"


def test_resume_never_refuses_an_existing_run(tmp_path):
    train(tiny_cfg(tmp_path, "train.steps=1"), train_set=DiscSet(), val_set=VAL)
    with pytest.raises(TrainingError, match="resume"):
        train(tiny_cfg(tmp_path, "train.steps=2", "train.resume=never"), train_set=DiscSet(), val_set=VAL)


def test_time_limit_stops_cleanly_with_state_and_export(tmp_path):
    cfg = tiny_cfg(tmp_path, "train.steps=1000", "train.time_limit_minutes=0.0001")
    result = train(cfg, train_set=DiscSet(), val_set=VAL)
    assert result.reason == "time_limit" and result.step == 1
    assert result.state_path.is_file() and result.export_path.is_file()
    assert load_training_state(result.state_path)["step"] == 1


# ---------------------------------------------------------------------------------------------
# export


def test_export_loads_with_matching_provenance(tmp_path):
    result = train(tiny_cfg(tmp_path / "run", "train.steps=3"), train_set=DiscSet(), val_set=VAL)
    state = load_training_state(result.state_path)
    path = export_inference_checkpoint(result.state_path, tmp_path / "model.safetensors")
    model, ckpt = load_model(path, expect="tiny")
    prov = ckpt.provenance
    assert prov["steps"] == 3 and prov["config"] == state["config"]
    assert prov["device"] == "cpu" and prov["vfxmatte_version"] and "synthetic" in prov["data"]
    assert prov["wall_time_s"] >= 0
    assert all(v.dtype == torch.float16 for v in ckpt.state_dict.values() if v.is_floating_point())
    for k, v in state["model"].items():
        if v.is_floating_point():
            assert torch.allclose(model.state_dict()[k], v, atol=2e-3, rtol=1e-3), k
    # The loop's own export of the last state is the same network.
    _, loop_ckpt = load_model(result.export_path)
    assert loop_ckpt.provenance["steps"] == 3


@pytest.mark.parametrize("freeze", [False, True])
def test_freeze_norm_stats_keeps_running_statistics_but_trains(tmp_path, freeze):
    first = train(tiny_cfg(tmp_path / "a", "train.steps=2"), train_set=DiscSet(), val_set=VAL)
    before = load_training_state(first.state_path)["model"]
    cfg = tiny_cfg(tmp_path / "b", "train.steps=3", f"init_checkpoint={first.export_path}",
                   f"train.freeze_norm_stats={str(freeze).lower()}", "train.val_every=1")
    after = load_training_state(train(cfg, train_set=DiscSet(), val_set=VAL).state_path)["model"]
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    weights = [k for k in before if k.endswith("weight") and before[k].dim() == 4]
    assert stats and weights
    # (the export the run started from is fp16: compare at that precision)
    same = [torch.allclose(before[k].half().float(), after[k].float(), atol=1e-3) for k in stats]
    assert all(same) if freeze else not any(same)
    assert not any(torch.allclose(before[k].half().float(), after[k].float(), atol=1e-5) for k in weights[:3])


def test_warm_started_export_carries_its_lineage_through_resume(tmp_path):
    first = train(tiny_cfg(tmp_path / "a", "train.steps=2"), train_set=DiscSet(), val_set=VAL)
    parent = export_inference_checkpoint(first.state_path, tmp_path / "parent.safetensors")
    _, parent_ckpt = load_model(parent)
    cfg = tiny_cfg(tmp_path / "b", "train.steps=2", f"init_checkpoint={parent}")
    train(cfg, train_set=DiscSet(), val_set=VAL)
    cfg = tiny_cfg(tmp_path / "b", "train.steps=4", f"init_checkpoint={parent}")
    result = train(cfg, train_set=DiscSet(), val_set=VAL)  # resumes at 2: init is not reloaded
    assert [r["step"] for r in read_log(tmp_path / "b") if r["kind"] == "start"] == [0, 2]
    parent.unlink()  # the lineage lives in the state, not in the parent file
    _, child = load_model(export_inference_checkpoint(result.state_path, tmp_path / "child.safetensors"))
    lineage = child.provenance["initialised_from"]
    assert lineage["checkpoint"] == str(parent) and lineage["sha256"] == parent_ckpt.sha256
    assert lineage["provenance"]["steps"] == 2 and child.provenance["steps"] == 4
    # A run from scratch records no parent.
    _, scratch = load_model(first.export_path)
    assert "initialised_from" not in scratch.provenance


# ---------------------------------------------------------------------------------------------
# command line


def test_cli_train_then_export(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train_mod, "build_datasets", lambda cfg: (DiscSet(), VAL))
    out = tmp_path / "run"
    code = cli.main(["train", "--config", str(TINY), "--set", "train.steps=2", "--out", str(out)])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("start step 0/2") and lines[-1].startswith("end step 2/2 (done")
    code = cli.main(["export", str(out), "--out", str(tmp_path / "m.safetensors")])
    assert code == 0 and (tmp_path / "m.safetensors").is_file()


def test_cli_validate_scores_checkpoints_on_held_out_composites(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(train_mod, "build_datasets", lambda cfg: (DiscSet(fixed=True), VAL))
    out = tmp_path / "run"
    assert cli.main(["train", "--config", str(TINY), "--set", "train.steps=1", "--out", str(out)]) == 0
    export_inference_checkpoint(out, tmp_path / "early.safetensors")
    assert cli.main(["train", "--config", str(TINY), "--set", "train.steps=60", "--set", "optim.lr=3e-3",
                     "--out", str(out)]) == 0
    export_inference_checkpoint(out, tmp_path / "late.safetensors")
    capsys.readouterr()
    code = cli.main(["validate", "--config", str(TINY), "--json",
                     str(tmp_path / "early.safetensors"), str(tmp_path / "late.safetensors")])
    assert code == 0
    early, late = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert early["checkpoint"].endswith("early.safetensors")
    assert {"sad", "mse", "grad", "conn", "loss", "w_c"} <= early.keys()
    assert late["loss"] < early["loss"] and late["sad"] < early["sad"]
    # The numbers are those of the run's own periodic validation of the same weights.
    last_val = [r for r in read_log(out) if r["kind"] == "val"][-1]
    assert last_val["step"] == 60 and abs(last_val["loss"] - late["loss"]) < 1e-3 * last_val["loss"] + 1e-4
    assert cli.main(["validate", "--config", str(TINY), "--json", "--tta", "flip", str(tmp_path / "late.safetensors")]) == 0
    flip = json.loads(capsys.readouterr().out)
    assert flip["tta"] == "flip" and flip["sad"] != late["sad"]
    # The same numbers as the engine's flip TTA on those composites (64 px: a stride multiple).
    from vfxmatte.checkpoint import load_model
    from vfxmatte.engine import MattingSession
    from vfxmatte.metrics import sad

    def engine_sad(**options):
        session = MattingSession(load_model(tmp_path / "late.safetensors")[0], device="cpu", tile_size=0, **options)
        sads = []
        for item in VAL:
            tri = train_mod._trimap_canonical(item["trimap_sp"])
            pred = session.matte(item["image"].permute(1, 2, 0).numpy(), tri)
            sads.append(sad(pred, item["alpha"][0].numpy(), tri))
        return float(np.mean(sads))

    assert abs(engine_sad(tta="flip", precision="fp32") - flip["sad"]) < 1e-3 * flip["sad"] + 1e-4
    # --precision bf16 scores the network as the engine runs it on CPUs with native bf16.
    assert cli.main(["validate", "--config", str(TINY), "--json", "--precision", "bf16", str(tmp_path / "late.safetensors")]) == 0
    bf16 = json.loads(capsys.readouterr().out)
    assert bf16["precision"] == "bf16" and abs(bf16["sad"] - late["sad"]) < 0.05 * late["sad"]
    monkeypatch.setattr("vfxmatte.devices.cpu_has_native_bf16", lambda: True)
    assert abs(engine_sad(precision="bf16") - bf16["sad"]) < 1e-2 * bf16["sad"] + 1e-4
    assert cli.main(["validate", "--config", str(TINY), str(tmp_path / "missing.safetensors")]) == 1
    assert "missing.safetensors" in capsys.readouterr().err


def test_cli_bad_config_is_one_line_and_exit_2(capsys):
    code = cli.main(["train", "--config", str(TINY), "--set", "train.bach_size=3"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "train.bach_size: unknown key" in err
    assert cli.main(["train"]) == 2  # missing --config
    assert cli.main(["export", "/no/such/state.safetensors", "--out", "x.safetensors"]) == 1


def test_module_entry_point_as_subprocess():
    # From a checkout's root, as documented: training/ is not an installed package.
    proc = subprocess.run(
        [sys.executable, "-m", "training", "train", "--config", str(TINY), "--set", "optim.lr=0"],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: tiny.yaml: optim.lr: must be > 0"


def test_warm_start_into_another_config_of_the_same_tensors(tmp_path):
    first = train(tiny_cfg(tmp_path / "a", "train.steps=2"), train_set=DiscSet(), val_set=VAL)
    renamed = "model={variant: tiny, name: tiny_ft, w_c_init: 0.5}"
    result = train(tiny_cfg(tmp_path / "b", "train.steps=2", renamed, f"init_checkpoint={first.export_path}"),
                   train_set=DiscSet(), val_set=VAL)
    _, ckpt = load_model(result.export_path, expect=None)
    assert ckpt.config.name == "tiny_ft" and ckpt.config.w_c_init == 0.5
    assert ckpt.provenance["initialised_from"]["checkpoint"] == str(first.export_path)
    # A field that changes tensor shapes is still refused, and named.
    wide = "model={variant: tiny, tcp_channels: 12}"
    with pytest.raises(TrainingError, match="tcp_channels: 12 != 8"):
        train(tiny_cfg(tmp_path / "c", "train.steps=1", wide, f"init_checkpoint={first.export_path}"),
              train_set=DiscSet(), val_set=VAL)


# ---------------------------------------------------------------------------------------------
# compact states and train.fallback_state (a long run's small resume state, committed to git)


def test_compact_state_drops_adam_and_a_fresh_checkout_resumes_from_it(tmp_path, capsys):
    first = train(tiny_cfg(tmp_path / "run", "train.steps=8"), train_set=DiscSet(), val_set=VAL,
                  should_stop=StopAfter(4))
    assert (first.reason, first.step) == ("stopped", 4)
    compact = tmp_path / "state" / "compact.safetensors"
    assert cli.main(["compact", str(tmp_path / "run"), "--out", str(compact)]) == 0
    assert "wrote" in capsys.readouterr().out
    with safe_open(str(compact), framework="pt") as f:
        names = list(f.keys())
    assert names and not any(n.startswith("optim.") for n in names)
    assert compact.stat().st_size < 0.6 * first.state_path.stat().st_size
    small, full = load_training_state(compact), load_training_state(first.state_path)
    assert small["optimizer"] is None and small["step"] == 4
    for k in full["model"]:
        assert torch.equal(small["model"][k], full["model"][k]), k  # fp32, bit for bit

    # A fresh checkout: its out_dir is empty, the config names the committed compact state.
    events = []
    fresh = tmp_path / "fresh"
    cfg = tiny_cfg(fresh, "train.steps=8", f"train.fallback_state={compact}", "train.rewarm_steps=4")
    second = train(cfg, events.append, train_set=DiscSet(), val_set=VAL)
    assert events[0].metrics["resumed_from"] == str(compact) and events[0].step == 4
    assert second.step == 8 and second.reason == "done"
    lrs = {r["step"]: r["lr"] for r in read_log(fresh) if r["kind"] == "train"}
    # Re-warmed: steps 4..7 run at 1/4 .. 4/4 of the schedule's lr (logged after the step: lr of the next).
    sched = [lr_factor(s, 8, cfg.optim.warmup_steps, cfg.optim.min_lr / cfg.optim.lr) * cfg.optim.lr for s in range(9)]
    assert lrs[5] == pytest.approx(sched[5] * 2 / 4) and lrs[7] == pytest.approx(sched[7] * 4 / 4)
    # Its own states are full again, and carry the re-warm for a later resume.
    state = load_training_state(second.state_path)
    assert state["optimizer"] is not None and state["rewarm"] == {"from": 4, "steps": 4}
    # A third call resumes from the run's own state, not the fallback.
    third_events = []
    train(tiny_cfg(fresh, "train.steps=9", f"train.fallback_state={compact}"), third_events.append,
          train_set=DiscSet(), val_set=VAL)
    assert third_events[0].metrics["resumed_from"].endswith("state_00000008.safetensors")


def test_fallback_state_that_is_absent_starts_afresh(tmp_path):
    events = []
    train(tiny_cfg(tmp_path / "run", "train.steps=2", f"train.fallback_state={tmp_path / 'none.safetensors'}"),
          events.append, train_set=DiscSet(), val_set=VAL)
    assert events[0].step == 0 and events[0].metrics["resumed_from"] is None


def test_validation_protocols_are_scored_on_their_own_sets(tmp_path):
    protocols = "data.val_protocols={rough: {val_rough_trimap_prob: 1}, shrub: {val_recipes: {shrub: 1}}}"
    cfg = tiny_cfg(tmp_path, "train.steps=2", "train.val_every=2", protocols)
    assert cfg.data.protocol("shrub").val_recipes == {"shrub": 1} and cfg.data.protocol("shrub").val_protocols == {}
    sets = {"rough": [DiscSet(seed=5)[0]], "shrub": [DiscSet(seed=6)[0]]}
    result = train(cfg, train_set=DiscSet(), val_set=VAL, protocol_sets=sets)
    val = [r for r in read_log(tmp_path) if r["kind"] == "val"][-1]
    assert {"sad", "rough.sad", "rough.grad", "shrub.sad", "shrub.loss"} <= set(val)
    assert val["rough.sad"] != val["shrub.sad"]
    assert result.last_val["shrub.sad"] == val["shrub.sad"]


@pytest.mark.parametrize("protocols, key", [
    ("{rough: {val_rough_trimap_prob: 2}}", "val_protocols.rough: val_rough_trimap_prob: must be in"),
    ("{rough: {out_size: 64}}", "val_protocols.rough: out_size: not a validation key"),
    ("{shrub: {val_recipes: {feathers: 1}}}", "val_protocols.shrub: val_recipes: unknown recipe"),
])
def test_bad_validation_protocol_is_a_config_error_naming_it(protocols, key):
    with pytest.raises(ConfigError, match=key):
        load_config(TINY, [f"data.val_protocols={protocols}"])


# ---------------------------------------------------------------------------------------------
# weight average (train.ema_decay)


def _floats(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v for k, v in sd.items() if v.is_floating_point()}


def test_weight_average_is_the_moving_average_of_the_trained_weights(tmp_path):
    cfg = tiny_cfg(tmp_path, "train.steps=3", "train.ema_decay=0.75", "train.ckpt_every=1",
                   "train.keep_states=5", "train.val_every=3")
    events = []
    train(cfg, events.append, train_set=DiscSet(), val_set=VAL, protocol_sets={"disc": VAL[:1]})
    assert events[0].metrics["ema"] == {"decay": 0.75, "since": 0}
    states = [load_training_state(p) for p in sorted((tmp_path / "states").glob("state_*.safetensors"))]
    assert [s["step"] for s in states] == [1, 2, 3]
    for prev, now in zip(states, states[1:]):
        avg = now["ema"]["model"]
        for k, w in _floats(now["model"]).items():
            expect = 0.75 * prev["ema"]["model"][k] + 0.25 * w
            assert torch.allclose(avg[k], expect, atol=1e-7, rtol=1e-6), k
            # not simply the weights (the first step moved them)
        for k, v in now["model"].items():
            if not v.is_floating_point():
                assert torch.equal(avg[k], v), k  # batch norm's counters are copied
    last = states[-1]
    assert any(not torch.equal(last["ema"]["model"][k], v) for k, v in _floats(last["model"]).items())
    # Validation scores both: the trained weights as before, the average under ema.
    val = [r for r in read_log(tmp_path) if r["kind"] == "val"][-1]
    for key in ("sad", "disc.sad", "ema.sad", "ema.disc.sad", "ema.loss"):
        assert key in val and np.isfinite(val[key]), key
    assert val["sad"] != val["ema.sad"]


def test_weight_average_resumes_exactly_and_starts_where_a_run_without_one_resumes(tmp_path):
    extra = ("train.steps=6", "train.ema_decay=0.9")
    straight = train(tiny_cfg(tmp_path / "a", *extra), train_set=DiscSet(), val_set=VAL)
    train(tiny_cfg(tmp_path / "b", *extra), train_set=DiscSet(), val_set=VAL, should_stop=StopAfter(3))
    split = train(tiny_cfg(tmp_path / "b", *extra), train_set=DiscSet(), val_set=VAL)
    a, b = load_training_state(straight.state_path), load_training_state(split.state_path)
    for k, v in a["ema"]["model"].items():
        assert torch.equal(v, b["ema"]["model"][k]), k
    assert a["ema"]["since"] == b["ema"]["since"] == 0

    # A run that kept no average switches one on at a resume: it starts from the weights there.
    train(tiny_cfg(tmp_path / "c", "train.steps=6"), train_set=DiscSet(), val_set=VAL, should_stop=StopAfter(3))
    before = load_training_state(tmp_path / "c")
    assert before["ema"] is None and before["step"] == 3
    events = []
    after = train(tiny_cfg(tmp_path / "c", "train.steps=4", "train.ema_decay=0.9"), events.append,
                  train_set=DiscSet(), val_set=VAL)
    assert events[0].metrics["ema"] == {"decay": 0.9, "since": 3}
    st = load_training_state(after.state_path)
    for k, w in _floats(st["model"]).items():
        assert torch.allclose(st["ema"]["model"][k], 0.9 * before["model"][k] + 0.1 * w, atol=1e-7, rtol=1e-6), k


def test_export_writes_the_average_unless_told_raw(tmp_path, capsys):
    result = train(tiny_cfg(tmp_path / "run", "train.steps=3", "train.ema_decay=0.5"), train_set=DiscSet(), val_set=VAL)
    state = load_training_state(result.state_path)
    for weights, source in (("auto", state["ema"]["model"]), ("raw", state["model"])):
        out = tmp_path / f"{weights}.safetensors"
        assert cli.main(["export", str(tmp_path / "run"), "--out", str(out), "--weights", weights]) == 0
        model, ckpt = load_model(out, expect="tiny")
        assert ckpt.provenance["weights"] == ("trained" if weights == "raw" else
                                              "exponential moving average (decay 0.5, since step 0)")
        for k, v in _floats(source).items():
            assert torch.allclose(model.state_dict()[k], v, atol=2e-3, rtol=1e-3), k
    # The loop's own export is the average; the two exports differ.
    _, loop = load_model(result.export_path)
    assert loop.provenance["weights"].startswith("exponential moving average")
    _, raw = load_model(tmp_path / "raw.safetensors")
    assert any(not torch.equal(v, raw.state_dict[k]) for k, v in loop.state_dict.items())
    # A state without an average cannot export one: one line, exit 1.
    plain = train(tiny_cfg(tmp_path / "plain", "train.steps=1"), train_set=DiscSet(), val_set=VAL)
    with pytest.raises(TrainingError, match="no weight average"):
        export_inference_checkpoint(plain.state_path, tmp_path / "x.safetensors", weights="ema")
    capsys.readouterr()
    assert cli.main(["export", str(tmp_path / "plain"), "--out", str(tmp_path / "x.safetensors"), "--weights", "ema"]) == 1
    err = capsys.readouterr().err.strip()
    assert "no weight average" in err and "\n" not in err and not (tmp_path / "x.safetensors").exists()


def test_compact_state_keeps_the_average_in_half_precision_and_resumes_it(tmp_path):
    extra = ("train.steps=6", "train.ema_decay=0.9")
    first = train(tiny_cfg(tmp_path / "run", *extra), train_set=DiscSet(), val_set=VAL, should_stop=StopAfter(3))
    compact = tmp_path / "compact.safetensors"
    assert cli.main(["compact", str(tmp_path / "run"), "--out", str(compact)]) == 0
    full, small = load_training_state(first.state_path), load_training_state(compact)
    assert small["optimizer"] is None and small["ema"]["since"] == 0
    for k, v in full["ema"]["model"].items():
        kept = small["ema"]["model"][k]
        if v.is_floating_point():
            assert kept.dtype == torch.float16 and torch.equal(kept, v.half()), k
        else:
            assert torch.equal(kept, v), k
    assert compact.stat().st_size < 0.5 * first.state_path.stat().st_size
    events = []
    second = train(tiny_cfg(tmp_path / "fresh", *extra, f"train.fallback_state={compact}"), events.append,
                   train_set=DiscSet(), val_set=VAL)
    assert events[0].metrics["ema"] == {"decay": 0.9, "since": 0} and second.step == 6
    st = load_training_state(second.state_path)
    assert all(v.dtype == torch.float32 for v in _floats(st["ema"]["model"]).values())
