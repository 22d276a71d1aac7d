#!/usr/bin/env python
"""Matte quality of vfxmatte and classical peers on an alphamatting.com-style folder.

    python benchmarks/bench_quality.py --data PATH/TO/alphamatting-dev \\
        --out benchmarks/results/quality.json [--md benchmarks/results/quality.md] \\
        [--methods cf knn ramp vfxmatte] [--model starter|PATH | --model LABEL=PATH ...]
        [--flip-tta LABEL ...] [--dense LABEL ...] [--limit N]
    python benchmarks/bench_quality.py --from-json benchmarks/results/quality.json [--md FILE]

For every trimap set (trimap1, trimap2) and every method, one fresh Python subprocess loads the
set, runs one warm-up prediction on a 192x192 synthetic plate (numba/torch start-up is not timed),
then predicts and scores every plate with :func:`vfxmatte.evaluate.evaluate_predictor`
(predictions rounded to 8 bits and composited with the trimap's known regions, then SAD / MSE /
Grad / Conn as the Composition-1k MATLAB code; see :mod:`vfxmatte.metrics`). A process per job
makes the peak RSS that method's own.

Writes a JSON (machine, protocol, per-image and mean scores per method and trimap set) to --out
and a Markdown table to --md or stdout. The data is only read and scored: nothing is trained or
tuned on it, and no file of it is copied.
"""

from __future__ import annotations

import argparse
import collections
import datetime as _dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers  # noqa: E402  (benchmarks/ is not a package)
from common import machine_description, peak_rss_mib  # noqa: E402

MODEL_METHOD = "vfxmatte"
TRIMAP_SETS = ("trimap1", "trimap2")
BASELINE = "cf"


# ----------------------------------------------------------------------------------------------
# Worker: one method on one trimap set, in its own process
# ----------------------------------------------------------------------------------------------


def _model_session(model: str, tta: str = "none", dense: bool = False, precision: str = "auto"):
    from vfxmatte.engine import MattingSession  # the engine is optional for this script

    return MattingSession.from_checkpoint(model, device="cpu", tta=tta, sparse=not dense, precision=precision)


def _warmup_sample():
    """A 192x192 plate with a soft disc, so JIT compilation and lazy init happen before timing.

    Big enough, and its band thin enough, that vfxmatte's block-sparse path runs (on a tiny
    plate the whole frame is near the band and the dense path would run instead), as in a
    shot where every frame after the first finds its kernels compiled.
    """
    yy, xx = np.mgrid[0:192, 0:192]
    r = np.hypot(yy - 96, xx - 96)
    alpha = np.clip((60 - r) / 6 + 0.5, 0, 1).astype(np.float32)
    image = (alpha[..., None] * np.array([0.9, 0.6, 0.3]) + (1 - alpha[..., None]) * 0.2).astype(np.float32)
    trimap = np.full(alpha.shape, 0.5, np.float32)
    trimap[alpha == 1] = 1.0
    trimap[alpha == 0] = 0.0
    return image, trimap


def run_worker(args: argparse.Namespace) -> int:
    from vfxmatte.evaluate import evaluate_predictor, load_eval_set

    precision = None
    if args.worker.startswith(MODEL_METHOD):
        session = _model_session(args.model[0], args.tta, args.dense_worker, args.precision)
        predict, precision = session.matte, session.numeric.name
    else:
        predict = peers.PEERS[args.worker].predict
    samples = load_eval_set(args.data, trimap_dir=args.trimap_dir)
    if args.limit:
        samples = samples[: args.limit]

    start = time.perf_counter()
    predict(*_warmup_sample())
    warmup = time.perf_counter() - start

    def progress(done: int, total: int, name: str) -> None:
        print(f"  {args.worker:>9} {args.trimap_dir} {done}/{total} {name}", file=sys.stderr, flush=True)

    report = evaluate_predictor(samples, predict, progress=progress)
    result = report.to_dict()
    result["warmup_seconds"] = warmup
    if precision is not None:
        result["precision"] = precision
    result["process_peak_rss_mib"] = peak_rss_mib()
    Path(args.worker_out).write_text(json.dumps(result))
    return 0


# ----------------------------------------------------------------------------------------------
# Driver
# ----------------------------------------------------------------------------------------------


def machine_info() -> dict:
    """``common.machine_description()`` plus the versions of the matting libraries used here."""
    info = machine_description()
    for module in ("scipy", "cv2", "pymatting", "numba"):
        try:
            info[module] = __import__(module).__version__
        except ImportError:
            info[module] = None
    return info


def _engine_unavailable() -> str | None:
    try:
        from vfxmatte.engine import MattingSession  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - report why, never fail the benchmark
        return f"vfxmatte.engine not importable ({type(exc).__name__}: {exc})"
    return None


def model_methods(specs: list[str]) -> dict[str, str]:
    """``--model`` values -> {method name: checkpoint}. One unlabelled model is method
    ``vfxmatte``; ``LABEL=PATH`` entries are methods ``vfxmatte:LABEL`` (several models, one run)."""
    out: dict[str, str] = {}
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep:
            label, path = "", spec
        name = f"{MODEL_METHOD}:{label}" if label else MODEL_METHOD
        if name in out:
            raise ValueError(f"--model {spec}: method {name} given twice (label models as LABEL=PATH)")
        out[name] = path
    return out


def run_job(method: str, trimap_dir: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench_quality_") as tmp:
        out = Path(tmp) / "result.json"
        cmd = [
            sys.executable, str(Path(__file__).resolve()), "--worker", method, "--data", str(args.data),
            "--trimap-dir", trimap_dir, "--worker-out", str(out),
        ]
        if method.startswith(MODEL_METHOD):
            cmd += ["--model", args.models[method]]
            if method in args.flipped:
                cmd += ["--tta", "flip"]
            if method in args.dense_methods:
                cmd += ["--dense-worker"]
            if method in args.fp32_methods:
                cmd += ["--precision", "fp32"]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        start = time.perf_counter()
        tail: collections.deque[str] = collections.deque(maxlen=5)
        with subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) as proc:
            for line in proc.stderr:  # relay the worker's progress, keep the end for error reports
                sys.stderr.write(line)
                tail.append(line.rstrip())
            returncode = proc.wait()
        wall = time.perf_counter() - start
        if returncode != 0 or not out.is_file():
            reason = tail[-1] if returncode == 3 and tail else f"worker exited with {returncode}"
            return {"error": reason, "stderr_tail": list(tail), "wall_seconds": wall}
        result = json.loads(out.read_text())
        result["wall_seconds"] = wall
        return result


def _fmt(x, spec: str) -> str:
    return "n/a" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, spec)


def markdown(doc: dict) -> str:
    machine = doc["machine"]
    lines = [
        f"# Matte quality on `{Path(doc['data']).name}`",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['ram_gib']} GiB RAM; "
        f"numpy {machine['numpy']}, torch {machine['torch']}, pymatting {machine.get('pymatting')}"
        + ("; native bf16 (AVX512_BF16/AMX)." if machine.get("native_bf16") else "."),
        "",
        "SAD, Grad, Conn: sums over the unknown band / 1000; MSE: mean over the band (alpha in [0, 1]); "
        "Composition-1k MATLAB conventions, predictions rounded to 8 bits. s/image excludes a warm-up "
        "call. Peak RSS: the worker process's high-water mark (interpreter, libraries and the loaded set "
        "included); added peak: the part above the resident memory at the start of scoring.",
    ]
    for trimap_dir, methods in doc["results"].items():
        base = methods.get(BASELINE, {}).get("seconds_per_image")
        n = max((m.get("count", 0) for m in methods.values()), default=0)
        lines += [
            "",
            f"## {trimap_dir} ({n} images)",
            "",
            "| method | SAD | MSE | Grad | Conn | s/image | time vs cf | peak RSS MiB | added peak MiB |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, r in methods.items():
            if "error" in r:
                lines.append(f"| {name} | failed: {r['error']} | | | | | | | |")
                continue
            m, spi = r["mean"], r["seconds_per_image"]
            ratio = spi / base if base else None
            shown = f"{name} ({r['precision']})" if r.get("precision") else name
            lines.append(
                f"| {shown} | {_fmt(m['sad'], '.2f')} | {_fmt(m['mse'], '.5f')} | {_fmt(m['grad'], '.2f')} | "
                f"{_fmt(m['conn'], '.2f')} | {_fmt(spi, '.3f')} | {_fmt(ratio, '.2f') + 'x' if ratio is not None else 'n/a'} | "
                f"{_fmt(r.get('process_peak_rss_mib'), '.0f')} | {_fmt(r.get('peak_rss_delta_mib'), '.0f')} |"
            )
    if doc.get("notes"):
        lines += ["", "Notes:", ""] + [f"- {n}" for n in doc["notes"]]
    if doc["skipped"]:
        lines += ["", "Skipped:", ""] + [f"- `{k}`: {v}" for k, v in doc["skipped"].items()]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="folder with image/, alpha/, trimap1/, trimap2/")
    ap.add_argument("--out", type=Path, help="JSON results file")
    ap.add_argument("--md", type=Path, help="Markdown table file (default: stdout)")
    ap.add_argument("--methods", nargs="+", help=f"subset of {sorted(peers.PEERS)} and {MODEL_METHOD!r}")
    ap.add_argument("--model", action="append", default=None,
                    help="checkpoint name or path for the vfxmatte method (default starter); repeat as "
                         "LABEL=PATH to score several models in one run (methods vfxmatte:LABEL)")
    ap.add_argument("--flip-tta", action="append", default=[], metavar="LABEL",
                    help="run the model labelled LABEL with flip test-time augmentation (repeatable)")
    ap.add_argument("--dense", action="append", default=[], metavar="LABEL",
                    help="run the model labelled LABEL with dense inference instead of block-sparse (repeatable)")
    ap.add_argument("--fp32", action="append", default=[], metavar="LABEL",
                    help="run the model labelled LABEL in fp32 (default: auto, bf16 on CPUs with native bf16; repeatable)")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N plates of each set")
    ap.add_argument("--trimap-sets", nargs="+", default=list(TRIMAP_SETS))
    ap.add_argument("--from-json", type=Path, help="only re-render the Markdown of an earlier --out file")
    ap.add_argument("--note", action="append", default=[], help="a remark stored in the JSON and printed under the tables")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--trimap-dir", help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", help=argparse.SUPPRESS)
    ap.add_argument("--tta", default="none", help=argparse.SUPPRESS)
    ap.add_argument("--dense-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--precision", default="auto", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.model = args.model or ["starter"]
    try:
        args.models = model_methods(args.model)
    except ValueError as exc:
        ap.error(str(exc))
    args.flipped = _labelled(ap, args, "--flip-tta", args.flip_tta)  # methods run with flip TTA
    args.dense_methods = _labelled(ap, args, "--dense", args.dense)  # methods run densely
    args.fp32_methods = _labelled(ap, args, "--fp32", args.fp32)  # models run in fp32 on bf16 CPUs
    if args.from_json is None and (args.data is None or (args.worker is None and args.out is None)):
        ap.error("--data and --out are required")
    return args


def _labelled(ap: argparse.ArgumentParser, args: argparse.Namespace, option: str, labels: list[str]) -> set[str]:
    """The model methods that ``option LABEL`` names; each LABEL needs a ``--model LABEL=PATH``."""
    methods = set()
    for label in labels:
        method = f"{MODEL_METHOD}:{label}"
        if method not in args.models:
            ap.error(f"{option} {label}: no --model {label}=PATH")
        methods.add(method)
    return methods


def _emit_markdown(doc: dict, md: Path | None) -> None:
    table = markdown(doc)
    if md:
        md.parent.mkdir(parents=True, exist_ok=True)
        md.write_text(table)
    else:
        print(table)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        _emit_markdown(json.loads(args.from_json.read_text()), args.md)
        return 0
    if args.worker:
        from vfxmatte.errors import VfxMatteError

        try:
            return run_worker(args)
        except VfxMatteError as exc:  # a missing checkpoint or bad data: one line, no traceback
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
            return 3

    skipped = dict(peers.unavailable_peers())
    engine_missing = _engine_unavailable()
    if engine_missing:
        skipped[MODEL_METHOD] = engine_missing
    known = set(peers.PEERS) | {MODEL_METHOD}
    requested = args.methods or [*peers.PEERS, MODEL_METHOD]
    unknown = [m for m in requested if m not in known]
    if unknown:
        print(f"error: unknown methods {unknown}; choose from {sorted(known)}", file=sys.stderr)
        return 2
    if MODEL_METHOD in skipped:
        skipped.update({m: skipped[MODEL_METHOD] for m in args.models})
    # 'vfxmatte' stands for every --model given
    expanded = [x for m in requested for x in (args.models if m == MODEL_METHOD else [m])]
    methods = [m for m in expanded if m not in skipped]

    doc = {
        "benchmark": "matte quality (SAD/MSE/Grad/Conn)",
        "data": str(args.data.resolve()),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "protocol": {
            "metrics": "vfxmatte.metrics (Composition-1k MATLAB: SAD/1000, MSE mean, Grad/1000 sigma 1.4, Conn/1000 theta 0.15)",
            "prediction": "clipped, rounded to 8 bits, known trimap regions pasted (fg=1, bg=0)",
            "timing": "seconds per predict() call after one 192x192 warm-up call; one fresh process per method and trimap set",
            "limit": args.limit or None,
            "model": args.models.get(MODEL_METHOD) if MODEL_METHOD in methods else None,
            "models": {m: p for m, p in args.models.items() if m in methods},
            "training": "none: the data is only read and scored",
        },
        "results": {},
        "skipped": {k: v for k, v in skipped.items() if k in requested or not args.methods},
        "notes": list(args.note),
    }
    for trimap_dir in args.trimap_sets:
        doc["results"][trimap_dir] = {}
        for method in methods:
            print(f"[{trimap_dir}] {method} ...", file=sys.stderr, flush=True)
            doc["results"][trimap_dir][method] = result = run_job(method, trimap_dir, args)
            if "error" in result:
                print(f"[{trimap_dir}] {method} failed: {result['error']}", file=sys.stderr)
                for line in result["stderr_tail"]:
                    print(f"    {line}", file=sys.stderr)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2) + "\n")
    _emit_markdown(doc, args.md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
