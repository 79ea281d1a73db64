#!/usr/bin/env python3
"""Where a goose training step's time goes, from a kernel trace as it ran (kernel_trace.cpp).

For the last --steps steps of the trace (a step ends with its AdamW kernels): the step's wall
time, the time some kernel was running (busy) and the idle time (no kernel at all), the main
stream's busy time (the stream with the most kernels; CUPTI may report a graph's kernels on
several streams of its own, and then this figure means little) and the time only others ran, kernel time by category (warm caches,
concurrent streams: what the step really spends) and the longest idle gaps with the kernels
around them.

    python3 bench/profile/timeline.py trace.csv [--steps 3] [--gaps 12]
"""
import argparse
import collections
import csv
import re
import subprocess
import sys

CATEGORIES = [  # (category, patterns searched in the mangled or plain kernel name)
    ("wkv7", (r"(?<!r)wkv7",)),  # not "rwkv7": the fused glue kernels' file is in their names
    ("adamw", ("adam",)),
    ("head ce", ("head_ce", "ce_rows", "finish_loss", "count_targets")),
    ("gemm", ("nvjet", "gemm", "splitKreduce", "cutlass", "sm90_xmma")),
]


def category(name):
    for cat, keys in CATEGORIES:
        if any(re.search(k, name) for k in keys):
            return cat
    return "glue"


def demangler(names):
    """name -> a readable short form: demangled by c++filt when it is there, without arguments."""
    names = sorted(set(names))
    plain = names
    try:
        out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True,
                             text=True, check=True).stdout.splitlines()
        if len(out) == len(names):
            plain = out
    except (OSError, subprocess.CalledProcessError):
        pass
    table = {}
    for n, p in zip(names, plain):
        p = p.replace("(anonymous namespace)::", "").split("(")[0] or p
        for prefix in ("void ",):
            p = p[len(prefix):] if p.startswith(prefix) else p
        table[n] = p
    return lambda name, width=60: table.get(name, name)[:width]


def load(path):
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        sys.exit(f"timeline: cannot read {path}: {e.strerror}")
    need = {"start_ns", "end_ns", "stream", "name"}
    if not rows or not need <= set(rows[0]):
        sys.exit(f"timeline: {path} is not a kernel_trace CSV (columns {sorted(need)})")
    ks = [(int(r["start_ns"]), int(r["end_ns"]), int(r["stream"]), r["name"]) for r in rows]
    ks.sort()
    return ks


def steps_of(ks, n):
    """The last n steps: (first, last) index ranges; a step ends after its last AdamW kernel."""
    ends = []
    i = 0
    while i < len(ks):
        if category(ks[i][3]) == "adamw":
            j = i
            while j + 1 < len(ks) and category(ks[j + 1][3]) == "adamw":
                j += 1
            ends.append(j)
            i = j + 1
        else:
            i += 1
    if len(ends) < n + 1:
        sys.exit(f"timeline: the trace holds {len(ends)} steps, need {n + 1} (--steps {n} + one "
                 "before them)")
    return [(ends[k - 1] + 1, ends[k]) for k in range(len(ends) - n, len(ends))]


def analyse(ks, first, last, gaps_shown):
    seg = ks[first:last + 1]
    t0 = ks[first - 1][1] if first > 0 else seg[0][0]  # the previous step's end
    t1 = max(e for _, e, _, _ in seg)
    streams = collections.Counter(s for _, _, s, _ in seg)
    main = streams.most_common(1)[0][0]
    # busy union and idle gaps
    busy = 0
    main_busy = 0
    gaps = []
    cur_s, cur_e, prev_name = t0, t0, "(previous step)"
    for s, e, st, name in seg:
        if s > cur_e:
            gaps.append((s - cur_e, prev_name, name))
            busy += cur_e - cur_s
            cur_s, cur_e = s, e
        elif e > cur_e:
            cur_e = e
        if e >= cur_e:
            prev_name = name
    busy += cur_e - cur_s
    m_s = m_e = None
    for s, e, st, _ in seg:
        if st != main:
            continue
        if m_e is None or s > m_e:
            if m_e is not None:
                main_busy += m_e - m_s
            m_s, m_e = s, e
        else:
            m_e = max(m_e, e)
    if m_e is not None:
        main_busy += m_e - m_s
    cats = collections.defaultdict(lambda: [0, 0])
    for s, e, _, name in seg:
        c = cats[category(name)]
        c[0] += e - s
        c[1] += 1
    return {
        "wall": t1 - t0, "busy": busy, "main_busy": main_busy, "kernels": len(seg),
        "kernel_sum": sum(e - s for s, e, _, _ in seg), "streams": len(streams),
        "cats": dict(cats), "gaps": sorted(gaps, reverse=True)[:gaps_shown],
        "idle_total": sum(g[0] for g in gaps) + 0,
        "gap_count": len(gaps),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", help="CSV written by kernel_trace.cpp")
    ap.add_argument("--steps", type=int, default=3, help="steps to analyse (the trace's last)")
    ap.add_argument("--gaps", type=int, default=12, help="longest idle gaps to list")
    a = ap.parse_args()
    if a.steps < 1:
        sys.exit("timeline: --steps must be >= 1")
    ks = load(a.trace)
    res = [analyse(ks, f, l, a.gaps) for f, l in steps_of(ks, a.steps)]
    ms = lambda ns: ns / 1e6
    avg = lambda key: sum(r[key] for r in res) / len(res)
    wall = avg("wall")
    print(f"{a.steps} steps: wall {ms(wall):.3f} ms/step, {res[-1]['kernels']} kernels on "
          f"{res[-1]['streams']} streams")
    print(f"  busy (some kernel running) {ms(avg('busy')):8.3f} ms  {avg('busy') / wall:6.1%}")
    print(f"  idle (no kernel)           {ms(wall - avg('busy')):8.3f} ms  "
          f"{(wall - avg('busy')) / wall:6.1%}  in {res[-1]['gap_count']} gaps (last step)")
    print(f"  main stream busy           {ms(avg('main_busy')):8.3f} ms  "
          f"{avg('main_busy') / wall:6.1%}")
    print(f"  only side streams busy     {ms(avg('busy') - avg('main_busy')):8.3f} ms")
    print(f"  kernel time (sum)          {ms(avg('kernel_sum')):8.3f} ms  "
          f"(> busy: concurrent kernels)")
    print("\n  kernel time by category (ms/step, as run: warm caches, concurrent)")
    cats = collections.defaultdict(lambda: [0, 0])
    for r in res:
        for c, (t, n) in r["cats"].items():
            cats[c][0] += t / len(res)
            cats[c][1] += n / len(res)
    for c, (t, n) in sorted(cats.items(), key=lambda x: -x[1][0]):
        print(f"    {c:8s} {ms(t):8.3f}  {n:6.0f} kernels")
    short = demangler([n for g in res[-1]["gaps"] for n in g[1:]])
    print(f"\n  longest idle gaps of the last step (us: after -> before)")
    for g, before, after in res[-1]["gaps"]:
        print(f"    {g / 1e3:7.1f}  {short(before, 45)} -> {short(after, 45)}")


if __name__ == "__main__":
    main()
