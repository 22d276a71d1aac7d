"""Learning curve of a training run: held-out synthetic SAD against samples seen, with a power-law
extrapolation (issue 20 §4, for when compute is the limit).

Reads the validation records of a run's ``metrics.jsonl`` (``kind: val``; the last record of a
step wins, as a restarted run may validate a step twice) and, for each protocol and for the raw
weights and the weight average (``ema.``), fits ``log SAD = a + b log samples`` by least squares
over the records from ``--from-step`` on. It reports the slope ``b`` (SAD changes by ``2**b``
per doubling of samples), the residual (the RMS scatter of one validation around the fit, as a
fraction) and the fit's value at ``--to-step``.

    python benchmarks/learning_curve.py training/logs/v11_cpu_metrics.jsonl --batch 4 \\
        --from-step 6720 --to-step 15000 --out benchmarks/results/learning_curve_v11

A power law does not model a change of recipe or the cosine's tail: the fit says where the
recent trend leads, not where the run will end.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # the training package (not installed)
from common import machine_description  # noqa: E402

from training.train import EMA_PREFIX  # noqa: E402

#: Weight sets a validation record can hold: the trained weights and the moving average.
WEIGHTS = {"raw": "", "average": EMA_PREFIX}


def fit_power_law(samples: np.ndarray, values: np.ndarray) -> tuple[float, float, float]:
    """``(slope, intercept, residual)`` of ``log values = intercept + slope * log samples``.

    ``residual`` is ``exp(rms(log residuals)) - 1``: the typical relative scatter of one point.
    Needs at least two distinct sample counts and positive values.
    """
    x, y = np.log(np.asarray(samples, float)), np.log(np.asarray(values, float))
    if len(np.unique(x)) < 2:
        raise ValueError("a fit needs validations at two or more steps")
    slope, intercept = np.polyfit(x, y, 1)
    rms = float(np.sqrt(np.mean((y - (intercept + slope * x)) ** 2)))
    return float(slope), float(intercept), math.expm1(rms)


def validation_records(path: Path) -> dict[int, dict]:
    """The run's validation records by step; a later record of a step replaces an earlier one."""
    out: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            if r.get("kind") == "val" and "step" in r:
                out[int(r["step"])] = r
    return out


def protocols_of(records: dict[int, dict]) -> list[str]:
    """``paper`` (key ``sad``) and every ``<protocol>.sad`` any record has, in first-seen order."""
    names = ["paper"]
    for r in records.values():
        for k in r:
            if k.endswith(".sad") and not k.startswith(EMA_PREFIX):
                p = k[: -len(".sad")]
                if p not in names:
                    names.append(p)
    return names


def curve(records: dict[int, dict], batch: int, from_step: int, to_step: int) -> list[dict]:
    """One row per (weights, protocol) with at least three validations from ``from_step`` on."""
    rows = []
    for weights, prefix in WEIGHTS.items():
        for p in protocols_of(records):
            key = prefix + ("sad" if p == "paper" else f"{p}.sad")
            pts = sorted((s, r[key]) for s, r in records.items() if s >= from_step and key in r)
            if len(pts) < 3:
                continue
            steps = np.array([s for s, _ in pts], float)
            sad = np.array([v for _, v in pts], float)
            slope, intercept, resid = fit_power_law(steps * batch, sad)
            rows.append({
                "weights": weights, "protocol": p, "validations": len(pts),
                "first_step": int(steps[0]), "last_step": int(steps[-1]), "last_sad": float(sad[-1]),
                "slope": slope, "per_doubling": 2.0**slope - 1.0, "residual": resid,
                "fit_at_end": float(math.exp(intercept + slope * math.log(to_step * batch))),
            })
    return rows


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        f"# Learning curve of `{meta['log']}`",
        "",
        f"Validations from step {meta['from_step']} on; samples = step x {meta['batch']}; fit "
        f"`log SAD = a + b log samples`, extrapolated to step {meta['to_step']} "
        f"({meta['to_step'] * meta['batch']:,} samples). Residual: one validation's scatter around the fit.",
        "",
        "| weights | protocol | validations | steps | last SAD | slope | per doubling | residual | fit at end |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['weights']} | {r['protocol']} | {r['validations']} | {r['first_step']}-{r['last_step']} | "
            f"{r['last_sad']:.2f} | {r['slope']:+.3f} | {r['per_doubling'] * 100:+.1f}% | "
            f"{r['residual'] * 100:.0f}% | {r['fit_at_end']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("log", type=Path, help="a run's metrics.jsonl")
    ap.add_argument("--batch", type=int, required=True, help="samples per step (batch x accumulation x ranks)")
    ap.add_argument("--from-step", type=int, default=0)
    ap.add_argument("--to-step", type=int, required=True, help="the step to extrapolate to (the run's end)")
    ap.add_argument("--out", type=Path, help="write OUT.json and OUT.md")
    args = ap.parse_args(argv)
    rows = curve(validation_records(args.log), args.batch, args.from_step, args.to_step)
    meta = {"benchmark": "learning_curve", "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine_description(), "log": str(args.log), "batch": args.batch,
            "from_step": args.from_step, "to_step": args.to_step}
    text = markdown(rows, meta)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows}, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
