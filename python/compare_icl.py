#!/usr/bin/env python3
"""The plot of `goose icl compare`: several runs' models beside their baselines, one PNG.

    compare_icl.py OUT/compare.json --out DIR        writes DIR/compare_<setting>.png

compare.json (written by goose icl compare): {"setting": S, "ks": [...], "rows": [{"label",
"kind": "model" | "baseline", "k", "mean", "lo", "hi", ...}]}. Models are solid lines with their
5/95 bootstrap band, baselines thinner dashed lines; the grey dashed line is the zero estimator
(plot_icl.py's conventions: normalised error, y limits from -0.1 to 1.25 or above the data).
"""
import argparse
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from plot_icl import finite, safe, zero_level  # noqa: E402


def values(xs):
    return [float("nan") if v is None else v for v in xs]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("compare_json", help="compare.json written by goose icl compare")
    ap.add_argument("--out", required=True, help="output directory")
    args = ap.parse_args(argv)
    with open(args.compare_json, encoding="utf-8") as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
        raise SystemExit(f"compare_icl: {args.compare_json}: expected an object with \"rows\"")
    setting = doc.get("setting", "standard")
    level = zero_level(setting)

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=150)
    seen = [level]
    for row in doc["rows"]:
        k, mean = row["k"], values(row["mean"])
        if row.get("kind") == "model":
            (line,) = ax.plot(k, mean, lw=2, label=row["label"])
            ax.fill_between(k, values(row["lo"]), values(row["hi"]), alpha=0.25,
                            color=line.get_color(), lw=0)
            seen += finite(row["hi"])
        else:
            ax.plot(k, mean, lw=1, ls="--", label=row["label"])
            seen += finite(row["mean"])[-1:]  # baselines beyond the models' range are clipped
        if row.get("kind") == "model":
            seen += finite(row["mean"])
    ax.axhline(level, ls="--", color="gray", lw=1)
    top = max(1.25 * level, max(seen) * 1.05) if all(map(math.isfinite, seen)) else 1.25 * level
    ax.set_ylim(min(-0.1 * level, min(seen) - 0.05 * abs(min(seen))), top)
    ax.set_xlabel("in-context examples")
    ax.set_ylabel("normalised squared error")
    ax.set_title(f"compare: {setting}", fontsize=9)
    ax.grid(alpha=0.4)
    ax.legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"compare_{safe(setting)}.png")
    fig.savefig(path)
    plt.close(fig)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
