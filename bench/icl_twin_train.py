#!/usr/bin/env python3
"""Peer for `goose bench icl-train`: seconds per training step of the PyTorch twin of Goose's ICL
model (read_in Linear(d -> C), backbone, read_out Linear(C -> 1), predictions at the x tokens,
MSE, Adam) on linear regression prompts, float32, on this machine. Prints:

    twin_params <number of parameters>
    twin_step_s <median seconds per step>
    torch <version> threads <n>

    icl_twin_train.py --family rwkv7|transformer|lstm [--dims 5 --points 11 --batch 64
        --embd 64 --layers 3 --heads 4 --head-size 16 --lr 1e-3 --steps 20 --warmup 3
        --threads 1 --blas-threads 1]

Backbones: GPT-2 pre-LN Transformer (as Goose's models/gpt.h with vocab 0: learned positions
of 2 * points rows, causal attention, GELU-tanh MLP 4C, ln_f), RWKV-7 x070 (the blocks of
tests/reference/rwkv7_twin.py with a vocabulary of 1, so emb and head exist unused as in
Goose), torch.nn.LSTM (batch_first).
"""
import argparse
import math
import os
import sys
import time


def thread_args():
    """--threads T and --blas-threads, read before torch loads: OpenBLAS sizes its pool from
    OPENBLAS_NUM_THREADS when the library is loaded, and torch.set_num_threads does not reach it
    (left alone it would use every core even at --threads 1). The default, OpenBLAS on the
    calling thread beside T OpenMP threads, is Goose's threading and the twin's fastest setting
    on 2 cores: with OpenBLAS's own threads beside torch's OpenMP ones the 2-thread RWKV-7 step
    took ~3x longer."""
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--blas-threads", type=int, default=1)
    a, _ = ap.parse_known_args()
    t = a.threads if a.threads > 0 else os.cpu_count()
    os.environ["OPENBLAS_NUM_THREADS"] = str(a.blas_threads if a.blas_threads > 0 else t)
    os.environ["OMP_NUM_THREADS"] = str(t)


thread_args()
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "reference"))
import rwkv7_twin as rwkv  # noqa: E402


class GptBlock(nn.Module):
    def __init__(self, c, n_head):
        super().__init__()
        self.n_head = n_head
        self.ln_1 = nn.LayerNorm(c, eps=1e-5)
        self.c_attn = nn.Linear(c, 3 * c)
        self.c_proj = nn.Linear(c, c)
        self.ln_2 = nn.LayerNorm(c, eps=1e-5)
        self.c_fc = nn.Linear(c, 4 * c)
        self.mlp_proj = nn.Linear(4 * c, c)

    def forward(self, x):
        b, t, c = x.shape
        h, n = self.n_head, c // self.n_head
        q, k, v = self.c_attn(self.ln_1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, h, n).transpose(1, 2) for z in (q, k, v))  # (B, H, T, N)
        att = (q @ k.transpose(-2, -1)) / math.sqrt(n)
        mask = torch.ones(t, t, dtype=torch.bool).tril()
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        y = (att @ v).transpose(1, 2).reshape(b, t, c)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class Gpt(nn.Module):
    def __init__(self, c, layers, n_head, max_t):
        super().__init__()
        self.wpe = nn.Embedding(max_t, c)
        self.h = nn.ModuleList(GptBlock(c, n_head) for _ in range(layers))
        self.ln_f = nn.LayerNorm(c, eps=1e-5)
        for name, p in self.named_parameters():  # GPT-2 init
            if name.endswith("weight") and p.dim() == 2:
                std = 0.02 / math.sqrt(2 * layers) if "proj" in name else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias") and "ln" not in name:
                nn.init.zeros_(p)

    def forward(self, x):
        h = x + self.wpe(torch.arange(x.shape[1]))
        for blk in self.h:
            h = blk(h)
        return self.ln_f(h)


class Rwkv7(nn.Module):
    """The reference twin's blocks and ln_out on input embeddings, float32."""

    def __init__(self, c, layers, head_size):
        super().__init__()
        self.layers, self.head_size, self.c = layers, head_size, c
        p = rwkv.make_params(layers, c, head_size, 1, 0)
        self.names = list(p)
        self.p = nn.ParameterList(nn.Parameter(t.float()) for t in p.values())

    def forward(self, x):
        p = dict(zip(self.names, self.p))
        ln = lambda z, n: F.layer_norm(z, (self.c,), p[n + ".weight"], p[n + ".bias"], eps=1e-5)
        v_first = None
        for l in range(self.layers):
            if l == 0:
                x = ln(x, "blocks.0.ln0")
            dx, v_first = rwkv.time_mix(p, l, ln(x, f"blocks.{l}.ln1"), v_first, self.head_size)
            x = x + dx
            x = x + rwkv.channel_mix(p, l, ln(x, f"blocks.{l}.ln2"))
        return ln(x, "ln_out")


class Lstm(nn.Module):
    def __init__(self, c, layers):
        super().__init__()
        self.lstm = nn.LSTM(c, c, num_layers=layers, batch_first=True)

    def forward(self, x):
        return self.lstm(x)[0]


class IclModel(nn.Module):
    def __init__(self, args):
        super().__init__()
        c = args.embd
        self.read_in = nn.Linear(args.dims, c)
        if args.family == "transformer":
            self.backbone = Gpt(c, args.layers, args.heads, 2 * args.points)
        elif args.family == "rwkv7":
            self.backbone = Rwkv7(c, args.layers, args.head_size)
        else:
            self.backbone = Lstm(c, args.layers)
        self.read_out = nn.Linear(c, 1)

    def forward(self, xs, ys):
        b, n, d = xs.shape
        tokens = torch.zeros(b, 2 * n, d)  # x1, [y1, 0, ...], x2, ...
        tokens[:, 0::2] = xs
        tokens[:, 1::2, 0] = ys
        out = self.read_out(self.backbone(self.read_in(tokens)))  # (B, 2n, 1)
        return out[:, 0::2, 0]  # predictions at the x tokens


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--family", required=True, choices=["rwkv7", "transformer", "lstm"])
    ap.add_argument("--dims", type=int, default=5)
    ap.add_argument("--points", type=int, default=11)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--embd", type=int, default=64)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--head-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--blas-threads", type=int, default=1,
                    help="OpenBLAS threads (default 1; 0: --threads)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads if args.threads > 0 else os.cpu_count())
    torch.manual_seed(0)
    model = IclModel(args)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(1)

    def batch():  # linear regression: x ~ N(0, I_d), y = w^T x with w ~ N(0, I_d) per prompt
        xs = torch.randn(args.batch, args.points, args.dims, generator=g)
        w = torch.randn(args.batch, args.dims, 1, generator=g)
        return xs, (xs @ w)[:, :, 0]

    batches = [batch() for _ in range(4)]  # drawn before timing, as on the Goose side

    def step(i):
        xs, ys = batches[i % len(batches)]
        opt.zero_grad()
        loss = F.mse_loss(model(xs, ys), ys)
        loss.backward()
        opt.step()

    for i in range(args.warmup):
        step(i)
    times = []
    for i in range(args.steps):
        t0 = time.perf_counter()
        step(i)
        times.append(time.perf_counter() - t0)
    times.sort()
    print(f"twin_params {sum(p.numel() for p in model.parameters())}")
    print(f"twin_step_s {times[len(times) // 2]:.6f}")
    print(f"torch {torch.__version__} threads {torch.get_num_threads()} "
          f"openblas threads {os.environ['OPENBLAS_NUM_THREADS']}")


if __name__ == "__main__":
    main()
