#!/usr/bin/env python3
"""ICL evaluation plots (spec icl_function_classes §5.1): normalised error vs in-context examples.

    plot_icl.py RUN/metrics.json --out DIR            one PNG per setting: DIR/<setting>.png
    plot_icl.py A/metrics.json B/metrics.json --compare --out DIR
                                                      DIR/compare_<setting>.png, every file's
                                                      curves together, labelled "<label>: <name>"

Each curve is its mean line and a shaded band between the 5/95 bootstrap bounds (lo, hi). The
dashed grey line is the zero estimator: 1.0, or s² for scale-y=s (normalised by d, the zero
estimator's error grows with the squared y scale). y limits (-0.1, 1.25) as Garg et al., raised
when the data exceed them. Uses the Agg backend (no display needed).
"""
import argparse
import json
import math
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    if not isinstance(doc, dict) or not isinstance(doc.get("curves"), dict):
        raise SystemExit(f"plot_icl: {path}: expected an object with a \"curves\" object")
    return doc


def zero_level(setting):
    m = re.fullmatch(r"scale-y=([0-9.eE+-]+)", setting)
    return float(m.group(1)) ** 2 if m else 1.0


def finite(values):
    return [v for v in values if v is not None and math.isfinite(v)]


def draw(ax, curve, label, xmax):
    k = curve["k"]
    keep = [i for i, x in enumerate(k) if xmax is None or x <= xmax]
    nan = float("nan")
    xs = [k[i] for i in keep]
    mean = [nan if curve["mean"][i] is None else curve["mean"][i] for i in keep]
    lo = [nan if curve["lo"][i] is None else curve["lo"][i] for i in keep]
    hi = [nan if curve["hi"][i] is None else curve["hi"][i] for i in keep]
    (line,) = ax.plot(xs, mean, lw=2, label=label)
    ax.fill_between(xs, lo, hi, alpha=0.3, color=line.get_color(), lw=0)
    return finite(hi) + finite(mean)


MODEL_NAMES = {"rwkv7", "transformer", "lstm"}


def plot_setting(setting, entries, path, title, xmax):
    """entries: [(label, curve)]; writes one PNG."""
    fig, ax = plt.subplots(figsize=(4, 3), dpi=150)
    level = zero_level(setting)
    seen = [level]
    for label, curve in entries:
        drawn = draw(ax, curve, label, xmax)
        # The y range follows the trained models; a baseline's early spike (averaging at k = 1)
        # is clipped, as in Garg et al.'s figures, and only its last value counts.
        seen += drawn if label in MODEL_NAMES else drawn[-1:]
    ax.axhline(level, ls="--", color="gray", lw=1)
    top = max(1.25 * level, max(seen) * 1.05)
    bottom = min(-0.1 * level, min(seen) - 0.05 * abs(min(seen)))
    ax.set_ylim(bottom, top)
    ax.set_xlabel("in-context examples")
    ax.set_ylabel("normalised squared error")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.4)
    ax.legend(fontsize=6, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def safe(name):
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", name)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("metrics", nargs="+", help="metrics.json file(s)")
    ap.add_argument("--out", required=True, help="output directory for the PNGs")
    ap.add_argument("--compare", action="store_true",
                    help="several metrics.json: one comparison plot per common setting")
    ap.add_argument("--labels", nargs="*", help="labels of the metrics files (default: their "
                    "directory names)")
    ap.add_argument("--names", nargs="*", help="only these predictor names")
    ap.add_argument("--xmax", type=float, default=None, help="truncate the x axis")
    args = ap.parse_args(argv)

    docs = [load(p) for p in args.metrics]
    labels = args.labels or [os.path.basename(os.path.dirname(os.path.abspath(p))) or p
                             for p in args.metrics]
    if len(labels) != len(docs):
        raise SystemExit("plot_icl: --labels needs one label per metrics file")
    os.makedirs(args.out, exist_ok=True)
    wanted = (lambda n: n in args.names) if args.names else (lambda n: True)
    written = []

    if args.compare:
        settings = [s for s in docs[0]["curves"] if all(s in d["curves"] for d in docs[1:])]
        for s in settings:
            entries = [(f"{lab}: {name}", c) for lab, d in zip(labels, docs)
                       for name, c in d["curves"][s].items() if wanted(name)]
            path = os.path.join(args.out, f"compare_{safe(s)}.png")
            plot_setting(s, entries, path, s, args.xmax)
            written.append(path)
    else:
        for lab, d in zip(labels, docs):
            sub = args.out if len(docs) == 1 else os.path.join(args.out, safe(lab))
            os.makedirs(sub, exist_ok=True)
            head = f"{d.get('task', '?')} d={d.get('n_dims', '?')}"
            for s, by_name in d["curves"].items():
                entries = [(name, c) for name, c in by_name.items() if wanted(name)]
                path = os.path.join(sub, f"{safe(s)}.png")
                plot_setting(s, entries, path, f"{head}: {s}", args.xmax)
                written.append(path)
    for p in written:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
