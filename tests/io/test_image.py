"""Image reading and writing through the real OpenImageIO, on files made on the fly."""

from __future__ import annotations

import numpy as np
import OpenImageIO as oiio
import pytest

from vfxmatte.errors import ImageReadError, ImageWriteError, TrimapError
from vfxmatte.io import atomic, image
from vfxmatte.io.image import ImageInfo, read_image, read_mask, read_trimap, write_exr, write_image

# ---- EXR round trips ---------------------------------------------------------------------

# Half keeps ~11 bits of mantissa; uint is normalised through 2^32 - 1; dwaa is lossy on colour.
TOLERANCE = {"half": 1e-3, "float": 0.0, "uint": 1e-6}


@pytest.mark.parametrize("pixel_type", ["half", "float", "uint"])
@pytest.mark.parametrize("compression", ["none", "zip", "piz", "dwaa"])
@pytest.mark.parametrize("tile", [None, (8, 8)])
def test_exr_round_trip(tmp_path, ramp, pixel_type, compression, tile):
    rgba = ramp(12, 16, 4)
    path = tmp_path / "plate.exr"
    write_exr(
        path, {c: rgba[..., i] for i, c in enumerate("RGBA")}, None,
        compression=compression, pixel_type=pixel_type, tile=tile,
    )
    pixels, info = read_image(path, channels=["R", "G", "B", "A"])
    assert pixels.dtype == np.float32 and pixels.shape == (12, 16, 4)
    atol = 0.05 if compression == "dwaa" and pixel_type != "uint" else TOLERANCE[pixel_type]
    np.testing.assert_allclose(pixels, rgba, atol=atol)
    np.testing.assert_allclose(pixels[..., 3], rgba[..., 3], atol=TOLERANCE[pixel_type])  # A is lossless
    assert info.channel_formats == (pixel_type,) * 4
    assert info.metadata["compression"] == compression
    assert info.tile == tile
    assert info.file_format == "openexr"


def test_channels_are_selected_by_name_not_position(tmp_path, ramp):
    names = ["Z", "matte.A", "B", "A", "G", "R"]  # OIIO will store and return another order
    planes = {n: np.full((4, 5), 0.1 * (k + 1), np.float32) for k, n in enumerate(names)}
    write_exr(tmp_path / "mixed.exr", planes, None, pixel_type="float")
    pixels, info = read_image(tmp_path / "mixed.exr", channels=["A", "R", "Z", "matte.A"])
    assert info.channels != tuple(names)
    np.testing.assert_allclose(pixels[0, 0], [0.4, 0.6, 0.1, 0.2], atol=1e-6)
    rgb, _ = read_image(tmp_path / "mixed.exr")
    np.testing.assert_allclose(rgb[0, 0], [0.6, 0.5, 0.3], atol=1e-6)


def test_mixed_per_channel_formats(tmp_path, write_raw):
    spec = oiio.ImageSpec(4, 3, 4, oiio.HALF)
    spec.channelnames = ("R", "G", "B", "Z")
    spec.channelformats = (oiio.TypeDesc(oiio.HALF),) * 3 + (oiio.TypeDesc(oiio.FLOAT),)
    data = np.zeros((3, 4, 4), np.float32)
    data[..., 3] = 1234.5678
    write_raw(tmp_path / "mixed.exr", data, spec)
    pixels, info = read_image(tmp_path / "mixed.exr", channels=["Z"])
    assert dict(zip(info.channels, info.channel_formats)) == {"R": "half", "G": "half", "B": "half", "Z": "float"}
    assert pixels[0, 0, 0] == pytest.approx(1234.5678, abs=1e-4)  # float, not rounded to half


def test_multi_layer_single_part(tmp_path):
    h, w = 3, 4
    planes = {
        "R": np.full((h, w), 0.1), "G": np.full((h, w), 0.2), "B": np.full((h, w), 0.3),
        "beauty.R": np.full((h, w), 0.5), "beauty.G": np.full((h, w), 0.6),
        "beauty.B": np.full((h, w), 0.7), "beauty.A": np.full((h, w), 0.8),
    }
    write_exr(tmp_path / "layers.exr", {k: v.astype(np.float32) for k, v in planes.items()}, None, pixel_type="float")
    beauty, _ = read_image(tmp_path / "layers.exr", layer="beauty")
    np.testing.assert_allclose(beauty[0, 0], [0.5, 0.6, 0.7], atol=1e-6)
    beauty_a, _ = read_image(tmp_path / "layers.exr", channels=["A", "R"], layer="beauty")
    np.testing.assert_allclose(beauty_a[0, 0], [0.8, 0.5], atol=1e-6)
    plain, _ = read_image(tmp_path / "layers.exr")
    np.testing.assert_allclose(plain[0, 0], [0.1, 0.2, 0.3], atol=1e-6)


@pytest.fixture
def multipart(tmp_path, write_parts):
    plane = lambda v: np.full((3, 4), v, np.float32)  # noqa: E731
    return write_parts(
        tmp_path / "parts.exr",
        [
            ("rgba", {"R": plane(0.1), "G": plane(0.2), "B": plane(0.3), "A": plane(0.4)}),
            ("diffuse", {"diffuse.R": plane(0.5), "diffuse.G": plane(0.6), "diffuse.B": plane(0.7)}),
            ("specular", {"R": plane(0.8), "G": plane(0.9), "B": plane(1.0)}),
        ],
    )


@pytest.mark.parametrize(
    "layer, part, expected",
    [(None, 0, [0.1, 0.2, 0.3]), ("diffuse", 1, [0.5, 0.6, 0.7]), ("specular", 2, [0.8, 0.9, 1.0])],
)
def test_multi_part_layer_pick(multipart, layer, part, expected):
    pixels, info = read_image(multipart, layer=layer)
    np.testing.assert_allclose(pixels[0, 0], expected, atol=1e-3)
    assert info.subimage == part
    assert info.subimage_name == ["rgba", "diffuse", "specular"][part]


def test_layer_does_not_borrow_channels_from_other_parts(multipart):
    # diffuse has no A; the rgba part's A must not be taken for it.
    with pytest.raises(ImageReadError) as err:
        read_image(multipart, channels=["R", "G", "B", "A"], layer="diffuse")
    assert "parts.exr" in str(err.value) and "diffuse.R" in str(err.value)


def test_missing_layer_lists_available(multipart):
    with pytest.raises(ImageReadError) as err:
        read_image(multipart, layer="beauty")
    message = str(err.value)
    assert "parts.exr" in message and "'beauty'" in message
    assert "rgba" in message and "diffuse" in message and "specular" in message


def test_missing_channels_list_available(tmp_path):
    write_exr(tmp_path / "alpha.exr", {"A": np.zeros((2, 2), np.float32)}, None)
    with pytest.raises(ImageReadError, match=r"alpha.exr: no channels R, G, B \(available: A\)"):
        read_image(tmp_path / "alpha.exr")


def test_grey_falls_back_to_replicated_y(tmp_path):
    write_exr(tmp_path / "grey.exr", {"Y": np.full((2, 3), 0.25, np.float32)}, None)
    pixels, _ = read_image(tmp_path / "grey.exr")
    assert pixels.shape == (2, 3, 3)
    np.testing.assert_allclose(pixels, 0.25)


def test_missing_and_unreadable_files_are_named(tmp_path):
    with pytest.raises(ImageReadError, match="nope.exr: no such file"):
        read_image(tmp_path / "nope.exr")
    (tmp_path / "junk.exr").write_bytes(b"not an image at all")
    with pytest.raises(ImageReadError, match="junk.exr"):
        read_image(tmp_path / "junk.exr")


# ---- integer formats -------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 10, 12, 16])
def test_dpx_bit_depths(tmp_path, ramp, bits):
    rgb = ramp(6, 8, 3)
    path = tmp_path / f"scan.{bits}.dpx"
    write_image(path, rgb, ["R", "G", "B"], pixel_type="uint8" if bits == 8 else "uint16", bits=bits)
    pixels, info = read_image(path)
    np.testing.assert_allclose(pixels, rgb, atol=1.0 / (2**bits - 1))
    assert info.metadata["oiio:BitsPerSample"] == bits
    assert info.file_format == "dpx"
    assert pixels.max() <= 1.0


@pytest.mark.parametrize(
    "suffix, pixel_type, atol",
    [(".tif", "uint8", 1 / 255), (".tif", "uint16", 1 / 65535), (".tif", "float", 0.0),
     (".png", "uint8", 1 / 255), (".png", "uint16", 1 / 65535)],
)
def test_tiff_and_png(tmp_path, ramp, suffix, pixel_type, atol):
    rgba = ramp(5, 7, 4)
    path = tmp_path / f"ref{suffix}"
    write_image(path, rgba, ["R", "G", "B", "A"], pixel_type=pixel_type)
    pixels, info = read_image(path, channels=["R", "G", "B", "A"])
    np.testing.assert_allclose(pixels, rgba, atol=atol)
    assert (info.width, info.height) == (7, 5)


# ---- windows and metadata ---------------------------------------------------------------------


def overscan_plate(path, ramp, write_raw) -> ImageInfo:
    spec = oiio.ImageSpec(24, 16, 3, oiio.HALF)
    spec.channelnames = ("R", "G", "B")
    spec.x, spec.y = -4, -2  # 4 px overscan left/right, 2 px top/bottom
    spec.full_x, spec.full_y, spec.full_width, spec.full_height = 0, 0, 16, 12
    spec.attribute("compression", "piz")
    spec.attribute("smpte:TimeCode", oiio.TypeDesc("timecode"), (0x01020304, 0))
    spec.attribute("FramesPerSecond", oiio.TypeDesc("rational2i"), (24, 1))
    spec.attribute("worldToCamera", oiio.TypeDesc("matrix"), tuple(float(i) for i in range(16)))
    spec.attribute("shot:name", "sh010")
    spec.attribute("PixelAspectRatio", 2.0)
    write_raw(path, ramp(16, 24, 3), spec)
    return read_image(path)[1]


def test_overscan_and_metadata_survive_a_matte_write(tmp_path, ramp, write_raw):
    plate = overscan_plate(tmp_path / "plate.exr", ramp, write_raw)
    assert plate.data_window == (-4, -2, 24, 16)
    assert plate.display_window == (0, 0, 16, 12)
    assert plate.has_overscan

    alpha = ramp(16, 24, 1)[..., 0]
    matte = tmp_path / "matte.exr"
    write_exr(matte, {"matte.A": alpha}, plate, compression="zip", metadata={"vfxmatte:version": "0.1.0", "vfxmatte:frame": 1001})

    pixels, info = read_image(matte, channels=["A"], layer="matte")
    np.testing.assert_allclose(pixels[..., 0], alpha, atol=1e-3)
    assert info.data_window == plate.data_window
    assert info.display_window == plate.display_window
    md = info.metadata
    assert md["compression"] == "zip"  # the plate's piz is layout, not copied
    assert md["shot:name"] == "sh010"
    assert md["PixelAspectRatio"] == 2.0
    assert md["vfxmatte:version"] == "0.1.0" and md["vfxmatte:frame"] == 1001
    assert md["FramesPerSecond"] == (24, 1) and info.metadata_types["FramesPerSecond"] == "rational"
    assert md["smpte:TimeCode"] == plate.metadata["smpte:TimeCode"]
    assert info.metadata_types["smpte:TimeCode"] == "timecode"
    assert md["worldToCamera"] == plate.metadata["worldToCamera"]
    assert info.channels == ("matte.A",)


def test_write_checks_size_against_info_like(tmp_path, ramp, write_raw):
    plate = overscan_plate(tmp_path / "plate.exr", ramp, write_raw)
    with pytest.raises(ImageWriteError, match=r"matte.exr: pixels are 16x12 but the data window .* is 24x16"):
        write_exr(tmp_path / "matte.exr", {"A": np.zeros((12, 16), np.float32)}, plate)
    assert not (tmp_path / "matte.exr").exists()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"compression": "lzma"}, "unknown EXR compression 'lzma'"),
        ({"pixel_type": "uint8"}, "EXR pixel type"),
        ({"metadata": {"bad": [1, 2]}}, "metadata 'bad'"),
    ],
)
def test_bad_write_arguments(tmp_path, kwargs, match):
    with pytest.raises(ImageWriteError, match=match):
        write_exr(tmp_path / "m.exr", {"A": np.zeros((2, 2), np.float32)}, None, **kwargs)
    assert list(tmp_path.iterdir()) == []


# ---- atomic writes -------------------------------------------------------------------------------


def leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_failure_while_writing_keeps_the_good_target(tmp_path, monkeypatch):
    target = tmp_path / "matte.1001.exr"
    write_exr(target, {"A": np.ones((8, 8), np.float32)}, None)
    good = target.read_bytes()
    seen = []

    def truncated_write(filename, target_, spec, pixels):
        filename.write_bytes(b"\x76\x2f\x31\x01 truncated")  # half an EXR header, then the crash
        seen.append(filename.name)
        raise OSError("disk full")

    monkeypatch.setattr(image, "_write_pixels", truncated_write)
    with pytest.raises(ImageWriteError, match=r"matte.1001.exr: cannot write image \(disk full\)"):
        write_exr(target, {"A": np.zeros((8, 8), np.float32)}, None)
    assert seen[0].startswith(".matte.1001.exr.") and seen[0].endswith(".tmp.exr")
    assert target.read_bytes() == good
    assert leftovers(tmp_path) == []


def test_failure_before_rename_keeps_the_good_target(tmp_path, monkeypatch):
    target = tmp_path / "scan.dpx"
    write_image(target, np.full((4, 4, 3), 0.5, np.float32), ["R", "G", "B"], bits=10)
    good = target.read_bytes()

    def broken_fsync(path):
        raise OSError("I/O error")

    monkeypatch.setattr(atomic, "_fsync", broken_fsync)
    with pytest.raises(ImageWriteError, match="scan.dpx"):
        write_image(target, np.zeros((4, 4, 3), np.float32), ["R", "G", "B"], bits=10)
    assert target.read_bytes() == good
    assert leftovers(tmp_path) == []


def test_successful_write_leaves_no_temporary_and_makes_directories(tmp_path):
    target = tmp_path / "out" / "sh010" / "matte.1001.exr"
    write_exr(target, {"A": np.ones((2, 2), np.float32)}, None)
    assert target.is_file() and leftovers(target.parent) == []


# ---- trimaps and masks --------------------------------------------------------------------------

CANONICAL = np.array([[0.0, 0.5, 1.0, 0.5]], np.float32)


def png_trimap(path, codes, pixel_type="uint8", channels=1):
    scale = 255.0 if pixel_type == "uint8" else 65535.0
    values = np.asarray(codes, np.float32) / scale
    write_image(path, np.repeat(values[..., None], channels, axis=2), ["R", "G", "B"][:channels] if channels > 1 else ["Y"], pixel_type=pixel_type)
    return path


@pytest.mark.parametrize(
    "codes, pixel_type",
    [([[0, 128, 255, 127]], "uint8"), ([[0, 32768, 65535, 32767]], "uint16")],
)
def test_trimap_png_8_and_16_bit(tmp_path, codes, pixel_type):
    path = png_trimap(tmp_path / "tri.png", codes, pixel_type)
    t = read_trimap(path)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t, CANONICAL)


def test_trimap_rgb_grey_and_exr(tmp_path):
    np.testing.assert_array_equal(read_trimap(png_trimap(tmp_path / "rgb.png", [[0, 128, 255, 128]], channels=3)), CANONICAL)
    write_exr(tmp_path / "tri.exr", {"Y": np.array([[0.02, 0.46, 0.97, 0.5]], np.float32)}, None, pixel_type="float")
    np.testing.assert_array_equal(read_trimap(tmp_path / "tri.exr"), CANONICAL)


def test_trimap_coloured_rgb_is_rejected(tmp_path):
    rgb = np.zeros((1, 2, 3), np.float32)
    rgb[0, 1] = [1.0, 0.0, 0.0]
    write_image(tmp_path / "red.png", rgb, ["R", "G", "B"], pixel_type="uint8")
    with pytest.raises(TrimapError, match="red.png: trimap R, G and B differ"):
        read_trimap(tmp_path / "red.png")


def test_trimap_tolerance(tmp_path):
    path = png_trimap(tmp_path / "soft.png", [[0, 100, 255]])  # 100/255 = 0.39: 0.11 from unknown
    with pytest.raises(TrimapError, match="soft.png: 1 pixels are not within 0.1"):
        read_trimap(path)
    np.testing.assert_array_equal(read_trimap(path, tolerance=0.15), [[0.0, 0.5, 1.0]])
    with pytest.raises(TrimapError, match="soft.png"):
        read_trimap(png_trimap(tmp_path / "soft.png", [[0, 120, 255]]), tolerance=0.01)


def test_read_mask_prefers_alpha(tmp_path):
    rgba = np.zeros((2, 2, 4), np.float32)
    rgba[..., 3] = 0.75
    write_exr(tmp_path / "roto.exr", {c: rgba[..., i] for i, c in enumerate("RGBA")}, None)
    np.testing.assert_allclose(read_mask(tmp_path / "roto.exr"), 0.75)
    write_image(tmp_path / "roto.png", np.full((2, 2), 0.5, np.float32), ["Y"], pixel_type="uint16")
    mask = read_mask(tmp_path / "roto.png")
    assert mask.shape == (2, 2) and mask.dtype == np.float32
    np.testing.assert_allclose(mask, 0.5, atol=1e-4)


def test_truncated_file_is_a_read_error(tmp_path, rng):
    path = tmp_path / "render.exr"
    write_exr(path, {c: rng.random((64, 64), dtype=np.float32) for c in "RGB"}, None, compression="none")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="render.exr: cannot read pixels"):
        read_image(path)


# ---- photos, unassociated alpha, code values ------------------------------------------------------


def test_8_and_16_bit_codes_normalise_as_code_times_the_reciprocal(tmp_path):
    for codes, top in ((np.arange(256, dtype=np.uint8), 255), (np.arange(0, 65536, 7, dtype=np.uint16), 65535)):
        path = tmp_path / f"ramp{top}.png"
        write_image(path, codes.reshape(1, -1), ["Y"])
        np.testing.assert_array_equal(read_mask(path)[0], codes.astype(np.float32) * np.float32(1 / top))


def test_integer_arrays_are_written_as_code_values(tmp_path):
    codes = np.random.default_rng(0).integers(0, 256, (5, 7, 3)).astype(np.uint8)
    write_image(tmp_path / "c.png", codes, ["R", "G", "B"])
    inp = oiio.ImageInput.open(str(tmp_path / "c.png"))
    try:
        assert inp.spec().format == oiio.UINT8
        np.testing.assert_array_equal(inp.read_image(oiio.UINT8), codes)
    finally:
        inp.close()
    write_image(tmp_path / "c16.tif", codes, ["R", "G", "B"], pixel_type="uint16")
    pixels, _ = read_image(tmp_path / "c16.tif")
    np.testing.assert_array_equal(pixels, (codes.astype(np.uint16) * 257).astype(np.float32) * np.float32(1 / 65535))


def _rgba_png(path):
    rgba = np.zeros((2, 3, 4), np.float32)
    rgba[..., 0] = 1.0
    rgba[..., 3] = 0.5
    write_image(path, rgba, ["R", "G", "B", "A"], pixel_type="uint8")
    return path


def test_unassociated_alpha_keeps_the_stored_colour(tmp_path):
    path = _rgba_png(tmp_path / "rgba.png")
    premultiplied, _ = read_image(path, ["R", "G", "B", "A"])
    stored, _ = read_image(path, ["R", "G", "B", "A"], unassociated=True)
    np.testing.assert_allclose(premultiplied[0, 0], [128 / 255, 0, 0, 128 / 255], atol=1 / 255)
    np.testing.assert_array_equal(stored[0, 0], [1.0, 0.0, 0.0, np.float32(128) * np.float32(1 / 255)])


def test_read_photo_is_8_bit_rgb_upright_without_premultiplying(tmp_path):
    from vfxmatte.io import read_photo

    photo = read_photo(_rgba_png(tmp_path / "rgba.png"))
    assert photo.dtype == np.uint8 and photo.shape == (2, 3, 3)
    assert photo[0, 0].tolist() == [255, 0, 0]
    write_image(tmp_path / "grey16.png", np.full((2, 2), 0.5, np.float32), ["Y"], pixel_type="uint16")
    assert read_photo(tmp_path / "grey16.png")[0, 0].tolist() == [128, 128, 128]  # 32768 rounds to 128
    upright = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3) * 10
    turns = {1: upright, 3: upright[::-1, ::-1], 6: np.rot90(upright, 1), 8: np.rot90(upright, -1)}
    for orientation, stored in turns.items():  # stored so that the EXIF turn shows ``upright``
        path = tmp_path / f"o{orientation}.png"
        write_image(path, np.ascontiguousarray(stored), ["R", "G", "B"], metadata={"Orientation": orientation})
        np.testing.assert_array_equal(read_photo(path), upright)
    with pytest.raises(ImageReadError, match="nope.jpg"):
        read_photo(tmp_path / "nope.jpg")


# ---- a write is renamed into place only once it reads back -----------------------------


def _noise(h: int, w: int) -> np.ndarray:
    return np.random.default_rng(3).random((h, w), dtype=np.float32)


@pytest.mark.parametrize("ext", ["exr", "png"])
@pytest.mark.parametrize("leave", [0, 6 * 1024])
def test_a_full_disk_fails_the_write_and_keeps_the_old_file(small_disk, fill_disk, ext, leave):
    """A real tmpfs (needs root): the write hits ENOSPC with 0 bytes and with a few KB free.
    OIIO's PNG writer reports success on a short file; the read-back catches it."""
    disk = small_disk(64)
    target = disk / f"matte.1001.{ext}"
    write_image(target, _noise(8, 8), ["Y"], pixel_type="half" if ext == "exr" else "uint8")
    before = target.read_bytes()
    fill_disk(disk, leave)
    with pytest.raises(ImageWriteError, match=rf"matte\.1001\.{ext}: "):
        write_image(target, _noise(200, 300), ["Y"], pixel_type="half" if ext == "exr" else "uint8")
    assert target.read_bytes() == before
    assert sorted(p.name for p in disk.iterdir()) == ["filler", target.name]  # no temporary left


class _ShortWriter:
    """An OIIO ImageOutput that reports success while the file system kept only part of the
    file (what a writer ignoring ENOSPC leaves): simulated, for machines that cannot mount."""

    def __init__(self, real):
        self.real, self.filename = real, None

    def open(self, filename, spec):
        self.filename = filename
        return self.real.open(filename, spec)

    def write_image(self, pixels):
        return self.real.write_image(pixels)

    def geterror(self):
        return self.real.geterror()

    def close(self):
        ok = self.real.close()
        with open(self.filename, "r+b") as fh:
            fh.truncate(fh.seek(0, 2) // 2)
        return ok


class _FullWriter(_ShortWriter):
    """An ImageOutput whose pixel write fails with ENOSPC (simulated at OIIO's boundary)."""

    def write_image(self, pixels):
        return False

    def geterror(self):
        return "No space left on device"

    def close(self):
        return self.real.close()


@pytest.mark.parametrize("writer,message", [(_ShortWriter, "does not read back"), (_FullWriter, "No space left on device")])
def test_a_write_that_did_not_land_whole_is_never_renamed_into_place(tmp_path, monkeypatch, writer, message):
    """Simulated ENOSPC (the OIIO output object is wrapped), for any machine."""
    target = tmp_path / "matte.1001.exr"
    write_exr(target, {"A": _noise(8, 8)})
    before = target.read_bytes()
    create = oiio.ImageOutput.create
    monkeypatch.setattr(image.oiio.ImageOutput, "create", lambda name: writer(create(name)))
    with pytest.raises(ImageWriteError, match=message):
        write_exr(target, {"A": _noise(40, 60)})
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_a_full_disk_at_the_flush_keeps_the_old_file(tmp_path, monkeypatch):
    """Simulated ENOSPC from fsync (the OS boundary of atomic_write)."""
    import errno

    target = tmp_path / "matte.1001.exr"
    write_exr(target, {"A": _noise(8, 8)})
    before = target.read_bytes()

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "_fsync", full)
    with pytest.raises(ImageWriteError, match="No space left on device"):
        write_exr(target, {"A": _noise(40, 60)})
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == [target.name]


@pytest.mark.parametrize("cut", [0, 10, 0.5])
def test_verify_image_refuses_truncated_files(tmp_path, cut):
    from vfxmatte.io.image import verify_image

    good = tmp_path / "good.exr"
    write_exr(good, {"A": _noise(40, 60)})
    assert verify_image(good).width == 60
    data = good.read_bytes()
    bad = tmp_path / "bad.exr"
    bad.write_bytes(data[: int(cut * len(data)) if isinstance(cut, float) else cut])
    with pytest.raises(ImageReadError, match=r"bad\.exr: "):
        verify_image(bad)


def rgba_png(path, codes, alpha):
    """An 8-bit RGBA PNG holding ``codes`` in R, G and B and ``alpha`` in A, stored as given
    (unassociated, as a paint package writes it)."""
    codes = np.asarray(codes, np.uint8)
    pixels = np.stack([codes, codes, codes, np.full_like(codes, alpha)], axis=2)
    spec = oiio.ImageSpec(codes.shape[1], codes.shape[0], 4, oiio.UINT8)
    spec.channelnames = ("R", "G", "B", "A")
    spec.alpha_channel = 3
    spec.attribute("oiio:UnassociatedAlpha", 1)
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec) and out.write_image(pixels) and out.close(), out.geterror()
    return path


@pytest.mark.parametrize("alpha", [0, 64, 255])
def test_an_rgba_png_trimap_is_its_colour_whatever_its_alpha(tmp_path, alpha):
    # An empty alpha (0 everywhere) once premultiplied the trimap to all background.
    path = rgba_png(tmp_path / "tri.png", [[0, 128, 255, 128]], alpha)
    np.testing.assert_array_equal(read_trimap(path), CANONICAL)
