"""Score checkpoints on the README's example shot (procedural hair, ACEScg plates, 960x540).

The shot is what `vfxmatte example shot010` writes, with its true alphas: a product-level check
that a new starter does not regress on the first thing a user runs. Its hair is drawn by the
training generator's strand code (`vfxmatte.procedural`), but the shot itself (figure, motion,
garden, linear-light compositing, ACEScg plates read through OCIO) is in no training stream, so
it may be used to compare checkpoints.

    python benchmarks/bench_example.py --model v10=starter --model v9=runs/v9.safetensors \\
        --out benchmarks/results/example_v10.json

Every model runs in the same process on the same frames, with the engine's default tiling, in
the precision given (fp32 default); metrics in the unknown band as in `vfxmatte.metrics`, and
the clip's dtSSD and MESSDdt in the band, and the SAD split by what the truth is (background,
partial: too low or too high, opaque; `metrics.sad_breakdown`). ``--temporal`` also scores each model's mattes through
the temporal stage with its defaults (`vfxmatte.temporal`, as `vfxmatte run` applies it: each
frame with its neighbours among the frames scored), as ``LABEL + temporal``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_description  # noqa: E402

from vfxmatte.color import to_working  # noqa: E402
from vfxmatte.engine import MattingSession  # noqa: E402
from vfxmatte import metrics  # noqa: E402
from vfxmatte.evaluate import EvalSample, evaluate_predictor  # noqa: E402
from vfxmatte.flow import flow_image  # noqa: E402
from vfxmatte.examples import make_shot010  # noqa: E402
from vfxmatte.io.image import read_image, read_mask, read_trimap  # noqa: E402
from vfxmatte.io.sequence import FrameSequence, format_frames, parse_frame_range  # noqa: E402
from vfxmatte.temporal import TemporalSettings, smooth_clip  # noqa: E402


def load_shot(root: Path, frames: list[int], width: int = 960, height: int = 540) -> list[EvalSample]:
    shot = make_shot010(root, frames=frames, width=width, height=height)
    plates, trimaps, truth = (FrameSequence(p) for p in (shot.plates, shot.trimaps, shot.truth))
    samples = []
    for f in shot.frames:
        rgb, _ = read_image(plates.path(f))
        image = to_working(rgb, shot.colorspace)
        samples.append(EvalSample(str(f), image, read_trimap(trimaps.path(f)), read_mask(truth.path(f))))
    return samples


def temporal(samples: list[EvalSample], raw: list, settings: TemporalSettings) -> list:
    """The shot's raw mattes through the temporal stage: frame i with frames i - r .. i + r."""
    return smooth_clip(raw, [s.trimap for s in samples], [flow_image(s.image) for s in samples], settings)


def scores(samples: list[EvalSample], alphas: list) -> dict:
    """The per-frame report of ``alphas`` (in sample order) and the clip's temporal errors."""
    it = iter(alphas)
    report = evaluate_predictor(samples, lambda image, trimap: next(it), quantize=False).to_dict()
    gts, tris = [s.alpha for s in samples], [s.trimap for s in samples]
    # Which kind of error the SAD is: per-frame means of metrics.sad_breakdown (they sum to SAD).
    parts = [metrics.sad_breakdown(a, g, t) for a, g, t in zip(alphas, gts, tris)]
    report["mean"]["sad_breakdown"] = {k: sum(p[k] for p in parts) / len(parts) for k in parts[0]}
    if len(samples) < 2:  # no temporal error of one frame
        report["mean"]["dtssd"] = report["mean"]["messddt"] = float("nan")
        return report
    report["mean"]["dtssd"] = metrics.dtssd(alphas, gts, tris)
    report["mean"]["messddt"] = metrics.messddt(alphas, gts, flows=metrics.gt_motion(gts), trimaps=tris)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", action="append", required=True, metavar="LABEL=CHECKPOINT")
    ap.add_argument("--frames", default="1001-1024", help="frame range, e.g. 1001-1024x4 (default all 24)")
    ap.add_argument("--precision", default="fp32", choices=["auto", "fp32", "bf16"])
    ap.add_argument("--temporal", action="store_true", help="also score the mattes through the temporal stage (defaults)")
    ap.add_argument("--out", type=Path, required=True, help="JSON results file")
    args = ap.parse_args(argv)
    frames = parse_frame_range(args.frames)

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        samples = load_shot(Path(tmp) / "shot010", frames)
        for spec in args.model:
            label, _, ckpt = spec.rpartition("=")
            session = MattingSession.from_checkpoint(ckpt, device="cpu", precision=args.precision)
            raw = [session.matte(s.image, s.trimap) for s in samples]
            results[label or ckpt] = {"checkpoint": ckpt, "sha256": session.checkpoint.sha256, **scores(samples, raw)}
            if args.temporal:
                results[f"{label or ckpt} + temporal"] = {
                    "checkpoint": ckpt, "sha256": session.checkpoint.sha256,
                    "temporal": TemporalSettings().to_dict(), **scores(samples, temporal(samples, raw, TemporalSettings())),
                }
    doc = {
        "benchmark": "bench_example",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_description(),
        "shot": f"vfxmatte example shot010 (960x540 ACEScg), frames {format_frames(frames)}",
        "precision": args.precision,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    for label, r in results.items():
        m = r["mean"]
        print(f"{label:12s} SAD {m['sad']:.2f}  MSE {m['mse']:.5f}  Grad {m['grad']:.2f}  Conn {m['conn']:.2f}  "
              f"dtSSD {m['dtssd']:.3f}  MESSDdt {m['messddt']:.2f}")
        b = m["sad_breakdown"]
        print(f"{'':12s} SAD in the band: background {b['background']:.2f}  partial {b['partial']:.2f} "
              f"(under {b['partial_under']:.2f}, over {b['partial_over']:.2f})  opaque {b['opaque']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
