"""Weight-space interpolation of two checkpoints of one architecture (WiSE-FT).

``(1 - w) * base + w * tuned`` tensor by tensor. Interpolating a fine-tuned network back towards
the network it started from often keeps most of what the fine-tune taught on its new data while
losing less on the old (Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022).
Pick ``w`` on held-out validation (``python -m training validate``), never on benchmark data.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from vfxmatte.checkpoint import load_model, save_checkpoint
from vfxmatte.errors import CheckpointError


def interpolate_checkpoints(
    base: str | os.PathLike[str],
    tuned: str | os.PathLike[str],
    weight: float,
    out: str | os.PathLike[str],
) -> Path:
    """Write the checkpoint ``(1 - weight) * base + weight * tuned`` to ``out`` (fp16).

    Floating tensors are mixed in float32; integer ones (batch-norm step counters) come from
    ``tuned``. The provenance records both inputs (hashes and their own provenance) and the weight.

    Raises:
        CheckpointError: an input is missing or unreadable, the two architectures differ, or
            ``weight`` is outside [0, 1].
    """
    w = float(weight)
    if not 0.0 <= w <= 1.0:
        raise CheckpointError(f"interpolation weight must be in [0, 1], got {weight}")
    # Each file is checked against its own architecture as it loads; equal architectures then
    # mean equal tensor names and shapes.
    model_a, a = load_model(base)
    model, b = load_model(tuned)
    diff = a.config.diff(b.config, frozenset({"name", "w_c_init"}))
    if diff:
        raise CheckpointError(f"{b.path}: architecture differs from {a.path}: {'; '.join(diff)}")
    own_a = model_a.state_dict()
    with torch.no_grad():
        for k, tb in model.state_dict().items():
            if tb.is_floating_point():  # float32 after loading; integer counters stay tuned's
                tb.copy_(torch.lerp(own_a[k], tb, w))
    provenance = {
        "interpolation": {
            "method": "(1 - weight) * base + weight * tuned (WiSE-FT)",
            "weight": w,
            "base": {"path": str(a.path), "sha256": a.sha256, "provenance": a.provenance},
            "tuned": {"path": str(b.path), "sha256": b.sha256, "provenance": b.provenance},
        }
    }
    return save_checkpoint(out, model, provenance, half=True)
