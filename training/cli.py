"""``python -m training`` (run from a checkout's root): the only place in training/ that prints or exits.

Commands::

    python -m training train --config training/configs/tiny.yaml [--set train.steps=20]
                             [--out DIR] [--resume auto|never|STATE] [--debug]
    python -m training export STATE_OR_RUN_DIR --out model.safetensors [--weights auto|ema|raw]
    python -m training compact STATE_OR_RUN_DIR --out state.safetensors

Exit codes: 0 success (including a clean stop at ``train.time_limit_minutes``), 1 a run or
export failed, 2 bad usage or a bad config (one line on stderr, no traceback unless --debug).
Progress: a rich progress bar on a TTY, plain log lines otherwise (CI, farm logs, ``nohup``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from typing import Any, Optional, Sequence

from vfxmatte.errors import ConfigError, VfxMatteError

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would exit(2) itself; keep one path
        raise _UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m training", description="Train and export vfxmatte matting networks.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="train (or resume) from a YAML config")
    t.add_argument("--config", "-c", action="append", required=True,
                   help="YAML config; repeat to merge several in order")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set train.steps=20 (repeatable)")
    t.add_argument("--out", help="output directory (train.out_dir)")
    t.add_argument("--resume", help="auto | never | path to a state file or run dir (train.resume)")
    t.add_argument("--json", action="store_true", help="print events as JSON lines")
    t.add_argument("--debug", action="store_true", help="show tracebacks")

    v = sub.add_parser("validate", help="score checkpoints on a config's held-out synthetic composites")
    v.add_argument("checkpoints", nargs="+", help="inference checkpoints (.safetensors) or 'starter'")
    v.add_argument("--config", "-c", action="append", required=True,
                   help="YAML config whose data.val_* settings define the validation set")
    v.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    v.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or mps (default cpu)")
    v.add_argument("--tta", choices=("none", "flip"), default="none",
                   help="score with test-time augmentation, as the engine's model.tta runs it")
    v.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                   help="bf16: the network cast to bf16, as the engine runs it on CPUs with native bf16 "
                        "(default fp32)")
    v.add_argument("--json", action="store_true", help="print one JSON line per checkpoint")
    v.add_argument("--debug", action="store_true", help="show tracebacks")

    e = sub.add_parser("export", help="write the fp16 inference checkpoint of a training state")
    e.add_argument("state", help="training state file, or a run directory (its latest state)")
    e.add_argument("--out", "-o", required=True, help="output .safetensors path")
    e.add_argument("--weights", choices=("auto", "ema", "raw"), default="auto",
                   help="auto: the weight average if the run keeps one (train.ema_decay), else the trained weights")
    e.add_argument("--debug", action="store_true", help="show tracebacks")

    c = sub.add_parser("compact", help="write a training state without its Adam moments (small enough for git)")
    c.add_argument("state", help="training state file, or a run directory (its latest state)")
    c.add_argument("--out", "-o", required=True, help="output .safetensors path")
    c.add_argument("--debug", action="store_true", help="show tracebacks")

    i = sub.add_parser("interpolate", help="write (1 - w) * BASE + w * TUNED, one architecture (WiSE-FT)")
    i.add_argument("base", help="checkpoint the fine-tune started from, or 'starter'")
    i.add_argument("tuned", help="fine-tuned checkpoint")
    i.add_argument("--weight", "-w", type=float, required=True, help="share of TUNED, 0..1")
    i.add_argument("--out", "-o", required=True, help="output .safetensors path")
    i.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


class _PlainReporter:
    """One log line per event (non-TTY)."""

    def __init__(self, stream=None, as_json: bool = False) -> None:
        self._stream, self.as_json = stream, as_json

    @property
    def stream(self):
        return self._stream if self._stream is not None else sys.stdout

    def __call__(self, event) -> None:
        if self.as_json:
            rec = {"event": event.kind, "step": event.step, "total": event.total, **event.metrics}
            print(json.dumps(rec, default=str), file=self.stream, flush=True)
            return
        m = event.metrics
        if event.kind == "start":
            resumed = f", resumed from {m['resumed_from']}" if m.get("resumed_from") else ""
            ema = f" ema={m['ema']['decay']:g} since step {m['ema']['since']}" if m.get("ema") else ""
            line = (f"start step {event.step}/{event.total} on {m['device']} x{m['world_size']} amp={m['amp']} "
                    f"params={m['params']:,}{ema}{resumed}; out {m['out_dir']}")
        elif event.kind == "step":
            grad = f" grad {m['loss_grad']:.4f}" if "loss_grad" in m else ""
            line = (f"step {event.step}/{event.total} loss {m['loss']:.4f} (a {m['loss_alpha']:.4f} bg {m['loss_bg']:.4f}{grad}) "
                    f"lr {m['lr']:.3g} w_c {m['w_c']:.4f} {m['step_time_s']:.3f}s/step "
                    f"(data wait {m['data_wait_s']:.3f}s) {m['samples_per_s']:.1f} samples/s")
        elif event.kind == "val":
            keys = [k for k in m if k != "step"]
            line = f"val step {event.step}: " + " ".join(f"{k} {_fmt(m[k])}" for k in keys)
        elif event.kind == "checkpoint":
            line = f"checkpoint step {event.step}: {m['state']} -> {m['export']}"
        elif event.kind == "end":
            line = f"end step {event.step}/{event.total} ({m['reason']}, {m['wall_time_s']:.0f}s total); export {m['export']}"
        else:
            line = f"{event.kind} step {event.step}: {event.message}"
        print(line, file=self.stream, flush=True)


class _RichReporter:
    """A progress bar with the latest loss; validation and checkpoints as log lines above it."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = Console()
        self.progress = Progress(
            TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"), console=self.console, transient=False,
        )
        self.task = None
        self.plain = _PlainReporter()

    def __call__(self, event) -> None:
        if event.kind == "start":
            self.progress.start()
            self.task = self.progress.add_task("train", total=event.total, completed=event.step, info="")
            self.progress.console.print(self._line(event))
        elif event.kind == "step":
            m = event.metrics
            info = f"loss {m['loss']:.4f} lr {m['lr']:.2e} {m['step_time_s']:.2f}s/step"
            self.progress.update(self.task, completed=event.step, info=info)
        elif event.kind == "end":
            self.progress.update(self.task, completed=event.step)
            self.progress.stop()
            self.console.print(self._line(event))
        else:
            self.progress.console.print(self._line(event))

    def _line(self, event) -> str:
        import io

        buf = io.StringIO()
        _PlainReporter(buf)(event)
        return buf.getvalue().rstrip("\n")

    def close(self) -> None:
        self.progress.stop()


def _train(args: argparse.Namespace) -> int:
    from training.config import load_config
    from training.train import train

    overrides = list(args.overrides)
    if args.out:
        overrides.append(f"train.out_dir={args.out}")
    if args.resume:
        overrides.append(f"train.resume={args.resume}")
    cfg = load_config(args.config, overrides)

    stop = {"flag": False}

    def on_signal(signum, _frame) -> None:
        if stop["flag"]:  # second signal: give up at once
            raise KeyboardInterrupt
        stop["flag"] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    reporter = _RichReporter() if (sys.stdout.isatty() and not args.json) else _PlainReporter(as_json=args.json)
    try:
        result = train(cfg, reporter, should_stop=lambda: stop["flag"])
    finally:
        if isinstance(reporter, _RichReporter):
            reporter.close()
        for s, h in old.items():
            signal.signal(s, h)
    return EXIT_OK if result.reason in ("done", "time_limit") else EXIT_FAIL


def _validate(args: argparse.Namespace) -> int:
    from training.config import load_config
    from training.train import validate_checkpoints

    cfg = load_config(args.config, list(args.overrides))
    results = validate_checkpoints(cfg, args.checkpoints, device=args.device, tta=args.tta, precision=args.precision)
    keys = ("sad", "mse", "grad", "conn", "loss", "w_c", "tcp_sp_std_ratio")
    for r in results:
        if args.json:
            print(json.dumps(r, sort_keys=True))
        else:
            protocols = sorted({k.split(".")[0] for k in r if "." in k and k.endswith(".sad")})
            extra = "".join(f"  [{p}] sad {_fmt(r[p + '.sad'])} grad {_fmt(r.get(p + '.grad'))}" for p in protocols)
            print(r["checkpoint"] + "  " + "  ".join(f"{k} {_fmt(r[k])}" for k in keys if k in r) + extra)
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    from training.train import export_inference_checkpoint

    path = export_inference_checkpoint(args.state, args.out, weights=args.weights)
    print(f"wrote {path}")
    return EXIT_OK


def _compact(args: argparse.Namespace) -> int:
    from training.train import compact_state

    path = compact_state(args.state, args.out)
    print(f"wrote {path}")
    return EXIT_OK


def _interpolate(args: argparse.Namespace) -> int:
    from training.interpolate import interpolate_checkpoints

    path = interpolate_checkpoints(args.base, args.tuned, args.weight, args.out)
    print(f"wrote {path}")
    return EXIT_OK


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "validate":
            return _validate(args)
        if args.command == "interpolate":
            return _interpolate(args)
        if args.command == "compact":
            return _compact(args)
        return _export(args)
    except VfxMatteError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, ConfigError) else EXIT_FAIL
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_FAIL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
