"""Batch-norm folding for inference: same function, no norm layers left."""

import dataclasses

import numpy as np
import pytest
import torch
from torch import nn

from vfxmatte.engine import MattingSession
from vfxmatte.model import SMALL, TINY, TCPMatting, build_model
from vfxmatte.model.fuse import count_batchnorm, fold_batchnorm

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _inputs(h=96, w=128, seed=1):
    g = torch.Generator().manual_seed(seed)
    img = torch.rand(2, 3, h, w, generator=g)
    lab = torch.randint(0, 3, (2, h, w), generator=g)
    tri = torch.nn.functional.one_hot(lab, 3).permute(0, 3, 1, 2).float()
    return img, tri


@pytest.mark.parametrize("cfg", [TINY, SMALL], ids=["tiny", "small"])
def test_folded_network_matches_and_has_no_batchnorm(cfg, randomise_norms):
    torch.manual_seed(0)
    model = randomise_norms(TCPMatting(cfg))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batchnorm(model)
    assert count_batchnorm(model) > 20 and count_batchnorm(folded) == 0
    img, tri = _inputs()
    with torch.no_grad():
        ref, out = model(img, tri), folded(img, tri)
    assert torch.allclose(ref, out, atol=2e-5), (ref - out).abs().max()
    # The caller's model is untouched (still trainable, still saves the checkpoint layout).
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_group_norm_layers_are_left_in_place(randomise_norms):
    torch.manual_seed(0)
    model = randomise_norms(TCPMatting(dataclasses.replace(TINY, norm="group")))
    folded = fold_batchnorm(model)
    groups = sum(isinstance(m, nn.GroupNorm) for m in folded.modules())
    assert groups == sum(isinstance(m, nn.GroupNorm) for m in model.modules()) > 0
    assert count_batchnorm(folded) == 0  # the encoder's batch norms still fold
    img, tri = _inputs(64, 64)
    with torch.no_grad():
        assert torch.allclose(model(img, tri), folded(img, tri), atol=2e-5)


def test_engine_folds_by_default_and_matches_unfolded(rng, randomise_norms):
    torch.manual_seed(0)
    model = randomise_norms(build_model("tiny"))
    img = rng.random((120, 150, 3)).astype(np.float32)
    tri = np.full((120, 150), 0.5, np.float32)
    tri[:20] = 0.0
    tri[-20:] = 1.0
    fast = MattingSession(model, device="cpu", precision="fp32", tile_size=64, overlap=16)
    plain = MattingSession(model, device="cpu", precision="fp32", tile_size=64, overlap=16, fold_norms=False)
    assert count_batchnorm(fast.model) == 0 and count_batchnorm(plain.model) > 0
    np.testing.assert_allclose(fast.matte(img, tri), plain.matte(img, tri), atol=2e-5)
