"""Block-sparse inference: the dense network's alpha inside the unknown band, 0 outside."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vfxmatte.engine import MattingSession
from vfxmatte.errors import ArchitectureError, InputError
from vfxmatte.model import SMALL, TINY, TCPMatting
from vfxmatte.model import halo, sparse
from vfxmatte.model.blocks import ConvNormReLU, ResidualBlock
from vfxmatte.model.fuse import fold_batchnorm
from vfxmatte.trimap import BG_CHANNEL, FG_CHANNEL, PALETTE, UNKNOWN_CHANNEL

U = slice(UNKNOWN_CHANNEL, UNKNOWN_CHANNEL + 1)  # the one-hot trimap's unknown band, [B, 1, H, W]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def net(randomise_norms):
    """``net(cfg=TINY)``: a network with non-trivial weights and norm statistics, in eval mode."""

    def make(cfg=TINY, seed=0) -> TCPMatting:
        torch.manual_seed(seed)
        model = randomise_norms(TCPMatting(cfg), seed)
        with torch.no_grad():
            model.tcp.ffu.w_c.fill_(0.7)
        return model

    return make


def _trimaps(h: int, w: int) -> torch.Tensor:
    """Two one-hot trimaps [2, 3, H, W]: a thin ring band, and a band along the frame's left
    and bottom edges plus a blob, so blocks at the border and deep inside are both exercised."""
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h * 0.45, xx - w * 0.55)
    ring = np.where(r < h * 0.25, FG_CHANNEL, BG_CHANNEL)
    ring[np.abs(r - h * 0.25) < 3] = UNKNOWN_CHANNEL
    edge = np.full((h, w), BG_CHANNEL, np.int64)
    edge[: h // 2, : w // 2] = FG_CHANNEL
    edge[:, :5] = UNKNOWN_CHANNEL
    edge[-4:, :] = UNKNOWN_CHANNEL
    edge[(yy - h * 0.7) ** 2 + (xx - w * 0.75) ** 2 < 60] = UNKNOWN_CHANNEL
    lab = torch.from_numpy(np.stack([ring, edge]))  # channel index per pixel
    return F.one_hot(lab, 3).permute(0, 3, 1, 2).float()


def _inputs(h=150, w=200, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, h, w, generator=g), _trimaps(h, w)


def _check_matches(model, img, tri, atol=2e-5, **kw):
    with torch.inference_mode():
        dense = model(img, tri)
        fast = model.forward_sparse(img, tri, **kw)
    band = tri[:, U] > 0.5
    assert fast.shape == dense.shape
    assert torch.all(fast[~band] == 0)
    err = (fast - dense)[band].abs().max().item()
    assert err <= atol, err
    return err


@pytest.mark.parametrize("fold", [False, True], ids=["bn", "folded"])
@pytest.mark.parametrize("block", [16, 8, 32])
def test_sparse_equals_dense_inside_the_band(fold, block, net):
    model = net()
    model = fold_batchnorm(model) if fold else model
    img, tri = _inputs()
    _check_matches(model, img, tri, block=block, dense_above=1.0)


def test_sparse_equals_dense_channels_last_small_variant(net):
    model = fold_batchnorm(net(SMALL)).to(memory_format=torch.channels_last)
    img, tri = _inputs(96, 130)
    cl = torch.channels_last
    _check_matches(model, img.contiguous(memory_format=cl), tri.contiguous(memory_format=cl), dense_above=1.0)


@pytest.mark.parametrize(
    "change",
    [{"fusion": "add"}, {"ffu_source": "stem"}, {"skip_convs": 1, "tcp_res_blocks": 1}, {"tcp_res_blocks": 3}],
    ids=["add", "stem", "shallow", "deep"],
)
def test_sparse_follows_the_architecture(change, net):
    model = net(dataclasses.replace(TINY, **change))
    img, tri = _inputs(130, 170)
    _check_matches(model, img, tri, dense_above=1.0)


def test_a_reach_one_short_breaks_the_band_edge(monkeypatch, net):
    """The comparison above can fail: computing one pixel too little around the band shows."""
    model = net()
    img, tri = _inputs()
    blocks = sparse.BlockGrid.blocks
    monkeypatch.setattr(sparse.BlockGrid, "blocks", lambda self, reach: blocks(self, max(reach - 1, 0)))
    with torch.inference_mode():
        dense = model(img, tri)
        fast = model.forward_sparse(img, tri, block=8, dense_above=1.0)
    band = tri[:, U] > 0.5
    # Too short a reach reads block interiors no layer computed: stale values, possibly NaN.
    wrong = torch.nan_to_num((fast - dense)[band].abs(), nan=float("inf"))
    assert wrong.max().item() > 1e-3


def test_blocks_declare_their_reach_from_their_kernels():
    model = TCPMatting(TINY)
    assert ConvNormReLU(4, 4, "batch").reach == 1 and ConvNormReLU(4, 4, "batch", kernel=5).reach == 2
    assert ResidualBlock(4, "batch").reach == 2
    # one pixel per 3x3 conv: extraction conv, two per residual block, two refinement convs
    assert model.tcp.reach == model.tcp_reach == 1 + 2 * TINY.tcp_res_blocks + 2
    assert TCPMatting(dataclasses.replace(TINY, tcp_res_blocks=3)).tcp_reach == 9
    assert model.semantic.stages[-1].reach == TINY.skip_convs + 2


def test_folding_is_a_property_of_the_block(net):
    model = net()
    folded = fold_batchnorm(model)
    blocks = [m for m in folded.tcp.modules() if isinstance(m, (ConvNormReLU, ResidualBlock))]
    assert blocks and all(b.folded for b in blocks)
    assert not any(b.folded for b in model.tcp.modules() if isinstance(b, (ConvNormReLU, ResidualBlock)))
    gn = fold_batchnorm(net(dataclasses.replace(TINY, norm="group")))
    assert not any(b.folded for b in gn.tcp.modules() if isinstance(b, (ConvNormReLU, ResidualBlock)))


def test_block_sparse_refuses_layers_wider_than_its_halo(net):
    """Halo patches carry one pixel: a 5x5 layer cannot run block-wise, and says so."""
    layer = ConvNormReLU(3, 4, "batch", kernel=5).eval()
    patches = torch.rand(2, 3, 10, 10)
    with torch.inference_mode(), pytest.raises(ArchitectureError, match="3x3"):
        layer.forward_patches(patches)


def test_dense_fallback_for_wide_bands_groupnorm_and_training(net):
    img, tri = _inputs()
    model = net()
    assert sparse.needed_fraction((tri[:, U] > 0.5).float()[..., :128, :192], 16, 7) < 0.9
    _check_matches(model, img, tri, dense_above=0.0)  # every frame counts as wide: dense
    gn = net(dataclasses.replace(TINY, norm="group"))
    assert not sparse.sparse_supported(gn)
    _check_matches(gn, img, tri, dense_above=1.0)
    model.train()
    assert not sparse.sparse_supported(model)


def test_empty_band_and_bad_block(net):
    model = net()
    img, _ = _inputs(64, 64)
    tri = torch.zeros(2, 3, 64, 64)
    tri[:, FG_CHANNEL] = 1.0
    with torch.inference_mode():
        assert torch.all(model.forward_sparse(img, tri, dense_above=1.0) == 0)
        for bad in (3, 12, 64, 0):
            with pytest.raises(InputError, match="block"):
                model.forward_sparse(img, tri, block=bad)


def test_needed_fraction_counts_blocks_within_reach():
    band = torch.zeros(1, 1, 64, 64)
    band[0, 0, 20, 20] = 1.0  # block (1, 1) of 16 px
    assert sparse.needed_fraction(band, 16, 0) == 1 / 16
    assert sparse.needed_fraction(band, 16, 4) == 1 / 16  # block 0 ends at pixel 15: 5 away
    assert sparse.needed_fraction(band, 16, 5) == 4 / 16  # blocks (0|1, 0|1)
    assert sparse.needed_fraction(band, 16, 11) == 4 / 16  # block 2 starts at 32: 12 away
    assert sparse.needed_fraction(band, 16, 12) == 9 / 16


def test_engine_sparse_matte_equals_dense(rng, net):
    model = net(SMALL)
    h, w = 200, 260
    img = rng.random((h, w, 3)).astype(np.float32)
    lab = _trimaps(h, w)[0].argmax(0).numpy()
    tri = np.choose(lab, PALETTE).astype(np.float32)
    kw = dict(device="cpu", tile_size=128, overlap=32)
    fast = MattingSession(model, sparse=True, **kw)
    slow = MattingSession(model, sparse=False, **kw)
    a, b = fast.matte(img, tri), slow.matte(img, tri)
    np.testing.assert_allclose(a, b, atol=2e-5)
    assert not np.allclose(a[tri == 0.5], 0.5)  # a real prediction, not a constant


def test_fused_cpu_convs_match_the_plain_ones(net, monkeypatch):
    """On the CPU the folded conv+ReLU and conv+add+ReLU layers run as single oneDNN calls;
    without those ops (other builds) the plain conv, add and ReLU give the same alpha."""
    assert halo._FUSED_CONV is not None  # this build has them: the fused path is what ran above
    model = fold_batchnorm(net(SMALL))
    img, tri = _inputs(96, 128)
    with torch.inference_mode():
        fused = model.forward_sparse(img, tri, dense_above=1.0)
        monkeypatch.setattr(halo, "_FUSED_CONV", None)
        plain = model.forward_sparse(img, tri, dense_above=1.0)
    assert torch.allclose(fused, plain, atol=1e-5)


def test_engine_default_is_sparse_on_the_cpu_only(net):
    model = net()
    assert MattingSession(model, device="cpu").sparse
    assert not MattingSession(model, device="cpu", sparse=False).sparse


def test_the_band_is_one_hots_unknown_channel_as_the_losses_read_it(net):
    """The model's band and the losses' unknown region U are the same channel of the trimap
    :func:`vfxmatte.trimap.one_hot` makes (one named constant)."""
    from training.losses import unknown_mask
    from vfxmatte.trimap import BG, FG, UNKNOWN, one_hot

    t = np.full((64, 96), BG, np.float32)
    t[:, 48:] = FG
    t[20:40, 30:70] = UNKNOWN
    tri = torch.from_numpy(one_hot(t))[None]
    img = torch.rand(1, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    with torch.inference_mode():
        alpha = net().forward_sparse(img, tri, dense_above=1.0)
    assert np.array_equal(alpha[0, 0].numpy() != 0, t == UNKNOWN)
    assert np.array_equal(unknown_mask(tri)[0, 0].numpy(), t == UNKNOWN)
    assert [PALETTE[c] for c in (BG_CHANNEL, UNKNOWN_CHANNEL, FG_CHANNEL)] == [BG, UNKNOWN, FG]
