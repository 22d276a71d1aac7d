"""A Read node's colourspace knob -> the colourspace and OCIO config of a vfxmatte job.

Where Nuke's config is a file vfxmatte can open (a custom config, or ``$OCIO``), the job names
that file and the Read's colourspace as it is: both programs resolve the name, role or alias in
the same config. Nuke's stock configs live in Nuke's installation, which farm nodes need not
have, so for them the name is mapped onto vfxmatte's built-in
``ocio://studio-config-latest``: a superset of the CG config that also holds the camera log
spaces, with the ACES 1.x names (``ACES - ACEScg``, ``Utility - sRGB - Texture``,
``Input - ARRI - V3 LogC (EI800) - Wide Gamut`` ...) as aliases. Names that differ are
translated (:data:`NUKE_DEFAULT` for Nuke's own colour management and its ``nuke-default``
config; :data:`STOCK_ROLES` for roles, which stock configs assign differently). A name of
Nuke's default config with no exact OCIO equivalent (a transfer curve without primaries, such
as ``AlexaV3LogC``) is refused, naming the knob that sets the plate's colourspace by hand.
"""

import re

from vfxmatte_nuke.errors import GizmoError

__all__ = ["NUKE_DEFAULT", "STOCK_CONFIG", "STOCK_ROLES", "ColorState", "job_colorspace", "strip_default"]

#: The built-in config a job names for Nuke's stock configs (vfxmatte's OCIO ships it).
STOCK_CONFIG = "ocio://studio-config-latest"

#: Nuke's own colour management and its ``nuke-default`` OCIO config: name -> a vfxmatte alias
#: or a colourspace of :data:`STOCK_CONFIG` with the same transfer function and Rec.709
#: primaries. ``raw`` is data: the file's values go to the network unconverted.
NUKE_DEFAULT = {
    "linear": "lin_rec709",
    "srgb": "srgb",
    "rec709": "Camera Rec.709",
    "gamma1.8": "Gamma 1.8 Encoded Rec.709",
    "gamma2.2": "Gamma 2.2 Encoded Rec.709",
    "gamma2.4": "Gamma 2.4 Encoded Rec.709",
    "cineon": "cineon",
    "raw": "Raw",
    # roles of nuke-default
    "scene_linear": "lin_rec709",
    "reference": "lin_rec709",
    "compositing_linear": "lin_rec709",
    "rendering": "lin_rec709",
    "compositing_log": "cineon",
    "color_picking": "srgb",
    "texture_paint": "srgb",
    "matte_paint": "srgb",
    "data": "Raw",
}

#: Names of Nuke's default config that are curves without primaries (or Nuke's own
#: approximations): no OCIO colourspace is the same transform.
NUKE_DEFAULT_UNMAPPED = (
    "Panalog", "REDLog", "ViperLog", "AlexaV3LogC", "PLogLin", "SLog", "SLog1", "SLog2", "SLog3",
    "CLog", "Log3G10", "Log3G12", "HybridLogGamma", "Protune", "BT1886", "st2084",
)

#: Roles as Nuke's stock OCIO configs assign them, per config family (the start of the
#: ``OCIO_config`` knob's value): role -> colourspace of :data:`STOCK_CONFIG`. A role missing
#: here differs between the families and is refused rather than guessed.
STOCK_ROLES = {
    "aces_1": {
        "scene_linear": "ACEScg",
        "rendering": "ACEScg",
        "compositing_linear": "ACEScg",
        "reference": "ACES2065-1",
        "data": "Raw",
    },
    "fn-nuke_cg-config": {
        "scene_linear": "ACEScg",
        "aces_interchange": "ACES2065-1",
        "color_timing": "ACEScct",
        "compositing_log": "ACEScct",
        "color_picking": "sRGB Encoded Rec.709 (sRGB)",
        "texture_paint": "sRGB Encoded Rec.709 (sRGB)",
        "data": "Raw",
    },
}
STOCK_ROLES["fn-nuke_studio-config"] = STOCK_ROLES["fn-nuke_cg-config"]

_DEFAULT = re.compile(r"^default\s*\((.*)\)$")


class ColorState(object):
    """Nuke's colour management as the Root node and the environment state it.

    Args:
        management: the Root's ``colorManagement`` knob: ``Nuke`` or ``OCIO``.
        config: the Root's ``OCIO_config`` knob (``nuke-default``, ``aces_1.2``,
            ``fn-nuke_cg-config-v1.0.0_aces-v1.3_ocio-v2.1``, ``custom`` ...).
        custom_path: the Root's ``customOCIOConfigPath`` (with ``config`` ``custom``).
        env_ocio: ``$OCIO`` in Nuke's environment, which takes precedence over the Root's choice.
    """

    def __init__(self, management="Nuke", config="nuke-default", custom_path="", env_ocio=""):
        self.management = management or "Nuke"
        self.config = config or "nuke-default"
        self.custom_path = custom_path or ""
        self.env_ocio = env_ocio or ""

    def config_file(self):
        """The OCIO config file both programs can open, or None for Nuke's stock configs."""
        if self.env_ocio:
            return self.env_ocio
        if self.management == "OCIO" and self.config == "custom" and self.custom_path:
            return self.custom_path
        return None

    def family(self):
        """``nuke-default``, ``aces_1``, ``fn-nuke_cg-config`` ... for a stock config."""
        if self.management != "OCIO" or self.config.startswith("nuke-default"):
            return "nuke-default"
        for family in STOCK_ROLES:
            if self.config.startswith(family):
                return family
        return self.config


def strip_default(name):
    """``default (linear)`` -> ``linear``: a Read on its file type's default shows this."""
    text = (name or "").strip()
    match = _DEFAULT.match(text)
    return match.group(1).strip() if match else text


def job_colorspace(name, state, raw=False):
    """``(colorspace, config)`` for a job's ``plate.colorspace`` and ``color.config`` from a
    Read's ``colorspace`` knob (and its ``raw`` knob) under ``state``.

    ``config`` is None only when no config is needed. Raises GizmoError for a name with no
    exact equivalent.
    """
    if raw:
        return "Raw", STOCK_CONFIG  # data: every config converts it as identity
    name = strip_default(name)
    if not name:
        raise GizmoError("the plate Read has no colourspace: set the gizmo's colourspace knob")
    path = state.config_file()
    if path is not None:
        return name, path
    family = state.family()
    if family == "nuke-default":
        mapped = NUKE_DEFAULT.get(name.lower())
        if mapped is None:
            if name in NUKE_DEFAULT_UNMAPPED:
                raise GizmoError(
                    "Nuke's %r is a curve with no exact OCIO colourspace: set the gizmo's colourspace "
                    "knob to the plate's (e.g. ARRI LogC3 (EI800), S-Log3 S-Gamut3, ACEScg)" % name
                )
            mapped = name  # an OCIO name typed into the Read: vfxmatte validate checks it
        return mapped, STOCK_CONFIG
    roles = STOCK_ROLES.get(family, {})
    if name in roles:
        return roles[name], STOCK_CONFIG
    if name in _ALL_ROLES:
        raise GizmoError(
            "the role %r means different colourspaces in Nuke's %s and vfxmatte's configs: set the "
            "gizmo's colourspace knob to the colourspace's own name" % (name, state.config)
        )
    return name, STOCK_CONFIG


_ALL_ROLES = frozenset(
    ["scene_linear", "rendering", "compositing_linear", "reference", "data", "aces_interchange",
     "cie_xyz_d65_interchange", "color_timing", "compositing_log", "color_picking", "texture_paint",
     "matte_paint", "default"]
)
