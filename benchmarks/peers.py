"""Classical matting peers that run offline, each as ``predict(image, trimap) -> alpha``.

``image`` is [H, W, 3] float32 sRGB 0..1 and ``trimap`` the canonical vfxmatte trimap (0 / 0.5 / 1);
every adapter returns a float32 [H, W] alpha in [0, 1].

- ``cf``       closed-form matting (Levin et al., TPAMI 2008), pymatting ``estimate_alpha_cf``
- ``knn``      KNN matting (Chen et al., TPAMI 2013), pymatting ``estimate_alpha_knn``
- ``lkm``      large-kernel matting (He et al., CVPR 2010), pymatting ``estimate_alpha_lkm``
- ``lbdm``     learning-based matting (Zheng & Kambhamettu, ICCV 2009), pymatting ``estimate_alpha_lbdm``
- ``infoflow`` information-flow matting (Aksoy et al., CVPR 2017), ``cv2.alphamat.infoFlow``; only
               in OpenCV builds with opencv_contrib (the PyPI ``opencv-python`` wheels lack it).
               When this process's OpenCV lacks it, it runs in a subprocess of the system Python
               (:data:`SYSTEM_PYTHON`, where Debian's ``python3-opencv`` has it), on the same 8-bit
               inputs, so the scores are those of an in-process run
- ``ramp``     sanity floor: a distance ramp across the unknown band that ignores the image

All pymatting solvers run with the library defaults.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
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


def _infoflow_inputs(image: np.ndarray, trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 8-bit BGR image and 0 / 128 / 255 trimap ``cv2.alphamat.infoFlow`` takes."""
    bgr = cv2.cvtColor(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), cv2.COLOR_RGB2BGR)
    return bgr, np.round(trimap * 255).astype(np.uint8)


def predict_infoflow(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """OpenCV's information-flow matting; needs an OpenCV build with the alphamat module."""
    alpha = cv2.alphamat.infoFlow(*_infoflow_inputs(image, trimap))
    return _as_alpha(alpha.astype(np.float32) / 255.0)


#: The interpreter information flow runs under when this process's OpenCV lacks cv2.alphamat.
SYSTEM_PYTHON = "/usr/bin/python3"

#: Run by SYSTEM_PYTHON: argv = image PNG, trimap PNG, output PNG (8-bit alpha, as infoFlow returns).
_INFOFLOW_SCRIPT = """
import sys, cv2
image = cv2.imread(sys.argv[1], cv2.IMREAD_COLOR)
trimap = cv2.imread(sys.argv[2], cv2.IMREAD_GRAYSCALE)
alpha = cv2.alphamat.infoFlow(image, trimap)
if alpha.dtype != "uint8" or not cv2.imwrite(sys.argv[3], alpha):
    sys.exit("infoFlow returned %s %s, not writable as 8-bit" % (alpha.dtype, alpha.shape))
"""


def system_infoflow_missing(python: str = SYSTEM_PYTHON) -> str | None:
    """Why ``python`` cannot run ``cv2.alphamat.infoFlow``, or None when it can."""
    if not Path(python).is_file():
        return f"{python} not found"
    try:
        probe = subprocess.run([python, "-c", "import cv2; cv2.alphamat.infoFlow"], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{python} did not run ({exc})"
    if probe.returncode != 0:
        return f"{python} has no cv2.alphamat (Debian: apt install python3-opencv)"
    return None


def infoflow_in(python: str = SYSTEM_PYTHON, timeout_s: float = 3600.0) -> Predictor:
    """``predict(image, trimap)`` running information flow in a ``python`` subprocess per image.

    The inputs travel as lossless 8-bit PNGs (exactly what :func:`predict_infoflow` hands
    OpenCV in-process), the alpha comes back as OpenCV's own 8-bit result.
    """

    def predict(image: np.ndarray, trimap: np.ndarray) -> np.ndarray:
        bgr, tri = _infoflow_inputs(image, trimap)
        with tempfile.TemporaryDirectory(prefix="infoflow_") as d:
            paths = [str(Path(d) / name) for name in ("image.png", "trimap.png", "alpha.png")]
            if not (cv2.imwrite(paths[0], bgr) and cv2.imwrite(paths[1], tri)):
                raise RuntimeError(f"infoflow: cannot write its inputs to {d}")
            run = subprocess.run([python, "-c", _INFOFLOW_SCRIPT, *paths], capture_output=True, text=True, timeout=timeout_s)
            if run.returncode != 0:
                last = (run.stderr.strip().splitlines() or [f"exit status {run.returncode}"])[-1]
                raise RuntimeError(f"infoflow under {python} failed: {last}")
            alpha = cv2.imread(paths[2], cv2.IMREAD_UNCHANGED)
        if alpha is None or alpha.shape != tri.shape:
            raise RuntimeError(f"infoflow under {python} returned no {tri.shape[1]}x{tri.shape[0]} alpha")
        return _as_alpha(alpha.astype(np.float32) / 255.0)

    predict.__name__ = "predict_infoflow_subprocess"
    return predict


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
    infoflow, infoflow_where, no_alphamat = predict_infoflow, "cv2.alphamat", None
    if not hasattr(cv2, "alphamat"):
        system_missing = system_infoflow_missing()
        if system_missing is None:
            infoflow, infoflow_where = infoflow_in(SYSTEM_PYTHON), f"cv2.alphamat under {SYSTEM_PYTHON}"
        else:
            no_alphamat = (f"cv2.alphamat missing: OpenCV {cv2.__version__} was built without opencv_contrib "
                           f"(PyPI opencv-python wheels lack it), and {system_missing}")
    peers = [
        Peer("cf", _pymatting("estimate_alpha_cf"), "closed-form matting (pymatting)", no_pymatting),
        Peer("knn", _pymatting("estimate_alpha_knn"), "KNN matting (pymatting)", no_pymatting),
        Peer("lkm", _pymatting("estimate_alpha_lkm"), "large-kernel matting (pymatting)", no_pymatting),
        Peer("lbdm", _pymatting("estimate_alpha_lbdm"), "learning-based matting (pymatting)", no_pymatting),
        Peer("infoflow", infoflow, f"information-flow matting ({infoflow_where})", no_alphamat),
        Peer("ramp", predict_ramp, "trimap distance ramp, ignores the image (sanity floor)"),
    ]
    return {p.name: p for p in peers}


PEERS: dict[str, Peer] = _build_peers()


def available_peers() -> dict[str, Peer]:
    return {k: p for k, p in PEERS.items() if p.unavailable is None}


def unavailable_peers() -> dict[str, str]:
    return {k: p.unavailable for k, p in PEERS.items() if p.unavailable is not None}
