import pickle
from dataclasses import replace

import pytest
import torch

from vfxmatte.errors import ArchitectureError, CheckpointError, InputError, UnknownVariantError
from vfxmatte.model import (
    R34,
    SMALL,
    TINY,
    TCPMattingConfig,
    alpha_from_logits,
    build_model,
    load_torchvision_weights,
    tcp_matting_r34,
    tcp_matting_small,
    tcp_matting_tiny,
    variant,
)
from vfxmatte.model.blocks import make_norm
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
    with pytest.raises(UnknownVariantError, match=r"unknown model variant 'r50' \(choose from r34, small, tiny\)") as e:
        build_model("r50")
    assert e.value.name == "r50" and e.value.choices == ("r34", "small", "tiny")
    assert isinstance(e.value, CheckpointError)
    back = pickle.loads(pickle.dumps(e.value))
    assert (str(back), back.name, back.choices) == (str(e.value), "r50", ("r34", "small", "tiny"))
    with pytest.raises(UnknownVariantError):
        variant("small_sp2")  # measured, not shipped: not a variant
    assert variant("small") is SMALL


def test_the_network_has_one_stride():
    assert tcp_matting_small().stride == SMALL.stride == 32


@pytest.mark.parametrize(
    "change, key",
    [({"norm": "layer"}, "norm"), ({"fusion": "mul"}, "fusion"), ({"ffu_source": "layer2"}, "ffu_source"),
     ({"encoder_layers": (1, 1, 1)}, "encoder_layers"), ({"decoder_widths": (8,) * 5}, "decoder_widths")],
)
def test_invalid_architecture_values_raise_naming_the_field(change, key):
    with pytest.raises(ArchitectureError, match=f"^{key}: "):
        replace(TINY, **change)
    with pytest.raises(ArchitectureError, match=f"^arch.json: {key}: "):
        TCPMattingConfig.from_dict({**TINY.to_dict(), **change}, source="arch.json")


def test_blocks_raise_typed_errors_for_what_they_cannot_build():
    with pytest.raises(ArchitectureError, match="norm: unknown norm 'layer'"):
        make_norm("layer", 8)
    with pytest.raises(ArchitectureError, match="encoder: needs 4 layer counts and 5 widths"):
        ResNetEncoder((1, 1), (8, 8, 8), 6, torch.nn.BatchNorm2d)


def test_legacy_sp_downsample_key_loads_only_as_a_no_op():
    stored = {**SMALL.to_dict(), "sp_downsample": 1}  # what earlier checkpoints store
    assert TCPMattingConfig.from_dict(stored, source="old.safetensors") == SMALL
    assert "sp_downsample" not in SMALL.to_dict()
    for k in (2, 4):
        with pytest.raises(ArchitectureError, match=rf"^old.safetensors: sp_downsample: {k} is not supported"):
            TCPMattingConfig.from_dict({**stored, "sp_downsample": k}, source="old.safetensors")


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


def test_the_model_package_raises_only_typed_errors():
    """Every ``raise`` in vfxmatte.model raises a VfxMatteError subclass (or re-raises)."""
    import ast
    import builtins
    from pathlib import Path

    import vfxmatte.model

    for path in Path(vfxmatte.model.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and isinstance(node.exc.func, ast.Name):
                assert not isinstance(getattr(builtins, node.exc.func.id, None), type), (path.name, node.lineno)
