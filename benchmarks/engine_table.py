"""Render a bench_engine.py JSON result as Markdown tables (used for RESULTS.md).

    python benchmarks/engine_table.py benchmarks/results/engine_cpu.json
"""

from __future__ import annotations

import json
import sys


def render(path: str) -> str:
    r = json.load(open(path))
    m = r["machine"]
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM"
        + (f", GPU {m['gpu']}" if m.get("gpu") else "")
        + f"; torch {m['torch']}, device `{r['device']}`; measured conv throughput "
        f"{r['conv_gflops']:.1f} GFLOP/s.",
        "",
        "GFLOP per megapixel: " + ", ".join(f"{v} {d['gflops_per_megapixel']:.1f}" for v, d in r["variants"].items()) + ".",
        "",
        "| variant | frame | unknown | mode | s/frame | network MP | peak RSS MiB | achieved GFLOP/s | of conv peak | tiled vs untiled (dense rows: vs block-sparse; other tilings: vs the default) MAD / max |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for c in r["cases"]:
        mode = ("tiled" if c["tiled"] else "untiled") + ("" if c.get("fold_norms", True) else ", BN unfolded")
        mode += ", block-sparse" if c.get("sparse") else ""  # files before it existed ran dense
        mode += f", tiles {c['tile']}/{c['overlap']}" if c.get("overlap") else ""  # files before: 1280/384
        mode += f", {c['precision']}" if c.get("precision") else ""
        if "seconds" not in c:
            lines.append(f"| {c['variant']} | {c['size']} | {c['unknown_fraction']:.0%} | {mode} | {c.get('skipped')} | | | | | |")
            continue
        agree = c.get("tiled_vs_untiled") or c.get("sparse_vs_dense") or c.get("vs_default_tiling")
        agree_s = f"{agree['mad']:.1e} / {agree['max']:.1e}" if agree else ""
        gpu = f" (GPU {c['peak_gpu_mib']:.0f})" if "peak_gpu_mib" in c else ""
        lines.append(
            f"| {c['variant']} | {c['size']} | {c['unknown_fraction']:.0%} | {mode} | {c['seconds']:.2f} | "
            f"{c['network_megapixels']:.2f} | {c['peak_rss_mib']:.0f}{gpu} | {c['achieved_gflops']:.1f} | "
            f"{c['fraction_of_conv_peak']:.0%} | {agree_s} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    for p in sys.argv[1:]:
        print(render(p))
        print()
