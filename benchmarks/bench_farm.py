"""Scaling of ``vfxmatte submit --farm local`` (issue 18 §11): one shot, 1 and 2 workers.

A 200-frame small-resolution shot (``vfxmatte example shot010``'s plates, trimaps on every
frame, the temporal stage on) goes through the real command, as a wrangler runs it, once per
worker count. Reported per count: wall time (process start to exit, so model loading and
start-up of every worker are in it), frames/s, speed-up over one worker and scaling efficiency
(speed-up / workers). The mattes of every count must be byte-identical (chunks never change a
frame); a count whose run fails or differs is reported as such, not timed.

    python benchmarks/bench_farm.py --out benchmarks/results/farm_local.json

writes the JSON and a Markdown table beside it (``farm_local.md``). Run it on an idle machine:
the workers share its cores (each gets cores / workers threads unless ``--threads``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine_description  # noqa: E402

from vfxmatte.examples import make_shot010  # noqa: E402


def _digest(folder: Path) -> str:
    """One sha256 over the names and bytes of the mattes in ``folder``."""
    h = hashlib.sha256()
    for p in sorted(folder.glob("*.exr")):
        h.update(p.name.encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


def write_job(root: Path, frames: int, size: tuple[int, int], checkpoint: str, precision: str) -> Path:
    shot = make_shot010(root / "shot", frames=range(1001, 1001 + frames), width=size[0], height=size[1])
    data = shot.job_dict(root / "out" / "shot010.####.exr", checkpoint=checkpoint)
    data["model"].update(device="cpu", precision=precision)
    path = root / "job.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_workers(job: Path, workers: int, threads: int | None, timeout: float) -> dict:
    """One ``submit --farm local`` run into an empty output folder; its wall time and digest."""
    out = job.parent / "out"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "vfxmatte", "--quiet", "submit", str(job), "--farm", "local", "--workers", str(workers)]
    if threads is not None:
        cmd += ["--threads", str(threads)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - t0
    result = {"workers": workers, "exit_code": proc.returncode, "wall_s": round(wall, 3)}
    if proc.returncode != 0:
        result["error"] = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        return result
    result["frames_written"] = len(list(out.glob("*.exr")))
    result["digest"] = _digest(out)
    return result


def summarise(runs: list[dict], frames: int) -> list[dict]:
    """frames/s, speed-up over the one-worker run and efficiency, for the runs that succeeded
    with all frames and the one-worker run's bytes."""
    base = next((r for r in runs if r["workers"] == 1 and r["exit_code"] == 0), None)
    for r in runs:
        if r["exit_code"] != 0:
            continue
        r["complete"] = r["frames_written"] == frames
        r["same_bytes_as_1_worker"] = base is not None and r["digest"] == base["digest"]
        if not (r["complete"] and r["same_bytes_as_1_worker"]):
            continue
        r["frames_per_s"] = round(frames / r["wall_s"], 3)
        r["speedup"] = round(base["wall_s"] / r["wall_s"], 3)
        r["efficiency"] = round(r["speedup"] / r["workers"], 3)
    return runs


def markdown(doc: dict) -> str:
    m = doc["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM; torch {m['torch']}; "
        f"load average {doc['load_average_before']} before, {doc['load_average_after']} after.",
        "",
        f"Shot: {doc['shot']}; model {doc['model']}, {doc['precision']}; "
        f"threads per worker: {doc['threads'] or 'cores / workers'}.",
        "",
        "| workers | wall s | frames/s | speed-up | efficiency | same bytes as 1 worker |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for r in doc["runs"]:
        if r["exit_code"] != 0:
            lines.append(f"| {r['workers']} | failed (exit {r['exit_code']}): {r['error']} | | | | |")
            continue
        same = "yes" if r["same_bytes_as_1_worker"] else "NO"
        if "frames_per_s" not in r:
            lines.append(f"| {r['workers']} | {r['wall_s']:.1f} | | | | {same} ({r['frames_written']} frames) |")
            continue
        lines.append(f"| {r['workers']} | {r['wall_s']:.1f} | {r['frames_per_s']:.2f} | {r['speedup']:.2f}x | "
                     f"{100 * r['efficiency']:.0f}% | {same} |")
    return "\n".join(lines) + "\n"


def _size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    return int(w), int(h)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200, help="frames in the shot (default 200)")
    ap.add_argument("--size", type=_size, default=(128, 72), help="plate size WxH (default 128x72)")
    ap.add_argument("--workers", default="1,2", help="worker counts, comma separated (default 1,2)")
    ap.add_argument("--threads", type=int, default=None, help="threads per worker (default cores / workers)")
    ap.add_argument("--model", default="starter", help="checkpoint: built-in name or .safetensors path")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"])
    ap.add_argument("--timeout", type=float, default=3600, help="seconds one run may take")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/farm_local.json"), help="JSON results file")
    args = ap.parse_args(argv)
    counts = [int(n) for n in args.workers.split(",")]
    if 1 not in counts:
        ap.error("--workers must include 1 (the baseline of speed-up and efficiency)")

    doc = {
        "benchmark": "bench_farm",
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_description(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "shot": f"shot010, {args.frames} frames at {args.size[0]}x{args.size[1]}, trimaps on every frame, temporal stage on",
        "model": args.model,
        "precision": args.precision,
        "threads": args.threads,
    }
    with tempfile.TemporaryDirectory() as tmp:
        job = write_job(Path(tmp), args.frames, args.size, args.model, args.precision)
        runs = [run_workers(job, n, args.threads, args.timeout) for n in counts]
    doc["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    doc["runs"] = summarise(runs, args.frames)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1))
    table = markdown(doc)
    args.out.with_suffix(".md").write_text(table)
    print(table, end="")
    return 0 if all("frames_per_s" in r for r in doc["runs"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
