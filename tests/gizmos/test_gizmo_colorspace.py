"""Nuke's colourspace names resolve, in vfxmatte's OCIO, to the colourspace Nuke means."""

import pytest

from vfxmatte.color import ColorConverter, resolve_colorspace
from vfxmatte_nuke import colorspace as cs
from vfxmatte_nuke.errors import GizmoError

NUKE13 = cs.ColorState("Nuke", "nuke-default")
ACES12 = cs.ColorState("OCIO", "aces_1.2")
NUKE14 = cs.ColorState("OCIO", "fn-nuke_cg-config-v1.0.0_aces-v1.3_ocio-v2.1")


@pytest.mark.parametrize("knob, state, expected", [
    ("default (linear)", NUKE13, "Linear Rec.709 (sRGB)"),
    ("linear", cs.ColorState("OCIO", "nuke-default"), "Linear Rec.709 (sRGB)"),
    ("sRGB", NUKE13, "sRGB Encoded Rec.709 (sRGB)"),
    ("rec709", NUKE13, "Camera Rec.709"),
    ("Gamma2.2", NUKE13, "Gamma 2.2 Encoded Rec.709"),
    ("Gamma1.8", NUKE13, "Gamma 1.8 Encoded Rec.709"),
    ("raw", NUKE13, "Raw"),
    ("scene_linear", NUKE13, "Linear Rec.709 (sRGB)"),
    ("ACES - ACEScg", ACES12, "ACEScg"),
    ("Utility - sRGB - Texture", ACES12, "sRGB Encoded Rec.709 (sRGB)"),
    ("Utility - Linear - sRGB", ACES12, "Linear Rec.709 (sRGB)"),
    ("Input - ARRI - V3 LogC (EI800) - Wide Gamut", ACES12, "ARRI LogC3 (EI800)"),
    ("ACES - ACEScct", ACES12, "ACEScct"),
    ("scene_linear", ACES12, "ACEScg"),
    ("default (scene_linear)", NUKE14, "ACEScg"),
    ("sRGB - Texture", NUKE14, "sRGB Encoded Rec.709 (sRGB)"),
    ("ACEScg", NUKE14, "ACEScg"),
    ("compositing_log", NUKE14, "ACEScct"),
])
def test_a_read_colorspace_resolves_to_the_same_colourspace_in_vfxmatte(knob, state, expected):
    name, config = cs.job_colorspace(knob, state)
    assert config == cs.STOCK_CONFIG
    assert resolve_colorspace(config, name) == expected


def test_cineon_maps_to_vfxmatte_s_built_in_cineon():
    name, config = cs.job_colorspace("Cineon", NUKE13)
    assert name == "cineon"
    ColorConverter(config, name)  # vfxmatte builds it without any config entry


def test_every_mapping_target_exists_in_the_stock_config():
    for target in list(cs.NUKE_DEFAULT.values()) + [v for roles in cs.STOCK_ROLES.values() for v in roles.values()]:
        ColorConverter(cs.STOCK_CONFIG, target)


def test_a_custom_config_is_named_and_the_read_s_name_kept(tmp_path):
    state = cs.ColorState("OCIO", "custom", custom_path="/studio/ocio/config.ocio")
    assert cs.job_colorspace("plate_log", state) == ("plate_log", "/studio/ocio/config.ocio")
    env = cs.ColorState("Nuke", "nuke-default", env_ocio="/show/config.ocio")
    assert cs.job_colorspace("compositing_log", env) == ("compositing_log", "/show/config.ocio")


def test_a_read_in_raw_mode_passes_its_values_unconverted():
    assert cs.job_colorspace("default (linear)", NUKE13, raw=True) == ("Raw", cs.STOCK_CONFIG)


@pytest.mark.parametrize("knob, state, words", [
    ("AlexaV3LogC", NUKE13, "no exact OCIO colourspace"),
    ("matte_paint", ACES12, "role 'matte_paint'"),
    ("", NUKE13, "no colourspace"),
])
def test_names_without_an_exact_equivalent_are_refused_naming_the_knob(knob, state, words):
    with pytest.raises(GizmoError, match=words) as err:
        cs.job_colorspace(knob, state)
    assert "colourspace knob" in str(err.value)
