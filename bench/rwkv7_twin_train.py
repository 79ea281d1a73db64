#!/usr/bin/env python3
"""Peer for `goose bench rwkv7-train`: training tokens/s of the PyTorch twin (float32, the
sequential WKV recurrence in PyTorch ops, as the official model's non-CUDA path would run) on
this machine. Prints one line: `twin_tokens_per_s <value>`.

    rwkv7_twin_train.py [--layers 4 --dim 128 --head 32 --ctx 256 --batch 8 --steps 3]
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "reference"))
import rwkv7_twin as twin  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--head", type=int, default=32)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--ctx", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads if args.threads > 0 else os.cpu_count())
    L, C, N, V = args.layers, args.dim, args.head, args.vocab
    p = {n: t.float().requires_grad_(True) for n, t in twin.make_params(L, C, N, V, 0).items()}
    opt = torch.optim.AdamW(list(p.values()), lr=1e-4, betas=(0.9, 0.99), eps=1e-8)
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, V, (args.batch, args.ctx + 1), generator=g)

    def step():
        opt.zero_grad()
        loss, _ = twin.loss_fn(p, L, N, tokens)
        loss.backward()
        opt.step()

    step()  # warm-up
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2]
    print(f"twin_step_s {med:.4f}")
    print(f"twin_tokens_per_s {args.batch * args.ctx / med:.1f}")
    print(f"torch {torch.__version__} threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
