from dataclasses import replace

import pytest
import torch

from vfxmatte.errors import CheckpointError, InputError
from vfxmatte.model import (
    R34,
    SMALL,
    TINY,
    TCPMatting,
    TCPMattingConfig,
    alpha_from_logits,
    build_model,
    load_torchvision_weights,
    tcp_matting_r34,
    tcp_matting_small,
    tcp_matting_tiny,
)
from vfxmatte.model.resnet import ResNetEncoder


def _inputs(b=2, h=70, w=90, dtype=torch.float32):
    img = torch.rand(b, 3, h, w, dtype=dtype)
    cls = torch.randint(0, 3, (b, h, w))
    tri = torch.nn.functional.one_hot(cls, 3).permute(0, 3, 1, 2).to(dtype)
    return img, tri


@pytest.mark.parametrize("h,w", [(64, 64), (70, 90), (33, 47), (20, 17)])
def test_output_shape_dtype_and_range_for_any_size(h, w):
    m = tcp_matting_tiny().eval()
    img, tri = _inputs(2, h, w)
    with torch.no_grad():
        a = m(img, tri)
    assert a.shape == (2, 1, h, w)
    assert a.dtype == torch.float32
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0


def test_named_constructors_build_their_configs():
    assert tcp_matting_tiny().config == TINY
    assert tcp_matting_small().config == SMALL
    # The paper's model: ResNet-34 layout, torchvision widths.
    assert R34.encoder_layers == (3, 4, 6, 3) and R34.encoder_widths == (64, 64, 128, 256, 512)
    n_small = sum(p.numel() for p in tcp_matting_small().parameters())
    n_r34 = sum(p.numel() for p in tcp_matting_r34().parameters())
    assert n_small < n_r34 / 4


def test_unknown_variant_is_a_typed_error():
    with pytest.raises(InputError, match="unknown model variant 'r50'"):
        build_model("r50")


def test_wrong_channel_count_and_mismatched_shapes_raise():
    m = tcp_matting_tiny()
    img, tri = _inputs()
    with pytest.raises(InputError, match="image"):
        m(torch.rand(2, 4, 70, 90), tri)
    with pytest.raises(InputError, match="trimap"):
        m(img, tri[:, :1])
    with pytest.raises(InputError, match="tcp_trimap"):
        m(img, tri, tri[:, :, :10])


def test_separate_tcp_trimap_changes_only_through_tcp():
    m = tcp_matting_tiny().eval()
    img, tri = _inputs()
    _, tri2 = _inputs()
    with torch.no_grad():
        same = m.forward_paths(img, tri)
        diff = m.forward_paths(img, tri, tri2)
    assert torch.equal(same.sp_logit, diff.sp_logit)
    assert not torch.equal(same.tcp_logit, diff.tcp_logit)


def test_alpha_mapping_is_tanh_of_sum_rescaled():
    s = torch.tensor([-100.0, 0.0, 100.0])
    t = torch.zeros(3)
    assert torch.allclose(alpha_from_logits(s, t), torch.tensor([0.0, 0.5, 1.0]))


def test_gradients_reach_both_paths_and_w_c():
    m = tcp_matting_tiny().train()
    img, tri = _inputs(2, 64, 64)
    m(img, tri).mean().backward()
    assert m.w_c.grad is not None and m.w_c.grad.abs() > 0
    assert m.semantic.encoder.conv1.weight.grad.abs().sum() > 0
    assert m.semantic.head.weight.grad.abs().sum() > 0
    assert m.tcp.extract[0][0].weight.grad.abs().sum() > 0
    assert m.tcp.refine[-1].weight.grad.abs().sum() > 0


def test_fusion_add_and_stem_source_variants_run():
    cfg = TCPMattingConfig(**{**TINY.__dict__, "name": "t2", "fusion": "add", "ffu_source": "stem", "norm": "group"})
    m = build_model(cfg).eval()
    img, tri = _inputs(1, 40, 40)
    with torch.no_grad():
        assert m(img, tri).shape == (1, 1, 40, 40)


def test_torchvision_state_dict_initialises_encoder_and_zeroes_trimap_filters():
    # A state_dict with torchvision's resnet34 names and shapes, made by a 3-channel encoder.
    tv = ResNetEncoder((3, 4, 6, 3), (64, 64, 128, 256, 512), 3, torch.nn.BatchNorm2d)
    sd = {k: torch.randn_like(v) if v.is_floating_point() else v for k, v in tv.state_dict().items()}
    sd["fc.weight"] = torch.zeros(1000, 512)
    m = tcp_matting_r34()
    left = load_torchvision_weights(m.semantic.encoder, sd)
    assert left == []
    w = m.semantic.encoder.conv1.weight
    assert w.shape[1] == 6
    assert torch.equal(w[:, :3], sd["conv1.weight"])
    assert torch.count_nonzero(w[:, 3:]) == 0
    assert torch.equal(m.semantic.encoder.layer4[2].conv2.weight, sd["layer4.2.conv2.weight"])


def test_cat_channels_equals_torch_cat_in_every_layout():
    from vfxmatte.model.blocks import cat_channels

    g = torch.Generator().manual_seed(0)
    a = torch.rand(2, 3, 17, 9, generator=g)
    b = torch.rand(2, 5, 17, 9, generator=g).half()
    cl = torch.channels_last
    with torch.inference_mode():
        for x, y in ((a, b), (a.contiguous(memory_format=cl), b.contiguous(memory_format=cl))):
            out = cat_channels([x, y])
            assert out.dtype == torch.float32 and torch.equal(out, torch.cat([x, y], dim=1))
        assert cat_channels([a.contiguous(memory_format=cl), b]).is_contiguous(memory_format=cl)
    # With autograd it is torch.cat, gradients included.
    x = a.clone().requires_grad_()
    cat_channels([x.contiguous(memory_format=cl), b.float()]).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(a))


def test_sp_downsample_runs_the_semantic_path_on_the_pooled_input():
    base = tcp_matting_tiny().eval()
    cfg = replace(base.config, name="tiny_sp2", sp_downsample=2)
    m = TCPMatting(cfg).eval()
    m.load_state_dict(base.state_dict())  # same tensors: a warm start needs no conversion
    assert m.stride == 64 and base.stride == 32
    img, tri = _inputs(2, 70, 90)
    with torch.no_grad():
        out = m.forward_paths(img, tri)
        # By hand: pad to 64, pool by 2 for the SP, upsample its logit, TCP at full resolution.
        x = torch.cat([(img - m.mean) / m.std, tri], 1)
        x = torch.nn.functional.pad(x, (0, 128 - 90, 0, 128 - 70), mode="reflect")
        sp_logit, feat = m.semantic(torch.nn.functional.avg_pool2d(x, 2))
        assert feat.shape[-2:] == (16, 16)  # layer1 of a 64 x 64 input
        sp_logit = torch.nn.functional.interpolate(sp_logit, size=(128, 128), mode="bilinear", align_corners=False)
        tcp_logit = m.tcp(x, feat)
    assert out.alpha.shape == (2, 1, 70, 90)
    assert torch.allclose(out.sp_logit, sp_logit[..., :70, :90], atol=1e-5)
    assert torch.allclose(out.tcp_logit, tcp_logit[..., :70, :90], atol=1e-5)
    with torch.no_grad():
        assert not torch.allclose(base.forward_paths(img, tri).sp_logit, out.sp_logit, atol=1e-3)


@pytest.mark.parametrize("k", [0, 3, 8])
def test_sp_downsample_rejects_other_factors(k):
    with pytest.raises(CheckpointError, match="sp_downsample"):
        replace(TINY, sp_downsample=k)
