"""Classical matting peers that run offline, each as ``predict(image, trimap) -> alpha``.

``image`` is [H, W, 3] float32 sRGB 0..1 and ``trimap`` the canonical vfxmatte trimap (0 / 0.5 / 1);
every adapter returns a float32 [H, W] alpha in [0, 1].

- ``cf``       closed-form matting (Levin et al., TPAMI 2008), pymatting ``estimate_alpha_cf``
- ``knn``      KNN matting (Chen et al., TPAMI 2013), pymatting ``estimate_alpha_knn``
- ``lkm``      large-kernel matting (He et al., CVPR 2010), pymatting ``estimate_alpha_lkm``
- ``lbdm``     learning-based matting (Zheng & Kambhamettu, ICCV 2009), pymatting ``estimate_alpha_lbdm``
- ``infoflow`` information-flow matting (Aksoy et al., CVPR 2017), ``cv2.alphamat.infoFlow``; only
               in OpenCV builds with opencv_contrib (the PyPI ``opencv-python`` wheels lack it)
- ``ramp``     sanity floor: a distance ramp across the unknown band that ignores the image

All pymatting solvers run with the library defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np
from scipy import ndimage

__all__ = ["PEERS", "Peer", "available_peers", "unavailable_peers"]

Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]


def _as_alpha(a: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(a, dtype=np.float32), 0.0, 1.0)


def _pymatting(function_name: str) -> Predictor:
    def predict(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        import pymatting  # imported per call site so listing peers does not need pymatting

        solver = getattr(pymatting, function_name)
        # pymatting wants float64 image and trimap in [0, 1]; 0.5 marks the unknown band.
        return _as_alpha(solver(image.astype(np.float64), trimap.astype(np.float64)))

    predict.__name__ = f"predict_{function_name}"
    return predict


def predict_infoflow(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """OpenCV's information-flow matting; needs an OpenCV build with the alphamat module."""
    bgr = cv2.cvtColor(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    tri = np.round(trimap * 255).astype(np.uint8)  # 0 / 128 / 255
    alpha = cv2.alphamat.infoFlow(bgr, tri)
    return _as_alpha(alpha.astype(np.float32) / 255.0)


def predict_ramp(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """Distance ramp across the unknown band: ``d_bg / (d_bg + d_fg)``, the image is ignored.

    ``d_bg`` / ``d_fg`` are Euclidean distances to the nearest known background / foreground pixel.
    A trimap without known foreground gives 0 in the band, one without known background gives 1.
    """
    fg, bg = trimap == 1.0, trimap == 0.0
    alpha = fg.astype(np.float32)
    unknown = ~(fg | bg)
    if not unknown.any():
        return alpha
    if not fg.any() or not bg.any():
        alpha[unknown] = 1.0 if fg.any() else 0.0
        return alpha
    d_fg = ndimage.distance_transform_edt(~fg)  # distance to the nearest fg pixel
    d_bg = ndimage.distance_transform_edt(~bg)
    alpha[unknown] = (d_bg / (d_bg + d_fg))[unknown]
    return _as_alpha(alpha)


@dataclass(frozen=True)
class Peer:
    name: str
    predict: Predictor
    description: str
    #: Why the peer cannot run here, or None when it can.
    unavailable: str | None = None


def _pymatting_missing() -> str | None:
    try:
        import pymatting  # noqa: F401
    except ImportError:
        return "pymatting is not installed (pip install 'vfxmatte[bench]')"
    return None


def _build_peers() -> dict[str, Peer]:
    no_pymatting = _pymatting_missing()
    no_alphamat = (
        None
        if hasattr(cv2, "alphamat")
        else f"cv2.alphamat missing: OpenCV {cv2.__version__} was built without opencv_contrib "
        "(PyPI opencv-python wheels lack it; opencv-contrib-python has it)"
    )
    peers = [
        Peer("cf", _pymatting("estimate_alpha_cf"), "closed-form matting (pymatting)", no_pymatting),
        Peer("knn", _pymatting("estimate_alpha_knn"), "KNN matting (pymatting)", no_pymatting),
        Peer("lkm", _pymatting("estimate_alpha_lkm"), "large-kernel matting (pymatting)", no_pymatting),
        Peer("lbdm", _pymatting("estimate_alpha_lbdm"), "learning-based matting (pymatting)", no_pymatting),
        Peer("infoflow", predict_infoflow, "information-flow matting (cv2.alphamat)", no_alphamat),
        Peer("ramp", predict_ramp, "trimap distance ramp, ignores the image (sanity floor)"),
    ]
    return {p.name: p for p in peers}


PEERS: dict[str, Peer] = _build_peers()


def available_peers() -> dict[str, Peer]:
    return {k: p for k, p in PEERS.items() if p.unavailable is None}


def unavailable_peers() -> dict[str, str]:
    return {k: p.unavailable for k, p in PEERS.items() if p.unavailable is not None}
