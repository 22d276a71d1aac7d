"""Colour conversion to the working encoding, checked against OCIO and analytic curves."""

from __future__ import annotations

import numpy as np
import PyOpenColorIO as ocio
import pytest

from vfxmatte import color
from vfxmatte.color import CINEON, WORKING, ColorConverter, load_config, resolve_colorspace, to_working
from vfxmatte.errors import ColorError


@pytest.fixture(scope="module")
def cg() -> ocio.Config:
    return ocio.Config.CreateFromFile("ocio://cg-config-latest")


def srgb_encode(lin: np.ndarray) -> np.ndarray:
    """IEC 61966-2-1 sRGB transfer function."""
    lin = np.clip(lin, 0.0, 1.0)
    return np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)


def grey(values) -> np.ndarray:
    v = np.asarray(values, np.float32)
    return np.repeat(v[:, None], 3, axis=1)[None]  # [1, N, 3]


def test_lin_rec709_to_working_is_the_srgb_curve(cg):
    lin = np.linspace(0.0, 1.0, 257, dtype=np.float32)
    rgb = np.stack([lin, lin[::-1], lin**2], axis=1)[None]
    out = ColorConverter(cg, "lin_rec709").apply(rgb)
    np.testing.assert_allclose(out, srgb_encode(rgb), atol=2e-4)


@pytest.mark.parametrize("src, ocio_name", [("acescg", "ACEScg"), ("acescct", "ACEScct"), ("Linear P3-D65", "Linear P3-D65")])
def test_conversions_match_ocio(cg, rng_rgb, src, ocio_name):
    expected = rng_rgb.copy()
    cg.getProcessor(ocio_name, WORKING).getDefaultCPUProcessor().applyRGB(expected)
    np.testing.assert_allclose(ColorConverter(cg, src).apply(rng_rgb), np.clip(expected, 0, 1), atol=1e-6)


@pytest.fixture
def rng_rgb() -> np.ndarray:
    return np.random.default_rng(3).uniform(0.0, 0.9, (8, 8, 3)).astype(np.float32)


def test_srgb_alias_is_the_working_encoding(cg, rng_rgb):
    np.testing.assert_allclose(ColorConverter(cg, "srgb").apply(rng_rgb), rng_rgb, atol=1e-6)
    assert resolve_colorspace(cg, "srgb") == resolve_colorspace(cg, WORKING)


def test_cineon_curve_points(cg):
    code = grey([95 / 1023, 685 / 1023, 445 / 1023])
    lin = ColorConverter(cg, CINEON, "lin_rec709").apply(code)
    np.testing.assert_allclose(lin[0, :2, 0], [0.0, 1.0], atol=1e-5)  # reference black, reference white
    b = 10 ** ((95 - 685) * 0.002 / 0.6)
    expected_mid = (10 ** ((445 - 685) * 0.002 / 0.6) - b) / (1 - b)
    assert lin[0, 2, 0] == pytest.approx(expected_mid, abs=1e-5)
    back = ColorConverter(cg, "lin_rec709", CINEON).apply(grey([0.0, 1.0]))
    np.testing.assert_allclose(back[0, :, 0] * 1023, [95, 685], atol=0.01)  # OCIO fast log: ~1e-3 codes
    working = ColorConverter(cg, "cineon").apply(code)
    assert working[0, 1, 0] == pytest.approx(1.0, abs=1e-5)


def test_cineon_above_white_clips_in_working(cg):
    out = ColorConverter(cg, "cineon").apply(grey([1.0]))  # code 1023: ~13.5 linear
    np.testing.assert_allclose(out, 1.0)


def test_nan_inf_and_hdr_are_sanitised(cg):
    bad = np.array([[[np.nan, 0.2, 0.2], [np.inf, -np.inf, 0.5], [1e6, 50.0, -3.0], [0.18, 0.18, 0.18]]], np.float32)
    for src in ("acescg", "lin_rec709", "acescct", "cineon"):
        out = ColorConverter(cg, src).apply(bad)
        assert out.dtype == np.float32 and out.shape == bad.shape
        assert np.isfinite(out).all() and out.min() >= 0.0 and out.max() <= 1.0, src
    out = ColorConverter(cg, "lin_rec709").apply(bad)
    assert out[0, 0, 0] == 0.0 and out[0, 1, 0] == 0.0  # NaN and Inf become 0, not white
    np.testing.assert_allclose(out[0, 2], [1.0, 1.0, 0.0])  # HDR clips to white, negatives to 0


def test_input_is_not_modified(cg, rng_rgb):
    before = rng_rgb.copy()
    ColorConverter(cg, "acescg").apply(rng_rgb)
    np.testing.assert_array_equal(rng_rgb, before)


def test_alpha_is_refused(cg):
    with pytest.raises(ColorError, match="RGB only"):
        ColorConverter(cg, "acescg").apply(np.zeros((2, 2, 4), np.float32))


def test_unknown_colourspace_suggests_close_names(cg):
    with pytest.raises(ColorError) as err:
        ColorConverter(cg, "ACESgc")
    assert "'ACESgc'" in str(err.value) and "ACEScg" in str(err.value)


def test_config_names_aliases_and_roles_resolve(cg):
    assert resolve_colorspace(cg, "scene_linear") == "ACEScg"
    assert resolve_colorspace(cg, "lin_srgb") == "Linear Rec.709 (sRGB)"
    assert resolve_colorspace(cg, "ACEScg") == "ACEScg"
    assert resolve_colorspace(cg, "Cineon") == CINEON


def test_load_config_precedence(tmp_path, monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)
    assert load_config(None).getName().startswith("cg-config")
    monkeypatch.setenv("OCIO", "ocio://studio-config-latest")
    assert load_config(None).getName().startswith("studio-config")
    assert load_config("ocio://cg-config-latest").getName().startswith("cg-config")  # the job wins


def test_load_config_from_file(tmp_path, cg):
    path = tmp_path / "show.ocio"
    path.write_text(cg.serialize())
    assert resolve_colorspace(load_config(str(path)), "acescg") == "ACEScg"


@pytest.mark.parametrize("source, match", [("/no/such/config.ocio", "does not exist"), ("ocio://no-such-config", "cannot load")])
def test_bad_config_is_named(source, match):
    with pytest.raises(ColorError, match=match) as err:
        load_config(source)
    assert source in str(err.value)


def test_bad_ocio_env_is_named(monkeypatch):
    monkeypatch.setenv("OCIO", "/no/such/env.ocio")
    with pytest.raises(ColorError, match=r"/no/such/env.ocio.*\$OCIO"):
        to_working(np.zeros((1, 1, 3), np.float32), "acescg")


def test_to_working_matches_converter(cg, rng_rgb, monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)
    np.testing.assert_array_equal(to_working(rng_rgb, "acescg"), ColorConverter(cg, "acescg").apply(rng_rgb))
    np.testing.assert_array_equal(to_working(rng_rgb, "acescg", cg), ColorConverter(cg, "acescg").apply(rng_rgb))


def test_processor_is_built_once(cg, monkeypatch):
    conv = ColorConverter(cg, "acescg")
    monkeypatch.setattr(color.ocio.Config, "getProcessor", None, raising=False)  # would break a rebuild
    conv.apply(np.zeros((2, 2, 3), np.float32))
