#!/usr/bin/env python3
"""Per-kernel time table of a goose run profiled by Nsight Compute.

Usage (on the GPU machine):
    ncu --clock-control none [--cache-control none] --metrics gpu__time_duration.sum --csv \
        --print-units base goose bench train --device cuda ... --steps 1 --no-graph > run.csv
    python3 bench/profile/kernel_table.py run.csv [--steps N] [--top K]

--steps N divides every figure by N (a bench run of --steps 1 executes 2 warm-up steps and the
timed one eagerly: N = 3 there; ncu serialises kernels and, without --cache-control none,
starts each with cold caches; the one-time setup kernels, such as the parameters' conversion to
bf16, are divided too). Prints the time per category (GEMM, WKV-7, AdamW, head
cross-entropy, other glue) and the K kernels that take the most time, with launches per step.
"""
import argparse
import collections
import csv
import re
import sys


def category(name):
    if re.search(r"gemm|xmma|cutlass|nvjet|cublas|splitKreduce", name, re.I):
        return "gemm"
    if re.search(r"(?<!r)wkv", name, re.I):  # not rwkv7_fused_vec.cu's glue kernels
        return "wkv7"
    if "adam" in name.lower():
        return "adamw"
    if re.search(r"ce_rows|head_ce|cross_entropy|l2wrap", name, re.I):
        return "head ce"
    return "glue"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("csv", help="ncu --csv output (gpu__time_duration.sum)")
    ap.add_argument("--steps", type=float, default=1.0, help="divide every figure by this")
    ap.add_argument("--top", type=int, default=30, help="kernels to list")
    args = ap.parse_args()
    if args.steps <= 0:
        sys.exit("kernel_table: --steps must be > 0")
    try:
        rows = list(csv.reader(open(args.csv, newline="")))
    except OSError as e:
        sys.exit(f"kernel_table: cannot read {args.csv}: {e.strerror}")
    header, total, count = None, collections.Counter(), collections.Counter()
    for row in rows:
        if "Kernel Name" in row:
            header = row
            continue
        if not header or len(row) != len(header):
            continue
        rec = dict(zip(header, row))
        if rec.get("Metric Name") != "gpu__time_duration.sum":
            continue
        name = re.sub(r"\(.*", "", rec["Kernel Name"])[:110]
        total[name] += float(rec["Metric Value"].replace(",", ""))  # ns
        count[name] += 1
    if not total:
        sys.exit(f"kernel_table: no gpu__time_duration.sum rows in {args.csv} (ncu --csv "
                 "--metrics gpu__time_duration.sum --print-units base)")
    ms = lambda ns: ns / 1e6 / args.steps
    print(f"kernels: {sum(count.values()) / args.steps:.0f} launches, "
          f"{ms(sum(total.values())):.3f} ms per step (serialised)")
    by_cat = collections.Counter()
    for name, ns in total.items():
        by_cat[category(name)] += ns
    for cat, ns in by_cat.most_common():
        print(f"  {cat:8s} {ms(ns):8.3f} ms  {100 * ns / sum(total.values()):5.1f}%")
    print(f"\n{'ms/step':>9} {'launches':>8}  category  kernel")
    for name, ns in total.most_common(args.top):
        print(f"{ms(ns):9.3f} {count[name] / args.steps:8.1f}  {category(name):8s}  {name}")


if __name__ == "__main__":
    main()
