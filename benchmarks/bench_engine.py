"""Speed and memory of tiled inference against untiled, per model variant.

For 1K/2K/4K frames (and an 8K frame, tiled only) with 5 %, 20 % and 100 % of the frame
unknown, reports seconds per frame and peak RSS (each case in a fresh subprocess, so the peak
belongs to that case alone), GFLOPs per megapixel of each variant (counted by
torch.utils.flop_counter on one forward pass), the machine's measured conv throughput, and the
fraction of it each run achieves. Also reports the tiled-vs-untiled difference inside the unknown
region where both ran.

    python benchmarks/bench_engine.py --variants small r34 --out benchmarks/results/engine_cpu.json

Weights are random unless --checkpoint is given: speed does not depend on them, and the
tiled/untiled agreement is checked on trained weights in tests/test_engine.py.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_description, peak_rss_mib  # noqa: E402

SIZES = {"1K": (1024, 540), "2K": (2048, 1080), "4K": (4096, 2160), "8K": (8192, 4320)}


def make_frame(width: int, height: int, unknown_fraction: float, seed: int = 0):
    """A smooth random image and a trimap whose unknown band covers ``unknown_fraction``."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.random((max(height // 16, 2), max(width // 16, 2), 3)).astype(np.float32)
    img = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC).clip(0, 1)
    tri = np.zeros((height, width), np.float32)
    if unknown_fraction >= 1.0:
        tri[:] = 0.5
        return img, tri
    # A centred disc of foreground ringed by an unknown band: the band area is the fraction.
    yy, xx = np.mgrid[:height, :width]
    r = np.hypot(yy - height / 2, xx - width / 2)
    r_out = 0.45 * min(height, width)
    band = unknown_fraction * height * width / (2 * np.pi * r_out)  # thin-ring approximation
    r_in = max(r_out - band, 0)
    if band > r_out:  # ring too wide for a disc: use a rectangle band from the top
        tri[: int(unknown_fraction * height)] = 0.5
    else:
        tri[r < r_out] = 0.5
        tri[r < r_in] = 1.0
    return img, tri


def flops_per_megapixel(variant: str) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from vfxmatte.model import build_model
    from vfxmatte.trimap import UNKNOWN_CHANNEL

    m = build_model(variant).eval()
    x = torch.rand(1, 3, 512, 512)
    t = torch.zeros(1, 3, 512, 512)
    t[:, UNKNOWN_CHANNEL] = 1
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        m(x, t)
    return fc.get_total_flops() / (512 * 512 / 1e6) / 1e9


def conv_throughput_gflops(device: str = "cpu") -> float:
    """GFLOP/s of a large 3x3 conv (64->64 channels, 512^2), channels_last fp32 (fp16 on GPU)."""
    import torch

    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).to(device)
    x = torch.rand(1 if device == "cpu" else 16, 64, 512, 512, device=device)
    conv = conv.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
    flops = 2 * 64 * 64 * 9 * x.shape[0] * 512 * 512
    ctx = torch.autocast("cuda", dtype=torch.float16) if device != "cpu" else torch.no_grad()
    with torch.inference_mode(), ctx:
        for _ in range(2):
            conv(x)
        if device != "cpu":
            torch.cuda.synchronize()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < 2.0:
            conv(x)
            n += 1
        if device != "cpu":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
    return flops * n / dt / 1e9


def run_case(args: argparse.Namespace) -> dict:
    """Run one (variant, size, fraction, tiled) case in this process; print JSON."""
    import torch

    from vfxmatte.checkpoint import load_model
    from vfxmatte.engine import MattingSession
    from vfxmatte.model import build_model
    from vfxmatte.tiling import DEFAULT_OVERLAP, DEFAULT_TILE, plan_tiles, tiles_needing_inference

    torch.manual_seed(0)
    model = load_model(args.checkpoint)[0] if args.checkpoint else build_model(args.variant)
    w, h = SIZES[args.size]
    img, tri = make_frame(w, h, args.fraction)
    tile = (DEFAULT_TILE if args.tile is None else args.tile) if args.tiled else 0
    overlap = DEFAULT_OVERLAP if args.overlap is None else args.overlap
    sess = MattingSession(model, device=args.device, precision=args.precision, tile_size=tile, overlap=overlap,
                          fold_norms=bool(args.fold), sparse=bool(args.sparse))
    # Pixels the network actually processes (tiles run, or the padded whole frame).
    if tile:
        tiles = tiles_needing_inference(plan_tiles(h, w, tile, overlap, sess.stride), tri == 0.5, overlap, sess.stride)
        pixels = sum(t.h * t.w for t in tiles)
    else:
        pixels = (-(-h // 32) * 32) * (-(-w // 32) * 32)
    # Warm-up (allocator, kernels) on the frame scaled to 512 px wide: same band shape, so the
    # block-sparse path compiles its kernels too, as for every frame of a shot after the first.
    import cv2

    small = (512, max(-(-512 * h // w), 32))
    sess.matte(cv2.resize(img, small, interpolation=cv2.INTER_AREA), cv2.resize(tri, small, interpolation=cv2.INTER_NEAREST))
    if sess.device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    alpha = sess.matte(img, tri)
    if sess.device.type == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    out = {
        "variant": args.variant, "size": args.size, "unknown_fraction": args.fraction,
        "tiled": bool(args.tiled), "tile": tile or None, "overlap": overlap if tile else None,
        "fold_norms": bool(args.fold), "sparse": bool(args.sparse),
        "device": str(sess.device), "precision": sess.precision, "seconds": dt,
        "network_megapixels": pixels / 1e6, "peak_rss_mib": peak_rss_mib(),
    }
    if sess.device.type == "cuda":
        out["peak_gpu_mib"] = torch.cuda.max_memory_allocated() / 2**20
    if args.save_alpha:
        np.save(args.save_alpha, alpha)
    return out


def _tiling_suffix(tiling: str) -> str:
    """File-name suffix of a case run with a non-default ``TILE/OVERLAP`` tiling."""
    return "_t" + tiling.replace("/", "_")


def _band_difference(case: dict, key: str, tmp: Path, suffix_a: str, suffix_b: str) -> None:
    """Store the mean/max |difference| inside the unknown band of two saved alphas of ``case``'s
    frame (files ``<variant>_<size>_<fraction><suffix>.npy``) under ``case[key]``."""
    stem = f"{case['variant']}_{case['size']}_{case['unknown_fraction']}"
    a, b = tmp / f"{stem}{suffix_a}.npy", tmp / f"{stem}{suffix_b}.npy"
    if a.exists() and b.exists():
        w, h = SIZES[case["size"]]
        _, tri = make_frame(w, h, case["unknown_fraction"])
        d = np.abs(np.load(a) - np.load(b))[tri == 0.5]
        case[key] = {"mad": float(d.mean()), "max": float(d.max())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", nargs="+", default=["small", "r34"])
    ap.add_argument("--sizes", nargs="+", default=["1K", "2K", "4K"])
    ap.add_argument("--fractions", nargs="+", type=float, default=[0.05, 0.2, 1.0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                    help="the network's arithmetic, as a job's model.precision (recorded per case)")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--untiled-max-mp", type=float, default=9.0,
                    help="skip untiled runs above this many megapixels for r34 (memory)")
    ap.add_argument("--eight-k", action="store_true", help="add an 8K tiled case per variant")
    ap.add_argument("--tiled-only", action="store_true", help="skip the untiled runs")
    ap.add_argument("--unfolded-too", action="store_true",
                    help="also run each tiled case without batch-norm folding (its speed-up)")
    ap.add_argument("--dense-too", action="store_true",
                    help="also run each tiled case with dense inference (block-sparse is the default)")
    ap.add_argument("--other-tilings", nargs="+", default=[], metavar="TILE/OVERLAP",
                    help="also run the tiled block-sparse cases with these tile sizes and overlaps, e.g. 1280/384 "
                         "(default: the engine's DEFAULT_TILE / DEFAULT_OVERLAP)")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--out", default="benchmarks/results/engine_cpu.json")
    # internal: one case per subprocess
    ap.add_argument("--case", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--size", help=argparse.SUPPRESS)
    ap.add_argument("--fraction", type=float, help=argparse.SUPPRESS)
    ap.add_argument("--tiled", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--save-alpha", help=argparse.SUPPRESS)
    ap.add_argument("--fold", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--overlap", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--tile", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--sparse", type=int, default=1, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        print(json.dumps(run_case(args)))
        return

    out_path = Path(args.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine_description(), "device": args.device,
              "conv_gflops": conv_throughput_gflops(args.device), "variants": {}, "cases": []}
    for v in args.variants:
        report["variants"][v] = {"gflops_per_megapixel": flops_per_megapixel(v)}
    modes = (1,) if args.tiled_only else (1, 0)
    # (variant, size, fraction, tiled, fold, sparse, "TILE/OVERLAP" or None = the engine's defaults)
    cases = [(v, s, f, t, 1, 1, None) for v in args.variants for s in args.sizes for f in args.fractions for t in modes]
    if args.unfolded_too:
        cases += [(v, s, f, 1, 0, 1, None) for v in args.variants for s in args.sizes for f in args.fractions]
    if args.dense_too:
        cases += [(v, s, f, 1, 1, 0, None) for v in args.variants for s in args.sizes for f in args.fractions]
    for tiling in args.other_tilings:
        cases += [(v, s, f, 1, 1, 1, tiling) for v in args.variants for s in args.sizes for f in args.fractions]
    if args.eight_k:
        cases += [(v, "8K", f, 1, 1, 1, None) for v in args.variants for f in (0.05,)]
    tmp = Path(out_path.parent / "_alphas")
    tmp.mkdir(exist_ok=True)
    for v, s, f, tiled, fold, sparse, tiling in cases:
        w, h = SIZES[s]
        if not tiled and v == "r34" and w * h / 1e6 > args.untiled_max_mp:
            report["cases"].append({"variant": v, "size": s, "unknown_fraction": f, "tiled": False,
                                    "skipped": "untiled r34 exceeds the memory budget"})
            continue
        other = "" if tiling is None else _tiling_suffix(tiling)
        save = tmp / f"{v}_{s}_{f}_{tiled}{'' if fold else '_unfolded'}{'' if sparse else '_dense'}{other}.npy"
        cmd = [sys.executable, __file__, "--case", "--variant", v, "--size", s, "--fraction", str(f),
               "--tiled", str(tiled), "--fold", str(fold), "--sparse", str(sparse), "--device", args.device,
               "--precision", args.precision,
               "--save-alpha", str(save)]
        if tiling is not None:
            t_px, _, o_px = tiling.partition("/")
            cmd += ["--tile", t_px, "--overlap", o_px]
        if args.checkpoint:
            cmd += ["--checkpoint", args.checkpoint]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, check=True)
            case = json.loads(res.stdout.strip().splitlines()[-1])
        except subprocess.TimeoutExpired:
            case = {"variant": v, "size": s, "unknown_fraction": f, "tiled": bool(tiled), "skipped": "timeout"}
        except subprocess.CalledProcessError as exc:
            case = {"variant": v, "size": s, "unknown_fraction": f, "tiled": bool(tiled),
                    "skipped": f"failed: {exc.stderr.strip().splitlines()[-1] if exc.stderr else exc}"}
        if tiling is not None:
            case["other_tiling"] = tiling
        if "seconds" in case:
            gf = report["variants"][v]["gflops_per_megapixel"] * case["network_megapixels"]
            case["achieved_gflops"] = gf / case["seconds"]
            case["fraction_of_conv_peak"] = case["achieved_gflops"] / report["conv_gflops"]
        report["cases"].append(case)
        print(json.dumps(case), flush=True)
        out_path.write_text(json.dumps(report, indent=2))
    # tiled vs untiled, and dense vs block-sparse, agreement where both ran
    for c in report["cases"]:
        if "seconds" not in c:
            continue
        if c.get("tiled") is False:
            _band_difference(c, "tiled_vs_untiled", tmp, "_0", "_1")
        if c.get("sparse") is False:
            _band_difference(c, "sparse_vs_dense", tmp, "_1_dense", "_1")
        if c.get("other_tiling"):
            _band_difference(c, "vs_default_tiling", tmp, "_1" + _tiling_suffix(c["other_tiling"]), "_1")
    for f in tmp.glob("*.npy"):
        f.unlink()
    tmp.rmdir()
    out_path.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
