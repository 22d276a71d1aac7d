"""The shipped training recipes: flat, and the starter's pinned to the weights it started from."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from training.config import CONFIG_DIR, load_config
from training.train import train
from vfxmatte.checkpoint import file_sha256, load_checkpoint, save_checkpoint
from vfxmatte.errors import CheckpointError, ConfigError
from vfxmatte.model import build_model

STARTER_RECIPE = CONFIG_DIR / "starter_v11_cpu.yaml"
V10_RECIPE = CONFIG_DIR / "starter_v10.yaml"
TINY = CONFIG_DIR / "tiny.yaml"


def _inherits(path: Path) -> list[str]:
    parents = (yaml.safe_load(path.read_text()) or {}).get("inherit", [])
    return [parents] if isinstance(parents, str) else list(parents)


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIG_DIR.glob("*.yaml")))
def test_shipped_recipes_inherit_base_at_most(name):
    parents = _inherits(CONFIG_DIR / name)
    assert parents in ([], ["base.yaml"]), f"{name} inherits {parents}"
    assert _inherits(CONFIG_DIR / "base.yaml") == []


#: sha256 of starter v9 and v10 (git show 2061f1b: / a1f026c:vfxmatte/weights/starter.safetensors).
V9_SHA = "0b5a2295ecd9df0173885c27a134ad03ec76e563956b083bdad1c2fa5c15571e"
V10_SHA = "5a165f8c4a092cab264372bf5e02f0c92a10fc12d6468191bebc8693f5ab1b13"


def test_starter_recipe_is_the_config_the_shipped_starter_was_trained_with(monkeypatch):
    """v11 is 0.4 v9 + 0.6 the step-9600 weights of the v11_cpu run, which started from v10."""
    monkeypatch.delenv("VFXMATTE_BACKGROUNDS", raising=False)  # the recipe's default data path
    assert _inherits(STARTER_RECIPE) == []
    recipe = load_config(STARTER_RECIPE).to_dict()
    mix = load_checkpoint("starter").provenance["lineage"]["interpolation"]
    assert mix["weight"] == 0.6 and mix["base"]["sha256"] == V9_SHA
    run = mix["tuned"]["provenance"]
    assert run["steps"] == 9600 and run["weights"] == "trained"
    assert recipe.pop("init_checkpoint_sha256") == run["initialised_from"]["sha256"] == V10_SHA
    # The run read v10 from the tree; the recipe names the file git history gives back.
    expected = dict(run["config"])
    assert recipe.pop("init_checkpoint") != expected.pop("init_checkpoint")
    expected.pop("init_checkpoint_sha256")
    assert recipe == expected


def test_v10_recipe_is_the_config_v10_was_trained_with(monkeypatch):
    monkeypatch.delenv("VFXMATTE_BACKGROUNDS", raising=False)
    recipe = load_config(V10_RECIPE).to_dict()
    fine_tune = load_checkpoint("starter").provenance["lineage"]["interpolation"]["tuned"]["provenance"]
    v10 = fine_tune["initialised_from"]["provenance"]["lineage"]["fine_tune"]
    run = v10["tuned"]["provenance"]
    # The run named its start "starter" (v9 then); the recipe pins that file by its hash.
    assert recipe.pop("init_checkpoint_sha256") == v10["base"]["sha256"] == run["initialised_from"]["sha256"] == V9_SHA
    assert recipe.pop("init_checkpoint") != "starter"
    expected = dict(run["config"])
    expected.pop("init_checkpoint")
    # Keys added to the schema after v10, at defaults that change nothing about that run.
    for section, key, default in LATER_KEYS:
        assert recipe[section].pop(key) == default and key not in expected[section]
    assert recipe == expected


#: Config keys that did not exist when v10 was trained: (section, key, default).
LATER_KEYS = (("data", "val_protocols", {}), ("train", "fallback_state", None), ("train", "rewarm_steps", 50),
              ("train", "ema_decay", None), ("loss", "grad_weight", 0.0))


# ---------------------------------------------------------------------------------------------
# init_checkpoint_sha256


class OneDisc:
    """Two copies of a soft disc over flat grey: enough data for one tiny training step."""

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        s = 64
        yy, xx = torch.meshgrid(torch.arange(s) / s, torch.arange(s) / s, indexing="ij")
        alpha = ((0.3 - ((xx - 0.5) ** 2 + (yy - 0.5) ** 2).sqrt()) / 0.05 + 0.5).clamp(0, 1)[None]
        image = alpha * torch.tensor([0.9, 0.6, 0.3]).view(3, 1, 1) + (1 - alpha) * 0.2
        unknown = ((alpha > 0) & (alpha < 1)).float()
        tri = torch.cat([(alpha == 0).float() * (1 - unknown), unknown, (alpha == 1).float() * (1 - unknown)])
        return {"image": image, "trimap_sp": tri, "trimap_tcp": tri.clone(), "alpha": alpha,
                "fg": torch.ones(3, s, s), "bg": torch.full((3, s, s), 0.2)}


@pytest.fixture
def init_file(tmp_path):
    return save_checkpoint(tmp_path / "init.safetensors", build_model("tiny"))


def _pinned(tmp_path: Path, init: Path, sha: str):
    return load_config(TINY, [f"train.out_dir={tmp_path / 'run'}", "train.steps=1", "train.val_every=1",
                              f"init_checkpoint={init}", f"init_checkpoint_sha256={sha}"])


def test_pinned_init_checkpoint_that_matches_trains_and_records_its_hash(tmp_path, init_file):
    sha = file_sha256(init_file)
    result = train(_pinned(tmp_path, init_file, sha.upper()), train_set=OneDisc(), val_set=[OneDisc()[0]])
    assert result.reason == "done" and result.step == 1
    assert load_checkpoint(result.export_path).provenance["initialised_from"]["sha256"] == sha


def test_pinned_init_checkpoint_that_differs_fails_before_anything_is_written(tmp_path, init_file):
    sha = file_sha256(init_file)
    wrong = "f" * 64
    with pytest.raises(CheckpointError) as info:
        train(_pinned(tmp_path, init_file, wrong), train_set=OneDisc(), val_set=[OneDisc()[0]])
    msg = str(info.value)
    assert str(init_file) in msg and "init_checkpoint_sha256" in msg and wrong in msg and sha in msg
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["init_checkpoint=x.safetensors", "init_checkpoint_sha256=abc"], "init_checkpoint_sha256: must be a sha256"),
        ([f"init_checkpoint_sha256={'a' * 64}"], "init_checkpoint_sha256: pins a file, but init_checkpoint is not set"),
    ],
)
def test_bad_pin_is_a_config_error_naming_the_key(overrides, key):
    with pytest.raises(ConfigError, match=key):
        load_config(TINY, overrides)


def test_v11_cpu_recipe_fine_tunes_v10_on_every_recipe_and_protocol(monkeypatch):
    from training.synthetic import RECIPES

    monkeypatch.delenv("VFXMATTE_BACKGROUNDS", raising=False)
    path = CONFIG_DIR / "starter_v11_cpu.yaml"
    assert _inherits(path) == []
    cfg = load_config(path)
    assert cfg.init_checkpoint_sha256 == V10_SHA  # v10, the starter shipped when the run began
    assert cfg.train.fallback_state and (CONFIG_DIR.parents[1] / cfg.train.fallback_state).is_file()
    # Rehearses every earlier recipe and adds the real-texture ones; from step 8687 every recipe has a share,
    # hair the largest (the example shot's subject).
    recipes = cfg.data.synthetic.recipes
    assert set(recipes) == set(RECIPES) and min(recipes.values()) > 0
    assert max(recipes, key=recipes.get) == "hair"
    # The protocols of training/PROTOCOL.md, each its own set; the main one is the paper protocol.
    assert cfg.data.val_recipes is None and cfg.data.val_rough_trimap_prob == 0 and cfg.data.val_held_object_prob == 0
    assert set(cfg.data.val_protocols) == {"rough", "very_rough", "held", "shrub", "textured", "mesh", "yarn", "transparent", "refractive", "fabric", "hair"}
    assert cfg.data.protocol("refractive").val_recipes == {"refractive": 1}
    assert cfg.data.protocol("rough").rough_trimap_kernel == (15, 95)
    assert cfg.data.protocol("mesh").val_recipes == {"mesh": 1}
    # One core for the run (a trainer thread, a loader process), resumable from git.
    assert cfg.train.threads == 1 and cfg.data.workers == 1 and cfg.train.amp == "bf16"
    assert cfg.train.resume == "auto" and cfg.train.fallback_state == "training/state/v11_cpu/state.safetensors"
    assert cfg.train.val_every % cfg.train.ckpt_every == 0 and cfg.train.ckpt_every <= 150
