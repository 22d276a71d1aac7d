"""Studio layout, on-the-fly composition and loader determinism."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import training.data
from training.data import (
    MattingDataset,
    StudioSet,
    _resize_displacement,
    build_validation_set,
    read_alpha,
    read_rgb,
    refract,
    worker_init_fn,
)
from training.synthetic import SyntheticGenerator
from vfxmatte.errors import DataError, ImageReadError

PHOTOS = Path("/work/shared/data/backgrounds")


def _photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (0, 0), 2)


def _matte(h: int, w: int) -> np.ndarray:
    a = np.zeros((h, w), np.float32)
    cv2.circle(a, (w // 2, h // 2), min(h, w) // 3, 1.0, -1)
    return cv2.GaussianBlur(a, (0, 0), 3)


@pytest.fixture
def studio_root(tmp_path: Path) -> Path:
    """fg/ (8-bit PNG and half EXR), alpha/ (16-bit PNG), bg/ (nested JPEGs) and image/."""
    rng = np.random.default_rng(0)
    root = tmp_path / "studio"
    for d in ("fg", "alpha", "image", "bg/sub"):
        (root / d).mkdir(parents=True)
    cv2.imwrite(str(root / "fg" / "a.png"), _photo(rng, 90, 120))
    cv2.imwrite(str(root / "alpha" / "a.png"), (_matte(90, 120) * 65535).astype(np.uint16))
    import OpenImageIO as oiio

    spec = oiio.ImageSpec(100, 80, 3, oiio.HALF)
    out = oiio.ImageOutput.create(str(root / "fg" / "b.exr"))
    out.open(str(root / "fg" / "b.exr"), spec)
    out.write_image(np.full((80, 100, 3), 0.18, np.float32))
    out.close()
    cv2.imwrite(str(root / "alpha" / "b.png"), (_matte(80, 100) * 255).astype(np.uint8))
    cv2.imwrite(str(root / "image" / "c.jpg"), _photo(rng, 70, 70))
    cv2.imwrite(str(root / "alpha" / "c.tif"), (_matte(70, 70) * 255).astype(np.uint8))
    cv2.imwrite(str(root / "bg" / "sub" / "bg1.jpg"), _photo(rng, 150, 200))
    (root / "README.md").write_text("notes")
    return root


@pytest.fixture(scope="module")
def generator() -> SyntheticGenerator:
    real = [PHOTOS / "kodak24" / "kodim23.png", PHOTOS / "skimage_data" / "coffee.png"]
    if not all(p.is_file() for p in real):
        pytest.skip("shared background photos not present")
    return SyntheticGenerator(real, seed=11, size=(96, 96))


def test_studio_layout_is_indexed_and_read(studio_root: Path) -> None:
    s = StudioSet(studio_root)
    assert [it.name for it in s.items] == ["a", "b", "c"]
    assert s.backgrounds == [studio_root / "bg" / "sub" / "bg1.jpg"]
    rgb, alpha, composited = s.load(0)
    assert rgb.shape == (90, 120, 3) and alpha.shape == (90, 120) and not composited
    np.testing.assert_allclose(alpha, _matte(90, 120), atol=1 / 65535 + 1e-6)
    rgb_b, _, _ = s.load(1)
    # EXR is scene-linear: 0.18 becomes sRGB-encoded ~0.46.
    np.testing.assert_allclose(rgb_b, 0.4614, atol=2e-3)
    assert s.load(2)[2] is True


def test_unpaired_foreground_names_the_file(studio_root: Path) -> None:
    cv2.imwrite(str(studio_root / "fg" / "lonely.png"), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(DataError, match=r"lonely\.png.*no matching matte"):
        StudioSet(studio_root)


def test_unpaired_matte_names_the_file(studio_root: Path) -> None:
    cv2.imwrite(str(studio_root / "alpha" / "orphan.png"), np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match=r"orphan\.png.*without a foreground"):
        StudioSet(studio_root)


def test_layout_errors(studio_root: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        StudioSet(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="alpha/"):
        StudioSet(tmp_path / "empty")
    cv2.imwrite(str(studio_root / "alpha" / "a.tif"), np.zeros((4, 4), np.uint8))
    with pytest.raises(DataError, match="share the name 'a'"):
        StudioSet(studio_root)


def test_mismatched_sizes_name_the_matte(studio_root: Path) -> None:
    cv2.imwrite(str(studio_root / "alpha" / "a.png"), np.zeros((10, 10), np.uint8))
    with pytest.raises(DataError, match=r"a\.png: matte is 10x10"):
        StudioSet(studio_root).load(0)


def _check_item(item: dict[str, torch.Tensor], s: int) -> None:
    for k in ("image", "fg", "bg", "trimap_sp", "trimap_tcp"):
        assert item[k].shape == (3, s, s) and item[k].dtype == torch.float32, k
    assert item["alpha"].shape == (1, s, s) and item["alpha"].dtype == torch.float32
    for k in ("image", "fg", "bg", "alpha"):
        assert 0.0 <= float(item[k].min()) and float(item[k].max()) <= 1.0, k
    for k in ("trimap_sp", "trimap_tcp"):
        torch.testing.assert_close(item[k].sum(0), torch.ones(s, s))
    # Every partial-alpha pixel is unknown in the semantic trimap (paper §3.3).
    a = item["alpha"][0]
    partial = (a > 1e-3) & (a < 1 - 1e-3)
    assert bool(item["trimap_sp"][1][partial].all())


def test_studio_items_are_composited_over_backgrounds(studio_root: Path) -> None:
    ds = MattingDataset(studio_root, length=6, out_size=48, crop_sizes=(32, 64), seed=3)
    for i in range(6):
        item = ds[i]
        _check_item(item, 48)
        if item["has_fg_bg"] == 1:
            a = item["alpha"]
            torch.testing.assert_close(item["image"], a * item["fg"] + (1 - a) * item["bg"], atol=1e-5, rtol=0)
        else:
            torch.testing.assert_close(item["fg"], item["image"])


def test_synthetic_items_shapes_and_composition(generator: SyntheticGenerator) -> None:
    ds = MattingDataset(synthetic=generator, length=4, out_size=64, crop_sizes=(48, 96), seed=0)
    for i in range(4):
        item = ds[i]
        _check_item(item, 64)
        a = item["alpha"]
        torch.testing.assert_close(item["image"], a * item["fg"] + (1 - a) * item["bg"], atol=1e-5, rtol=0)
    assert any(((ds[i]["alpha"] > 0) & (ds[i]["alpha"] < 1)).float().mean() > 0.01 for i in range(4))


def test_items_depend_on_seed_epoch_and_index_only(generator: SyntheticGenerator) -> None:
    ds = MattingDataset(synthetic=generator, length=4, out_size=48, crop_sizes=(48,), seed=0)
    first = ds[2]
    ds[0], ds[3]
    torch.testing.assert_close(ds[2], first)
    ds.set_epoch(1)
    assert not torch.equal(ds[2]["image"], first["image"])
    ds.set_epoch(0)
    torch.testing.assert_close(ds[2], first)


def test_loader_batches_identical_for_any_worker_count(generator: SyntheticGenerator, studio_root: Path) -> None:
    ds = MattingDataset(studio_root, synthetic=generator, length=8, out_size=48, crop_sizes=(48, 64), seed=5, synthetic_reuse=2)
    ds.set_epoch(2)
    batches = {}
    for workers in (0, 2):
        # spawn, as the training loop uses: forked workers can deadlock on locks held by
        # OpenCV/torch threads of the parent.
        ctx = "spawn" if workers else None
        loader = DataLoader(ds, batch_size=4, shuffle=False, num_workers=workers, worker_init_fn=worker_init_fn,
                            multiprocessing_context=ctx)
        batches[workers] = list(loader)
    assert len(batches[0]) == 2
    for b0, b2 in zip(batches[0], batches[2]):
        assert b0.keys() == b2.keys()
        for k in b0:
            assert torch.equal(b0[k], b2[k]), k


def test_dataset_argument_errors(studio_root: Path, generator: SyntheticGenerator, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="needs a studio folder"):
        MattingDataset()
    with pytest.raises(DataError, match="explicit length"):
        MattingDataset(synthetic=generator)
    # Foregrounds but no bg/ and no backgrounds given.
    root = tmp_path / "nobg"
    (root / "fg").mkdir(parents=True)
    (root / "alpha").mkdir()
    cv2.imwrite(str(root / "fg" / "x.png"), np.zeros((8, 8, 3), np.uint8))
    cv2.imwrite(str(root / "alpha" / "x.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(DataError, match="need backgrounds"):
        MattingDataset(root)


def test_rough_trimaps_only_widen_the_paper_trimaps(generator: SyntheticGenerator) -> None:
    from training.losses import unknown_mask

    paper = MattingDataset(synthetic=generator, length=3, out_size=64, crop_sizes=(48, 96), seed=1)
    rough = MattingDataset(synthetic=generator, length=3, out_size=64, crop_sizes=(48, 96), seed=1,
                           rough_trimap_prob=1.0, rough_trimap_kernel=(9, 21))
    wider = 0
    for i in range(3):
        p, r = paper[i], rough[i]
        # Same composite; the SP trimap's band is a superset of the paper's one.
        torch.testing.assert_close(p["image"], r["image"])
        up = unknown_mask(p["trimap_sp"][None])[0, 0]
        ur = unknown_mask(r["trimap_sp"][None])[0, 0]
        assert bool((ur | ~up).all())
        wider += int(ur.sum() > up.sum())
    assert wider == 3
    with pytest.raises(DataError, match="rough_trimap_prob"):
        MattingDataset(synthetic=generator, length=3, rough_trimap_prob=1.5)


def test_held_objects_are_opaque_foreign_and_all_unknown(generator: SyntheticGenerator) -> None:
    from training.losses import unknown_mask

    kw = dict(synthetic=generator, length=4, out_size=64, crop_sizes=(48, 96), seed=2, augment=False)
    paper = MattingDataset(**kw)
    same = MattingDataset(**kw, held_object_prob=0.0)
    held = MattingDataset(**kw, held_object_prob=1.0)
    changed = 0
    for i in range(4):
        p, z, h = paper[i], same[i], held[i]
        # Off (0) draws nothing extra: the paper's stream exactly.
        for key in p:
            torch.testing.assert_close(p[key], z[key])
        a_p, a_h = p["alpha"][0], h["alpha"][0]
        added = (a_h - a_p) > 0.5  # opaque where the composite had (mostly) background
        changed += int(added.any())
        # Every pixel the object covers is unknown in both trimaps, and so is all of the
        # ground truth's partial alpha (the paper's property still holds).
        unk_sp = unknown_mask(h["trimap_sp"][None])[0, 0]
        unk_tcp = unknown_mask(h["trimap_tcp"][None])[0, 0]
        assert bool(unk_sp[added].all())
        partial = (a_h > 1e-3) & (a_h < 1 - 1e-3)
        assert bool(unk_sp[partial].all())
        # The object really is the alpha's: the composite matches alpha * F + (1 - alpha) * B.
        torch.testing.assert_close(h["image"], (h["alpha"] * h["fg"] + (1 - h["alpha"]) * h["bg"]).clamp(0, 1),
                                   atol=2e-6, rtol=0)
        assert unk_tcp.any()
    assert changed == 4
    with pytest.raises(DataError, match="held_object_prob"):
        MattingDataset(synthetic=generator, length=3, held_object_prob=-0.1)


def test_held_object_shape_and_determinism(generator: SyntheticGenerator) -> None:
    from training.synthetic import held_object

    def make(seed: int):
        return held_object(np.random.default_rng(seed), generator.photos, 120, 160, (60.0, 80.0), 60.0)

    f1, a1 = make(4)
    f2, a2 = make(4)
    np.testing.assert_array_equal(a1, a2)
    np.testing.assert_array_equal(f1, f2)
    assert f1.shape == (120, 160, 3) and a1.shape == (120, 160)
    assert a1[60, 80] == 1.0  # opaque at its centre
    assert a1[0, 0] == 0.0 and a1[-1, -1] == 0.0  # 60 px across: the corners stay clear
    edge = (a1 > 0) & (a1 < 1)
    assert edge.any() and edge.sum() < 0.2 * (a1 == 1).sum()  # an anti-aliased rim, not a ramp
    assert 0.0 <= f1.min() and f1.max() <= 1.0
    shapes = {tuple(np.nonzero(make(s)[1] == 1)[0][:3]) for s in range(6)}
    assert len(shapes) > 1  # the seed changes it


def test_validation_set_is_fixed(generator: SyntheticGenerator) -> None:
    v1 = build_validation_set(generator, n=3, seed=42, size=48)
    v2 = build_validation_set(generator, n=3, seed=42, size=48)
    assert len(v1) == 3
    for a, b in zip(v1, v2):
        torch.testing.assert_close(a, b)


def test_readers_handle_grey_and_rgba(tmp_path: Path) -> None:
    p = tmp_path / "rgba.png"
    img = np.zeros((5, 6, 4), np.uint8)
    img[..., 2] = 255  # red in BGR(A) order
    img[..., 3] = 128
    cv2.imwrite(str(p), img)
    np.testing.assert_allclose(read_rgb(p)[0, 0], [1.0, 0.0, 0.0])
    np.testing.assert_allclose(read_alpha(p), 128 / 255)
    with pytest.raises(ImageReadError, match=r"bad\.png: cannot open image"):
        (tmp_path / "bad.png").write_bytes(b"nope")
        read_rgb(tmp_path / "bad.png")


class _RecordingMatter:
    """A :class:`vfxmatte.pipeline.Matter` that keeps the image the pipeline hands the network."""

    model_name, model_hash, device, precision = "recorder", "0" * 12, "cpu", "fp32"

    def __init__(self) -> None:
        self.images: list[np.ndarray] = []

    def matte(self, image, trimap, progress=None, name="frame"):
        self.images.append(image)
        return trimap.copy()


@pytest.mark.parametrize("ext, colorspace", [("exr", "lin_rec709"), ("png", "srgb")])
def test_training_reads_a_file_as_the_network_input_inference_gives_it(tmp_path: Path, ext: str, colorspace: str) -> None:
    # One file, two readers: training's read_rgb and a job's plate read + colour conversion
    # (the colourspace training assumes for the file type) hand the network the same array.
    import yaml

    from training.data import colorspace_of
    from vfxmatte.checkpoint import save_checkpoint
    from vfxmatte.io import write_image
    from vfxmatte.jobs import load_job
    from vfxmatte.model import build_model
    from vfxmatte.pipeline import ShotPipeline

    rng = np.random.default_rng(5)
    rgba = rng.uniform(-0.05, 1.0, (24, 40, 4)).astype(np.float32)
    rgba[3, 4, :3] = (6.0, 11.0, 2.5)  # HDR highlight
    rgba[..., 3] = np.clip(rgba[..., 3], 0.0, 1.0)
    plate = tmp_path / f"plate.1001.{ext}"
    if ext == "exr":
        write_image(plate, rgba, ["R", "G", "B", "A"], pixel_type="half")
    else:
        write_image(plate, np.clip(rgba[..., :3], 0, 1), ["R", "G", "B"], pixel_type="uint8")
    trimap = np.full((24, 40), 0.5, np.float32)
    write_image(tmp_path / "tri.1001.png", trimap, ["Y"], pixel_type="uint8")
    job = {
        "version": 1,
        "shot": "s",
        "plate": {"path": f"plate.####.{ext}", "frames": "1001", "colorspace": colorspace},
        "trimap": {"mode": "sequence", "path": "tri.####.png"},
        "model": {"checkpoint": str(save_checkpoint(tmp_path / "t.safetensors", build_model("tiny"))), "device": "cpu"},
        "output": {"path": "out/m.####.exr"},
    }
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(job))
    matter = _RecordingMatter()
    with ShotPipeline(load_job(tmp_path / "job.yaml"), session=matter) as pipe:
        assert pipe.run().done == [1001]
    assert colorspace_of(plate) == colorspace
    training = read_rgb(plate)
    assert training.dtype == np.float32 and training.shape == (24, 40, 3)
    np.testing.assert_array_equal(training, matter.images[0])


def test_refract_is_identity_at_zero_and_shifts_by_the_displacement() -> None:
    rng = np.random.default_rng(3)
    bg = rng.random((40, 50, 3), dtype=np.float32)
    d = np.zeros((40, 50, 2), np.float32)
    np.testing.assert_allclose(refract(bg, d), bg, atol=1e-6)
    d[..., 0], d[..., 1] = 3.0, -2.0  # each pixel sees the one 3 px right and 2 px up
    np.testing.assert_allclose(refract(bg, d)[5:-5, 5:-5], bg[3:-7, 8:-2], atol=1e-6)


def test_displacement_crops_scale_with_the_resize_and_mirror_with_the_flip() -> None:
    d = np.zeros((64, 64, 2), np.float32)
    d[:, :32, 0] = 4.0   # left half: look 4 px to the right
    d[:, :, 1] = -2.0
    half = _resize_displacement(d, 32, flip=False)
    assert half.shape == (32, 32, 2)
    np.testing.assert_allclose(half[:, :10, 0], 2.0, atol=1e-6)   # 4 px at half size is 2 px
    np.testing.assert_allclose(half[..., 1], -1.0, atol=1e-6)
    flipped = _resize_displacement(d, 32, flip=True)
    np.testing.assert_allclose(flipped[:, -10:, 0], -2.0, atol=1e-6)  # now the right half, looking left
    np.testing.assert_allclose(flipped[:, :10, 0], 0.0, atol=1e-6)


def test_refractive_items_compose_over_the_bent_background(monkeypatch: pytest.MonkeyPatch) -> None:
    real = [PHOTOS / "kodak24" / "kodim23.png", PHOTOS / "skimage_data" / "coffee.png"]
    if not all(p.is_file() for p in real):
        pytest.skip("shared background photos not present")
    g = SyntheticGenerator(real, seed=12, size=(128, 128), recipes={"refractive": 1.0})
    ds = MattingDataset(synthetic=g, length=3, out_size=64, crop_sizes=(96, 128), seed=0)
    items = [ds[i] for i in range(3)]
    monkeypatch.setattr(training.data, "refract", lambda bg, d: bg)
    plain = MattingDataset(synthetic=g, length=3, out_size=64, crop_sizes=(96, 128), seed=0)
    moved = 0
    for i, item in enumerate(items):
        a = item["alpha"]
        # The plate, and the B the loss reconstructs it from, both hold the bent background.
        torch.testing.assert_close(item["image"], a * item["fg"] + (1 - a) * item["bg"], atol=1e-5, rtol=0)
        other = plain[i]
        torch.testing.assert_close(other["alpha"], a)  # the same draws: only B differs
        far = (a[0] == 0).numpy()
        far = cv2.erode(far.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        diff = (item["bg"] - other["bg"]).abs().amax(0).numpy()
        assert diff[far].max() < 1e-4, "the background moved outside the glass"
        moved += int(diff[(a[0] > 0).numpy()].max() > 0.02)
    assert moved >= 2
