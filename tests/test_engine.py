import copy

import cv2
import numpy as np
import pytest
import torch

from vfxmatte.engine import (
    DEFAULT_OVERLAP,
    DEFAULT_TILE,
    MattingSession,
    NumericMode,
    cpu_has_native_bf16,
    plan_tiles,
    resolve_precision,
    select_device,
    tile_weight,
    tiles_needing_inference,
)
from vfxmatte.errors import DeviceError, InputError, TrimapError
from vfxmatte.model import build_model


def _frame(h, w, rng, box=None):
    img = cv2.GaussianBlur(rng.random((h, w, 3)).astype(np.float32), (0, 0), 3)
    tri = np.zeros((h, w), np.float32)
    y0, y1, x0, x1 = box or (h // 4, 3 * h // 4, w // 4, 3 * w // 4)
    tri[y0:y1, x0:x1] = 0.5
    tri[y0 + (y1 - y0) // 4 : y1 - (y1 - y0) // 4, x0 + (x1 - x0) // 4 : x1 - (x1 - x0) // 4] = 1.0
    return img, tri


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model("tiny").eval()


def test_output_shape_dtype_and_known_region_passthrough(tiny, rng):
    img, tri = _frame(150, 230, rng)
    a = MattingSession(tiny, device="cpu", tile_size=64, overlap=16).matte(img, tri)
    assert a.shape == tri.shape and a.dtype == np.float32
    assert np.all(a[tri == 1.0] == 1.0) and np.all(a[tri == 0.0] == 0.0)
    u = a[tri == 0.5]
    assert u.min() >= 0 and u.max() <= 1 and u.std() > 0


def test_no_unknown_region_runs_no_tile(tiny, rng):
    img, _ = _frame(64, 64, rng)
    tri = np.zeros((64, 64), np.float32)
    tri[:32] = 1.0
    calls = []
    a = MattingSession(tiny, device="cpu").matte(img, tri, progress=lambda d, t: calls.append(t))
    assert calls == [] and np.array_equal(a, tri)


@pytest.mark.parametrize("tile,overlap", [(DEFAULT_TILE, DEFAULT_OVERLAP), (256, 64)])
def test_tiled_matches_untiled_inside_unknown(tiny, rng, tile, overlap):
    img, tri = _frame(1100, 1300, rng, box=(50, 1050, 60, 1250))
    untiled = MattingSession(tiny, device="cpu", tile_size=0).matte(img, tri)
    tiled = MattingSession(tiny, device="cpu", tile_size=tile, overlap=overlap, batch_size=3).matte(img, tri)
    d = np.abs(untiled - tiled)[tri == 0.5]
    assert d.mean() <= 2e-3 and d.max() <= 0.05, (d.mean(), d.max())


def test_only_tiles_touching_unknown_are_computed(rng):
    h, w = 2000, 2000
    tri = np.zeros((h, w), np.float32)
    tri[100:200, 100:200] = 0.5
    all_tiles = plan_tiles(h, w, 512, 128)
    needed = tiles_needing_inference(all_tiles, tri == 0.5, 128)
    assert len(all_tiles) == 25 and len(needed) == 1
    tri[:] = 0.5
    assert len(tiles_needing_inference(all_tiles, tri == 0.5, 128)) == 25


def test_tiles_are_stride_aligned_cover_every_pixel_and_are_feathered():
    h, w = 900, 1300  # not multiples of the stride: tiles cover the frame padded to 928 x 1312
    tiles = plan_tiles(h, w, 512, 128)
    hp, wp = 928, 1312
    acc = np.zeros((hp, wp), np.float32)
    assert {(t.h, t.w) for t in tiles} == {(tiles[0].h, tiles[0].w)}  # one size: tiles batch
    for t in tiles:
        assert t.h <= 512 and t.w <= 512
        assert t.y % 32 == 0 and t.x % 32 == 0  # the network is only shift-equivariant by its stride
        acc[t.y : t.y + t.h, t.x : t.x + t.w] += tile_weight(t, hp, wp, 128)
    assert acc.min() > 0.0  # every pixel gets weight from some tile (blending divides by acc)
    corner = tile_weight(tiles[0], hp, wp, 128)
    assert corner[0, 0] > 0 and corner[-1, -1] == 0.0  # frame border kept, inner edge dead
    assert corner[300, 200] > corner[400, 200]  # weight falls towards the inner edge


@pytest.mark.parametrize("h,w,tile,overlap", [(1080, 2048, 1024, 256), (2160, 4096, 1024, 256), (700, 3000, 512, 128), (1100, 1300, 1024, 256)])
def test_tiles_shrink_to_the_overlap_they_need(h, w, tile, overlap):
    tiles = plan_tiles(h, w, tile, overlap)
    ys, xs = sorted({t.y for t in tiles}), sorted({t.x for t in tiles})
    th, tw = tiles[0].h, tiles[0].w
    for starts, size, length in ((ys, th, -(-h // 32) * 32), (xs, tw, -(-w // 32) * 32)):
        assert starts[0] == 0 and starts[-1] + size == length  # covers the padded frame exactly
        gaps = [b - a for a, b in zip(starts, starts[1:])]
        assert all(size - g >= overlap for g in gaps)  # every neighbour pair keeps the overlap
        # ...and no more tile than needed: one stride smaller would break coverage or overlap.
        assert size == length or (length + (len(starts) - 1) * overlap) > len(starts) * (size - 32)
    assert len(tiles) * th * tw <= 1.7 * h * w  # 2K: 1.57x; was 2.8x with fixed 1024-px tiles


def test_crop_tile_reflects_past_the_frame_edge():
    from vfxmatte.engine import Tile, crop_tile

    a = np.arange(10 * 7, dtype=np.float32).reshape(10, 7)
    t = crop_tile(a, Tile(6, 2, 6, 5))  # 2 rows past the bottom, 0 past the right
    assert t.shape == (6, 5)
    assert np.array_equal(t[:4], a[6:10, 2:7])
    assert np.array_equal(t[4], a[8, 2:7]) and np.array_equal(t[5], a[7, 2:7])  # reflect


def test_coarse_all_unknown_trimap_still_gives_a_matte(tiny, rng):
    img, _ = _frame(96, 128, rng)
    tri = np.full((96, 128), 0.5, np.float32)
    a = MattingSession(tiny, device="cpu", tile_size=64, overlap=16).matte(img, tri)
    assert np.isfinite(a).all() and a.std() > 0


def test_batching_does_not_change_the_result(tiny, rng):
    img, tri = _frame(300, 300, rng)
    a1 = MattingSession(tiny, device="cpu", tile_size=128, overlap=32, batch_size=1).matte(img, tri)
    a4 = MattingSession(tiny, device="cpu", tile_size=128, overlap=32, batch_size=4).matte(img, tri)
    assert np.allclose(a1, a4, atol=1e-5)


def test_flip_tta_averages_the_frame_and_its_mirror(tiny, rng):
    # Width a multiple of the stride and no tiling: mirroring the frame then commutes with the
    # network's padding, so flip TTA must equal the mean of two plain runs.
    img, tri = _frame(96, 128, rng, box=(20, 80, 10, 70))  # off-centre: the mirror differs
    plain = MattingSession(tiny, device="cpu", tile_size=0)
    tta = MattingSession(tiny, device="cpu", tile_size=0, tta="flip")
    mirror = lambda a: np.ascontiguousarray(a[:, ::-1])  # noqa: E731
    a, am = plain.matte(img, tri), mirror(plain.matte(mirror(img), mirror(tri)))
    assert np.abs(a - am).max() > 1e-3  # the network alone is not mirror-symmetric...
    t = tta.matte(img, tri)
    assert np.allclose(t, (a + am) / 2, atol=1e-5)
    assert np.allclose(mirror(tta.matte(mirror(img), mirror(tri))), t, atol=1e-5)  # ...TTA is


def test_flip_tta_tiled_keeps_known_regions_and_range(tiny, rng):
    img, tri = _frame(300, 260, rng)
    t = MattingSession(tiny, device="cpu", tile_size=128, overlap=32, batch_size=2, tta="flip").matte(img, tri)
    assert t.min() >= 0 and t.max() <= 1
    assert np.array_equal(t[tri == 1], np.ones((tri == 1).sum(), np.float32))
    assert np.array_equal(t[tri == 0], np.zeros((tri == 0).sum(), np.float32))
    with pytest.raises(InputError, match="tta must be one of none, flip, got 'rot90'"):
        MattingSession(tiny, device="cpu", tta="rot90")


def test_bad_inputs_raise_typed_errors(tiny, rng):
    s = MattingSession(tiny, device="cpu")
    img, tri = _frame(64, 64, rng)
    with pytest.raises(InputError, match="RGB"):
        s.matte(img[..., :2], tri)
    with pytest.raises(InputError, match="NaN"):
        bad = img.copy()
        bad[3, 3, 0] = np.nan
        s.matte(bad, tri)
    with pytest.raises(TrimapError, match="palette"):
        s.matte(img, tri * 0.9)
    with pytest.raises(InputError, match="does not match"):
        s.matte(img, tri[:32])
    with pytest.raises(InputError, match="float"):
        s.matte((img * 255).astype(np.uint8), tri)
    with pytest.raises(InputError, match="overlap"):
        MattingSession(tiny, device="cpu", tile_size=128, overlap=64)
    with pytest.raises(InputError, match="multiple of 32"):
        MattingSession(tiny, device="cpu", tile_size=500, overlap=64)


def test_device_and_precision_selection():
    assert select_device("cpu").type == "cpu"
    auto = select_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else auto.type)
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="CUDA is not available"):
            select_device("cuda")
    with pytest.raises(DeviceError, match="choose"):
        select_device("tpu")
    cpu = torch.device("cpu")
    # CPUs: bf16 weights (no autocast) only where the CPU has native bf16 instructions.
    assert resolve_precision(cpu, "auto", native_bf16=False) == NumericMode("fp32")
    assert resolve_precision(cpu, "auto", native_bf16=True) == NumericMode("bf16", torch.bfloat16)
    assert resolve_precision(cpu, "bf16", native_bf16=True).autocast is None
    assert resolve_precision(cpu, "fp32", native_bf16=True) == NumericMode("fp32")
    with pytest.raises(DeviceError, match="no native bf16.*use fp32"):
        resolve_precision(cpu, "bf16", native_bf16=False)
    with pytest.raises(DeviceError, match="fp16 is many times slower"):
        resolve_precision(cpu, "fp16", native_bf16=True)
    with pytest.raises(DeviceError, match="choose auto"):
        resolve_precision(cpu, "int8")
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


def test_cpu_bf16_session_is_close_to_fp32_with_alpha_in_float32(tiny, rng, monkeypatch):
    monkeypatch.setattr("vfxmatte.engine.cpu_has_native_bf16", lambda: True)
    img, tri = _frame(160, 224, rng)
    fp32 = MattingSession(tiny, device="cpu", precision="fp32", tile_size=0)
    auto = MattingSession(tiny, device="cpu", tile_size=0)  # auto: bf16 here
    assert fp32.numeric.name == "fp32" and auto.numeric.name == "bf16"
    assert all(p.dtype == torch.bfloat16 for p in auto.model.parameters())
    a32, a16 = fp32.matte(img, tri), auto.matte(img, tri)
    assert a16.dtype == np.float32 and np.all(a16[tri == 1.0] == 1.0) and np.all(a16[tri == 0.0] == 0.0)
    band = tri == 0.5
    assert np.abs(a16 - a32)[band].mean() < 0.01
    # alpha is formed from the logits in float32, not quantised to bf16's 1/256 steps near 1
    high = a16[band & (a16 > 0.5) & (a16 < 1.0)]
    assert high.size > 100
    assert np.mean(np.abs(high * 256 - np.round(high * 256)) > 1e-3) > 0.5
    sparse = MattingSession(tiny, device="cpu", tile_size=0, sparse=True).matte(img, tri)
    assert np.abs(sparse - a16)[band].max() < 0.02


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fp16_matches_cpu_fp32(tiny, rng):
    img, tri = _frame(300, 400, rng)
    a_cpu = MattingSession(tiny, device="cpu", tile_size=256, overlap=64).matte(img, tri)
    gpu_model = copy.deepcopy(tiny)
    gpu = MattingSession(gpu_model, device="cuda", tile_size=256, overlap=64)
    assert not gpu.sparse  # block-sparse is a CPU default until measured on GPUs
    a_gpu = gpu.matte(img, tri)
    assert np.abs(a_cpu - a_gpu)[tri == 0.5].mean() < 5e-3
    a_gpu_sparse = MattingSession(gpu_model, device="cuda", tile_size=256, overlap=64, sparse=True).matte(img, tri)
    assert np.abs(a_gpu_sparse - a_gpu)[tri == 0.5].max() < 5e-3  # fp16 rounding only


@pytest.fixture(scope="module")
def starter_frame(tmp_path_factory):
    """A hair frame from the example shot at 1800x1100 (larger than one default tile)."""
    from vfxmatte.color import to_working
    from vfxmatte.examples import make_shot010
    from vfxmatte.io.image import read_image, read_trimap

    shot = make_shot010(tmp_path_factory.mktemp("shot"), frames=[1001], width=1800, height=1100)
    rgb, _ = read_image(shot.plates.replace("####", "1001"))
    tri = read_trimap(shot.trimaps.replace("####", "1001"))
    return to_working(rgb, shot.colorspace), tri


@pytest.mark.parametrize(
    "precision, mean_tol, max_tol",
    [
        # Starter v10 at the defaults (1408/512), fp32: MAD 8.8e-6, max 0.0014; the old 1280/384
        # gave 6.8e-5 / 0.0077 here (and up to 0.04 on larger frames, benchmarks/RESULTS.md).
        ("fp32", 3e-5, 0.003),
        # bf16 adds its own rounding, which differs between tile and frame shapes (8-bit mantissa):
        # v10 MAD 2.1e-5, max 0.0034 (v9 1.9e-5 / 0.0028).
        ("bf16", 4e-5, 0.006),
    ],
)
def test_starter_weights_tiled_matches_untiled_at_defaults(starter_frame, precision, mean_tol, max_tol):
    if precision == "bf16" and not cpu_has_native_bf16():
        pytest.skip("needs a CPU with native bf16")
    img, tri = starter_frame
    assert (tri == 0.5).any()
    untiled = MattingSession.from_checkpoint("starter", device="cpu", tile_size=0, precision=precision).matte(img, tri)
    sess = MattingSession.from_checkpoint("starter", device="cpu", precision=precision)
    assert (sess.tile_size, sess.overlap) == (DEFAULT_TILE, DEFAULT_OVERLAP)
    assert len(plan_tiles(*tri.shape, sess.tile_size, sess.overlap)) > 1
    tiled = sess.matte(img, tri)
    d = np.abs(untiled - tiled)[tri == 0.5]
    assert d.mean() <= mean_tol and d.max() <= max_tol, (d.mean(), d.max())


def test_sp_downsample_model_tiles_on_its_own_stride(rng):
    from dataclasses import replace

    torch.manual_seed(0)
    base = build_model("tiny")
    m = build_model(replace(base.config, name="tiny_sp2", sp_downsample=2)).eval()
    m.load_state_dict(base.state_dict())
    with pytest.raises(InputError, match="multiple of 64"):
        MattingSession(m, device="cpu", tile_size=288, overlap=64)
    tiles = plan_tiles(700, 900, 320, 96, stride=64)
    assert all(t.y % 64 == 0 and t.x % 64 == 0 and t.h % 64 == 0 and t.w % 64 == 0 for t in tiles)
    img, tri = _frame(700, 900, rng, box=(40, 660, 50, 850))
    untiled = MattingSession(m, device="cpu", tile_size=0).matte(img, tri)
    tiled = MattingSession(m, device="cpu", tile_size=320, overlap=96, batch_size=2).matte(img, tri)
    d = np.abs(untiled - tiled)[tri == 0.5]
    assert d.mean() <= 2e-3 and d.max() <= 0.05, (d.mean(), d.max())
