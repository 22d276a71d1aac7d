"""Calibrate the engine's memory estimate: peak RSS of one matte, per tile, batch, frame and mode.

Each case runs in a fresh subprocess (so its VmHWM is its own): the model is loaded, a frame
with a ring-shaped unknown band is made, one matte runs, and the process reports its RSS after
loading (``base``), after making the frame (``frame``) and its high-water mark (``peak``); the
engine's share, ``peak - frame``, is set next to :func:`vfxmatte.memory.estimate_peak_bytes` for the same case.

    python benchmarks/bench_memory.py --out benchmarks/results/memory_cpu.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# (model, precision, sparse, frame h, frame w, tile, overlap, batch)
CASES = [
    ("tiny", "fp32", True, 256, 256, 256, 64, 1),
    ("tiny", "fp32", True, 512, 512, 512, 128, 1),
    ("tiny", "fp32", True, 1024, 1024, 1024, 256, 1),
    ("tiny", "fp32", False, 1024, 1024, 1024, 256, 1),
    ("tiny", "fp32", True, 1024, 1024, 512, 128, 2),
    ("tiny", "fp32", True, 2048, 2048, 256, 64, 1),
    ("tiny", "bf16", True, 1024, 1024, 1024, 256, 1),
    ("starter", "fp32", True, 512, 512, 512, 128, 1),
    ("starter", "fp32", True, 1024, 1024, 1024, 256, 1),
    ("starter", "fp32", False, 1024, 1024, 1024, 256, 1),
    ("starter", "bf16", True, 1024, 1024, 1024, 256, 1),
    ("starter", "bf16", False, 1024, 1024, 1024, 256, 1),
    ("starter", "fp32", True, 1024, 1024, 512, 128, 2),
    ("starter", "fp32", True, 2048, 2048, 256, 64, 1),
]


def _rss(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(key)


def run_case(case: list) -> dict:
    import numpy as np
    import torch

    from vfxmatte.engine import MattingSession
    from vfxmatte.memory import estimate_peak_bytes
    from vfxmatte.model import build_model

    torch.set_num_threads(1)
    name, precision, sparse, h, w, tile, overlap, batch = case
    kw = dict(device="cpu", precision=precision, sparse=sparse, tile_size=tile, overlap=overlap, batch_size=batch)
    if name == "starter":
        sess = MattingSession.from_checkpoint("starter", **kw)
    else:
        torch.manual_seed(0)
        sess = MattingSession(build_model(name).eval(), **kw)
    base = _rss("VmRSS")
    rng = np.random.default_rng(0)
    img = rng.random((h, w, 3), dtype=np.float32)
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2) / (min(h, w) / 2)
    tri = np.where(r < 0.6, 1.0, 0.0).astype(np.float32)
    tri[(r > 0.55) & (r < 0.7)] = 0.5
    frame = _rss("VmRSS")
    sess.matte(img, tri)
    peak = _rss("VmHWM")
    est = estimate_peak_bytes(sess.model.config, h, w, tile, overlap, batch, sess.numeric.dtype.itemsize, sess.stride) / 2**20
    return {"case": case, "base_mib": base, "frame_mib": frame, "peak_mib": peak,
            "engine_mib": peak - frame, "estimate_mib": est}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return
    rows = []
    for case in CASES:
        res = subprocess.run([sys.executable, __file__, "--case", json.dumps(case)], capture_output=True, text=True, check=True)
        row = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
