"""Time the starter against classical peers on full-size frames, in one run.

The product claim is "at least 10x faster than closed-form at 2K" (issue 20, section 4). The
alphamatting-dev photos are about 800 px, so `bench_quality.py` cannot show it; this script
times every method on the same frames of `vfxmatte example shot010` rendered at the size given
(default 2K, 2048x1080, ACEScg plates read through OCIO as `vfxmatte run` reads them), and reports
each method's seconds per frame as a ratio to closed-form's measured in the same process.

    python benchmarks/bench_speed.py --model v10=starter --peers cf \\
        --out benchmarks/results/speed_2k.json --md benchmarks/results/speed_2k.md

Every method sees the same working-space image and trimap. The network runs as `vfxmatte run`
runs it (its default tiling and precision ``auto``), after one warm-up call on the first frame
that is not timed. Band SAD / Grad (vs the shot's true alpha, unquantised) come with the times so
that a fast but broken method shows; they are not a quality benchmark (the shot is procedural).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_example import load_shot  # noqa: E402
from common import machine_description, peak_rss_mib  # noqa: E402
from peers import PEERS  # noqa: E402

from vfxmatte.engine import MattingSession  # noqa: E402
from vfxmatte.evaluate import evaluate_predictor  # noqa: E402
from vfxmatte.io.sequence import format_frames, parse_frame_range  # noqa: E402

SIZES = {"HD": (1920, 1080), "2K": (2048, 1080), "UHD": (3840, 2160), "4K": (4096, 2160)}


def parse_size(text: str) -> tuple[int, int]:
    if text.upper() in SIZES:
        return SIZES[text.upper()]
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit():
        raise argparse.ArgumentTypeError(f"size {text!r}: want 2K, 4K, HD, UHD or WxH")
    return int(w), int(h)


def time_method(samples, predict) -> dict:
    """Seconds per frame and band scores of ``predict`` over ``samples`` (unquantised)."""
    report = evaluate_predictor(samples, predict, quantize=False).to_dict()
    seconds = [r["seconds"] for r in report["images"]]
    return {"seconds_per_frame": sum(seconds) / len(seconds), "seconds": seconds,
            "sad": report["mean"]["sad"], "grad": report["mean"]["grad"],
            "process_peak_rss_mib": peak_rss_mib()}


def run(models: list[tuple[str, str]], peers: list[str], size: tuple[int, int], frames: list[int]) -> dict:
    """All methods on the same frames; ratios are to ``cf`` when it ran."""
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        samples = load_shot(Path(tmp) / "shot010", frames, width=size[0], height=size[1])
        unknown = float(sum((s.trimap == 0.5).mean() for s in samples) / len(samples))
        for label, ckpt in models:
            session = MattingSession.from_checkpoint(ckpt)  # device and precision auto, as `run`
            session.matte(samples[0].image, samples[0].trimap)  # warm-up, not timed
            r = time_method(samples, session.matte)
            r.update(kind="model", checkpoint=ckpt, sha256=session.checkpoint.sha256,
                     device=str(session.device), precision=session.precision)
            results[label] = r
        for name in peers:
            peer = PEERS[name]
            if peer.unavailable:
                results[name] = {"kind": "peer", "skipped": peer.unavailable}
                continue
            results[name] = {"kind": "peer", "description": peer.description, **time_method(samples, peer.predict)}
    cf = results.get("cf", {}).get("seconds_per_frame")
    for r in results.values():
        if cf and "seconds_per_frame" in r:
            r["time_vs_cf"] = r["seconds_per_frame"] / cf
            r["speedup_over_cf"] = cf / r["seconds_per_frame"]
    return {"size": list(size), "frames": format_frames(frames), "unknown_fraction": unknown, "results": results}


def markdown(doc: dict) -> str:
    m = doc["machine"]
    w, h = doc["size"]
    lines = [
        f"# Speed at {w}x{h} against closed-form (`bench_speed.py`)", "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM, {m['torch_threads']} torch threads; "
        f"torch {m['torch']}; native bf16: {m['native_bf16']}.", "",
        f"Frames {doc['frames']} of `vfxmatte example shot010` at {w}x{h}; unknown band "
        f"{100 * doc['unknown_fraction']:.1f}% of the frame. One process, methods one after another.", "",
        "| method | s/frame | time vs cf | speed-up over cf | band SAD | band Grad | peak RSS MiB (cumulative) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in doc["results"].items():
        if "skipped" in r:
            lines.append(f"| {label} | skipped: {r['skipped']} | | | | | |")
            continue
        name = f"{label} ({r['precision']}, {r['device']})" if r["kind"] == "model" else label
        vs = f"{r['time_vs_cf']:.3f}x" if "time_vs_cf" in r else ""
        up = f"{r['speedup_over_cf']:.1f}x" if "speedup_over_cf" in r else ""
        lines.append(f"| {name} | {r['seconds_per_frame']:.2f} | {vs} | {up} | {r['sad']:.2f} | {r['grad']:.2f} | "
                     f"{r['process_peak_rss_mib']:.0f} |")
    if doc.get("note"):
        lines += ["", f"Note: {doc['note']}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", default=[], metavar="LABEL=CHECKPOINT",
                    help="a checkpoint to time ('starter' for the shipped one); repeatable")
    ap.add_argument("--peers", default="cf", help="comma-separated peers of benchmarks/peers.py (default cf)")
    ap.add_argument("--size", type=parse_size, default=SIZES["2K"], help="2K (default), 4K, HD, UHD or WxH")
    ap.add_argument("--frames", default="1001-1003", help="frames of the shot (default 1001-1003)")
    ap.add_argument("--note", default="", help="free text recorded with the results")
    ap.add_argument("--out", type=Path, required=True, help="JSON results file")
    ap.add_argument("--md", type=Path, help="also write a Markdown table here")
    args = ap.parse_args(argv)
    peers = [p for p in args.peers.split(",") if p]
    unknown = [p for p in peers if p not in PEERS]
    if unknown or not (args.model or peers):
        ap.error(f"unknown peers {unknown} (have {sorted(PEERS)})" if unknown else "nothing to time")
    models = []
    for spec in args.model:
        label, _, ckpt = spec.rpartition("=")
        models.append((label or ckpt, ckpt))

    started = time.time()
    doc = {"benchmark": "bench_speed", "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "machine": machine_description(), "command": shlex.join(["python", "benchmarks/bench_speed.py", *sys.argv[1:]])
           if argv is None else None, "note": args.note,
           **run(models, peers, args.size, parse_frame_range(args.frames))}
    doc["wall_s"] = time.time() - started
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    if args.md:
        args.md.write_text(markdown(doc))
    print(markdown(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
