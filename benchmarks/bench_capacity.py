#!/usr/bin/env python
"""Capacity at equal training compute (issue 20 §3): does a bigger network learn more per FLOP?

    python benchmarks/bench_capacity.py --small-steps 600 --parallel 2 \\
        --out benchmarks/results/capacity.json --md benchmarks/results/capacity.md
    python benchmarks/bench_capacity.py --report-only --small-steps 600 --out ... --md ...

Trains every architecture of :data:`ARCHS` from scratch with one recipe,
``training/configs/capacity.yaml`` (v11's data mix at 512 px, batch 4, constant peak lr), and
gives each the same training compute: an architecture whose forward pass costs ``F`` GFLOP per
sample runs ``small_steps * F_small / F`` steps and validates every ``val_every * F_small / F``
steps, so the k-th validation of every run falls at the same FLOPs. Validation is the run's own
(bf16 as it trains): the held-out ``paper`` protocol plus ``textured``, ``mesh`` and ``yarn`` of
training/PROTOCOL.md, 32 composites at 512 px each, never benchmark photos.

Resumable: each run lives in ``--runs/<name>`` and continues from its latest state when the same
command runs again; a larger ``--small-steps`` extends every run on the same schedule (the lr is
constant after the warm-up, so earlier steps stay valid). ``--report-only`` re-reads the runs'
logs without training. Training FLOPs are estimated as 3x the forward FLOPs (backward ~2x).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # the training package (not installed)
from common import machine_description  # noqa: E402  (benchmarks/ is not a package)

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "training" / "configs" / "capacity.yaml"

#: name -> the ``model:`` value of the training config. ``small-deep`` is small with ResNet-34's
#: block counts; ``small-wide`` is small at 1.5x every width; ``r34`` is the paper's network.
ARCHS: dict[str, str | dict] = {
    "small": "small",
    "small-deep": {"variant": "small", "encoder_layers": [3, 4, 6, 3]},
    "small-wide": {
        "variant": "small",
        "encoder_widths": [48, 48, 96, 192, 384],
        "decoder_widths": [192, 96, 48, 48],
        "tcp_channels": 24,
    },
    "r34": "r34",
}
#: The protocols the runs validate on, as their metrics.jsonl keys prefix them ("" = paper).
PROTOCOLS = {"paper": "", "textured": "textured.", "mesh": "mesh.", "yarn": "yarn."}
REFERENCE = "small"


def _model_arg(spec: str | dict) -> str:
    return f"model={json.dumps(spec)}"  # JSON is YAML: --set parses the value as YAML


def forward_gflop(spec: str | dict, size: int) -> tuple[float, int]:
    """Forward GFLOP of one ``size``-px sample, and the parameter count, of an architecture."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from training.config import load_config
    from vfxmatte.model import build_model
    from vfxmatte.trimap import UNKNOWN_CHANNEL

    net = build_model(load_config([CONFIG], overrides=[_model_arg(spec)]).architecture()).eval()
    x = torch.rand(1, 3, size, size)
    t = torch.zeros(1, 3, size, size)
    t[:, UNKNOWN_CHANNEL] = 1
    with FlopCounterMode(display=False) as fc, torch.no_grad():
        net(x, t)
    return fc.get_total_flops() / 1e9, sum(p.numel() for p in net.parameters())


def plan(small_steps: int, val_every: int, size: int, names: list[str]) -> dict[str, dict]:
    """Steps and validation interval per architecture for equal FLOPs at every validation."""
    cost = {n: forward_gflop(ARCHS[n], size) for n in dict.fromkeys([REFERENCE, *names])}
    f_ref = cost[REFERENCE][0]
    out = {}
    for n in names:
        f, params = cost[n]
        every = max(1, round(val_every * f_ref / f))
        points = max(1, small_steps // val_every)
        out[n] = {"model": ARCHS[n], "params": params, "forward_gflop_per_sample": f,
                  "val_every": every, "steps": every * points}
    return out


def command(name: str, p: dict, runs: Path) -> list[str]:
    return [
        sys.executable, "-m", "training", "train", "-c", str(CONFIG.relative_to(ROOT)),
        "--set", _model_arg(p["model"]),
        "--set", f"train.steps={p['steps']}", "--set", f"train.val_every={p['val_every']}",
        "--set", f"train.out_dir={runs / name}",
    ]


def train_all(planned: dict[str, dict], runs: Path, parallel: int) -> dict[str, int]:
    """Run the trainings, ``parallel`` at a time, one torch thread each; exit code per run."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    pending, running, codes = list(planned), {}, {}
    while pending or running:
        while pending and len(running) < parallel:
            name = pending.pop(0)
            (runs / name).mkdir(parents=True, exist_ok=True)
            log = open(runs / name / "train.log", "ab")
            running[name] = (subprocess.Popen(command(name, planned[name], runs), cwd=ROOT, env=env,
                                              stdout=log, stderr=subprocess.STDOUT), log)
        done = None
        while done is None:
            for name, (proc, log) in running.items():
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    continue
                done = name
                break
        proc, log = running.pop(done)
        log.close()
        codes[done] = proc.returncode
    return codes


def read_run(run: Path, p: dict, batch: int) -> dict:
    """The learning curve (validations) and training speed recorded in a run's metrics.jsonl."""
    path = run / "metrics.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    vals: dict[int, dict] = {}
    step_times: dict[int, float] = {}
    for r in rows:  # a resume repeats a few steps: the last record of a step wins
        if r.get("kind") == "val":
            vals[r["step"]] = r
        elif r.get("kind") == "train":
            step_times[r["step"]] = r["step_time_s"]
    curve = []
    for step in sorted(vals):
        r, samples = vals[step], step * batch
        point = {"step": step, "samples": samples,
                 "train_pflop": 3 * p["forward_gflop_per_sample"] * samples / 1e6}
        for proto, prefix in PROTOCOLS.items():
            point[proto] = {"sad": r.get(prefix + "sad"), "grad": r.get(prefix + "grad")}
        curve.append(point)
    done = max(step_times, default=0)
    return {**p, "steps_done": done, "curve": curve,
            "median_step_s": statistics.median(step_times.values()) if step_times else None}


def slope(curve: list[dict], proto: str) -> float | None:
    """Least-squares slope of log SAD against log compute over the curve: SAD ~ C^slope."""
    pts = [(math.log(c["train_pflop"]), math.log(c[proto]["sad"])) for c in curve if c[proto]["sad"]]
    if len(pts) < 2:
        return None
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    return sum((x - mx) * (y - my) for x, y in pts) / sxx if sxx else None


def markdown(res: dict) -> str:
    lines = [
        "# Capacity at equal training compute (`bench_capacity.py`)", "",
        f"Machine: {res['machine']['cpu']}, {res['machine']['cores']} cores, torch {res['machine']['torch']}, "
        f"native bf16: {res['machine']['native_bf16']}. {res['protocol']}", "",
        "| architecture | params M | fwd GFLOP / 512 px | steps | samples | train PFLOP | s/step | "
        + " | ".join(f"{p} SAD / Grad" for p in PROTOCOLS) + " |",
        "|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(PROTOCOLS),
    ]
    for name, r in res["runs"].items():
        for c in r["curve"]:
            cells = " | ".join(
                f"{c[p]['sad']:.2f} / {c[p]['grad']:.2f}" if c[p]["sad"] is not None else "-" for p in PROTOCOLS
            )
            s = f"{r['median_step_s']:.2f}" if r["median_step_s"] else "-"
            lines.append(f"| {name} | {r['params'] / 1e6:.2f} | {r['forward_gflop_per_sample']:.1f} | {c['step']} | "
                         f"{c['samples']:,} | {c['train_pflop']:.2f} | {s} | {cells} |")
    lines += ["", "Slope of log SAD against log training compute over each run's validations (more negative: "
              "gains more per extra FLOP):", "",
              "| architecture | " + " | ".join(PROTOCOLS) + " |", "|---|" + "---:|" * len(PROTOCOLS)]
    for name, r in res["runs"].items():
        cells = " | ".join("-" if r["slopes"][p] is None else f"{r['slopes'][p]:.2f}" for p in PROTOCOLS)
        lines.append(f"| {name} | {cells} |")
    if res.get("exit_codes"):
        bad = {k: v for k, v in res["exit_codes"].items() if v}
        if bad:
            lines += ["", f"Failed runs (exit code): {bad}"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small-steps", type=int, default=600, help="steps of `small`; the FLOP budget")
    ap.add_argument("--val-every", type=int, default=200, help="validation interval of `small`, in steps")
    ap.add_argument("--archs", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    ap.add_argument("--parallel", type=int, default=1, help="runs at a time (one torch thread each)")
    ap.add_argument("--runs", type=Path, default=Path("runs/capacity"), help="run directories (relative: to the repo root)")
    ap.add_argument("--report-only", action="store_true", help="read the runs' logs; train nothing")
    ap.add_argument("--out", type=Path, required=True, help="JSON results file")
    ap.add_argument("--md", type=Path, help="Markdown table (default: stdout)")
    args = ap.parse_args(argv)

    from training.config import load_config

    cfg = load_config([CONFIG])
    runs = args.runs if args.runs.is_absolute() else ROOT / args.runs
    planned = plan(args.small_steps, args.val_every, cfg.data.out_size, args.archs)
    codes = {} if args.report_only else train_all(planned, runs, args.parallel)
    res = {
        "benchmark": "capacity", "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_description(),
        "protocol": (f"From scratch, training/configs/capacity.yaml (batch {cfg.train.batch_size} at "
                     f"{cfg.data.out_size} px, lr {cfg.optim.lr:g} constant after {cfg.optim.warmup_steps} "
                     f"warm-up steps, amp {cfg.train.amp}), equal training FLOPs at every validation; "
                     f"validation in the run (bf16), 32 composites at {cfg.data.val_size} px per protocol. "
                     f"{args.parallel} run(s) at a time on the machine's cores."),
        "small_steps": args.small_steps, "val_every_small": args.val_every,
        "commands": {n: command(n, p, args.runs)[1:] for n, p in planned.items()},
        "exit_codes": codes, "runs": {},
    }
    for name, p in planned.items():
        r = read_run(runs / name, p, cfg.train.batch_size)
        r["slopes"] = {proto: slope(r["curve"], proto) for proto in PROTOCOLS}
        res["runs"][name] = r
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=1) + "\n")
    md = markdown(res)
    if args.md:
        args.md.write_text(md)
    else:
        sys.stdout.write(md)
    return 1 if any(codes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
