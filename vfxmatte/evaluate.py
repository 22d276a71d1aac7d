"""Score a matting predictor on an evaluation folder in the alphamatting.com layout.

Layout (one name per plate, any of the extensions in ``IMAGE_EXTENSIONS``)::

    ROOT/image/NAME.png      8- or 16-bit RGB plate, sRGB
    ROOT/trimap1/NAME.png    trimap, values {0, 128, 255} (palette or grey PNG)
    ROOT/trimap2/NAME.png    optional further trimap sets, chosen with ``trimap_dir``
    ROOT/alpha/NAME.png      ground-truth alpha; an RGB file has R = G = B and one channel is read

Evaluation follows the Composition-1k protocol: the prediction is clipped to [0, 1], rounded to
8 bits as if written to PNG (``quantize=True``), the trimap's known regions are pasted over it
(fg = 1, bg = 0), and :func:`vfxmatte.metrics.evaluate` scores the unknown band.

This module only reads data sets for evaluation; nothing here trains or tunes on them.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from vfxmatte import metrics
from vfxmatte import trimap as trimap_ops
from vfxmatte.errors import DataError, InputError
from vfxmatte.io import read_image, read_mask, read_trimap

try:
    import resource
except ImportError:  # Windows
    resource = None

__all__ = ["EvalReport", "EvalSample", "ImageScore", "evaluate_predictor", "load_eval_set"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
METRIC_NAMES = ("sad", "mse", "grad", "conn")

#: ``predict(image [H, W, 3] float32 sRGB 0..1, trimap [H, W] canonical) -> alpha [H, W]``.
Predictor = Callable[[np.ndarray, np.ndarray], np.ndarray]
#: ``progress(done, total, name)``, called after each image is scored.
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class EvalSample:
    """One plate of an evaluation set."""

    name: str
    image: np.ndarray  # [H, W, 3] float32, sRGB-encoded 0..1
    trimap: np.ndarray  # [H, W] float32, canonical 0 / 0.5 / 1
    alpha: np.ndarray  # [H, W] float32, ground truth 0..1


@dataclass(frozen=True)
class ImageScore:
    """Metrics of one plate (conventions of :mod:`vfxmatte.metrics`) and the predictor's time."""

    name: str
    sad: float
    mse: float
    grad: float
    conn: float
    seconds: float


@dataclass
class EvalReport:
    """Per-image scores, their means, time per image and the peak memory the run added."""

    images: list[ImageScore] = field(default_factory=list)
    quantized_8bit: bool = True
    #: Peak resident memory during the run minus the resident memory at its start, in bytes.
    peak_rss_delta_bytes: int = 0
    #: How the peak was measured: "VmHWM" (reset at start, exact) or "ru_maxrss" (lower bound).
    peak_rss_method: str = "VmHWM"

    @property
    def mean(self) -> dict[str, float]:
        """Mean of each metric over the images (NaN when there are none)."""
        if not self.images:
            return {k: math.nan for k in METRIC_NAMES}
        return {k: float(np.mean([getattr(s, k) for s in self.images])) for k in METRIC_NAMES}

    @property
    def seconds_per_image(self) -> float:
        """Mean wall time of one ``predict`` call, metrics excluded."""
        if not self.images:
            return math.nan
        return float(np.mean([s.seconds for s in self.images]))

    def rows(self) -> list[dict[str, float | str]]:
        """One dict per image: name, sad, mse, grad, conn, seconds."""
        return [
            {"name": s.name, "sad": s.sad, "mse": s.mse, "grad": s.grad, "conn": s.conn, "seconds": s.seconds}
            for s in self.images
        ]

    def to_dict(self) -> dict:
        """JSON-ready summary: per-image rows, means, seconds per image and peak RSS delta."""
        return {
            "count": len(self.images),
            "mean": self.mean,
            "seconds_per_image": self.seconds_per_image,
            "peak_rss_delta_mib": self.peak_rss_delta_bytes / 2**20,
            "peak_rss_method": self.peak_rss_method,
            "quantized_8bit": self.quantized_8bit,
            "images": self.rows(),
        }


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------


def _find(folder: Path, stem: str) -> Path | None:
    for ext in IMAGE_EXTENSIONS:
        for candidate in (folder / f"{stem}{ext}", folder / f"{stem}{ext.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def load_eval_set(root: str | Path, trimap_dir: str = "trimap1") -> list[EvalSample]:
    """Load every plate of an alphamatting.com-style folder, sorted by name.

    Args:
        root: folder holding ``image/``, ``alpha/`` and ``trimap_dir``.
        trimap_dir: which trimap set to use (``trimap1``, ``trimap2``, ...).

    Files are read through :mod:`vfxmatte.io`, as a job reads them: the plate's R, G, B by name
    (grey replicated; colour as stored beside unassociated alpha), the trimap by
    :func:`~vfxmatte.io.read_trimap`, the ground truth by :func:`~vfxmatte.io.read_mask` (the A
    channel, else the first).

    Raises:
        DataError: a folder is missing or empty, a plate lacks its trimap or alpha (all missing
            files are named), or sizes disagree.
        ImageReadError: a file is unreadable (names it).
        TrimapError: a trimap holds values that are not bg/unknown/fg (names the file).
    """
    root = Path(root)
    image_dir, alpha_dir, tri_dir = root / "image", root / "alpha", root / trimap_dir
    for folder in (image_dir, alpha_dir, tri_dir):
        if not folder.is_dir():
            raise DataError(f"{folder}: evaluation folder missing (expected image/, alpha/ and {trimap_dir}/ under {root})")
    plates = sorted(p for p in image_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not plates:
        raise DataError(f"{image_dir}: no images ({', '.join(IMAGE_EXTENSIONS)})")

    missing: list[str] = []
    triples: list[tuple[Path, Path, Path]] = []
    for plate in plates:
        tri, alpha = _find(tri_dir, plate.stem), _find(alpha_dir, plate.stem)
        if tri is None:
            missing.append(str(tri_dir / f"{plate.stem}.png"))
        if alpha is None:
            missing.append(str(alpha_dir / f"{plate.stem}.png"))
        if tri is not None and alpha is not None:
            triples.append((plate, tri, alpha))
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise DataError(f"{root}: {len(missing)} files missing: {shown}")

    samples = []
    for plate, tri_path, alpha_path in triples:
        image, _ = read_image(plate, unassociated=True)
        tri = read_trimap(tri_path)
        alpha = read_mask(alpha_path)
        for path, arr in ((tri_path, tri), (alpha_path, alpha)):
            if arr.shape != image.shape[:2]:
                raise DataError(f"{path}: size {arr.shape[1]}x{arr.shape[0]} differs from {plate} {image.shape[1]}x{image.shape[0]}")
        samples.append(EvalSample(plate.stem, image, tri, np.clip(alpha, 0.0, 1.0)))
    return samples


# ----------------------------------------------------------------------------------------------
# Memory
# ----------------------------------------------------------------------------------------------


def _proc_status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    """Reset the kernel's high-water mark (VmHWM) to the current RSS; False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")  # Linux >= 4.0: "5" resets the peak RSS
        return True
    except OSError:
        return False


def _ru_maxrss_bytes() -> int:
    if resource is None:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


class _PeakRss:
    """Peak resident memory added between ``__init__`` and :meth:`delta`."""

    def __init__(self) -> None:
        # The start is the high-water mark read right after the reset (= the RSS at the reset),
        # not an RSS read before it: memory freed in between would raise the start above the
        # mark and hide part of the peak.
        start = _proc_status_kib("VmHWM") if _reset_peak_rss() else None
        if start is not None:
            self.method, self._start = "VmHWM", start * 1024
        else:
            # Without a reset the high-water mark may predate the run: the delta is a lower bound
            # (and 0 where getrusage is unavailable).
            self.method, self._start = "ru_maxrss", _ru_maxrss_bytes()

    def delta(self) -> int:
        now = (_proc_status_kib("VmHWM") or 0) * 1024 if self.method == "VmHWM" else _ru_maxrss_bytes()
        return max(0, now - self._start)


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------


def _checked_prediction(pred, sample: EvalSample) -> np.ndarray:
    a = np.asarray(pred)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.shape != sample.alpha.shape:
        raise InputError(f"{sample.name}: predictor returned shape {a.shape}, expected {sample.alpha.shape}")
    if not np.issubdtype(a.dtype, np.number):
        raise InputError(f"{sample.name}: predictor returned dtype {a.dtype}, expected float alpha")
    a = a.astype(np.float32)
    if not np.isfinite(a).all():
        raise InputError(f"{sample.name}: predictor returned NaN or Inf alpha values")
    return np.clip(a, 0.0, 1.0)


def evaluate_predictor(
    samples: Sequence[EvalSample],
    predict: Predictor,
    progress: Progress | None = None,
    quantize: bool = True,
) -> EvalReport:
    """Run ``predict`` on every sample and score it.

    Each prediction is clipped to [0, 1], rounded to 8 bits when ``quantize`` (the official
    protocol scores saved PNGs), composited with the trimap's known regions (fg = 1, bg = 0) and
    scored with :func:`vfxmatte.metrics.evaluate`. ``seconds`` times the ``predict`` call only.

    Args:
        samples: from :func:`load_eval_set`.
        predict: ``predict(image, trimap) -> alpha``; image [H, W, 3] float32 sRGB 0..1, trimap
            canonical [H, W]; returns [H, W] (or [H, W, 1]) alpha.
        progress: optional ``progress(done, total, name)`` called after each image.
        quantize: round predictions to 8 bits before scoring.

    Raises:
        InputError: the predictor returned the wrong shape or non-finite values (names the plate).
    """
    report = EvalReport(quantized_8bit=quantize)
    peak = _PeakRss()
    for i, sample in enumerate(samples):
        start = time.perf_counter()
        raw = predict(sample.image, sample.trimap)
        seconds = time.perf_counter() - start
        alpha = _checked_prediction(raw, sample)
        if quantize:
            alpha = metrics.quantize_8bit(alpha)
        alpha = trimap_ops.composite_known(alpha, sample.trimap)
        scores = metrics.evaluate(alpha, sample.alpha, sample.trimap)
        report.images.append(ImageScore(sample.name, seconds=seconds, **scores))
        if progress is not None:
            progress(i + 1, len(samples), sample.name)
    report.peak_rss_delta_bytes = peak.delta()
    report.peak_rss_method = peak.method
    return report
