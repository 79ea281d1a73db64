#!/usr/bin/env python3
"""PyTorch twin of Goose's RWKV-7 (x070): an independent implementation of the model math of
the spec (sections 2-5, 10.1, 10.2), written with plain PyTorch ops in float64.

It builds a small model with random (non-trivial) parameters under the official names, saves it
with torch.save, and writes the golden values the C++ test compares against:
logits, loss, every parameter gradient (cross-entropy + L2Wrap), and the losses of N AdamW steps
with the official parameter groups.

    rwkv7_twin.py --out DIR [--layers 3 --dim 128 --head 64 --vocab 300 --batch 2 --ctx 16]

DIR/model.pth     the parameters (float32), official key names
DIR/expected.pth  tokens, logits, loss, grad.<name>, step_losses, hparams
"""
import argparse
import math
import os

import torch
import torch.nn.functional as F

DECAY_SCALE = math.exp(-0.5)


def lora_ranks(c):
    def r(f):
        return max(32, int(round(f * math.sqrt(c) / 32) * 32))
    return r(2.5), r(2.5), r(1.7), r(5.0)


def make_params(L, C, N, V, seed):
    """Random parameters with init-like scales (not the official init: every matrix non-zero)."""
    g = torch.Generator().manual_seed(seed)
    H = C // N
    dw, da, dv, dg = lora_ranks(C)
    F4 = 4 * C

    def rn(*shape, std=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * std

    def ru(*shape, lo=0.0, hi=1.0):
        return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=torch.float64)

    p = {}
    p["emb.weight"] = rn(V, C, std=1.0)
    p["blocks.0.ln0.weight"] = 1 + rn(C, std=0.1)
    p["blocks.0.ln0.bias"] = rn(C, std=0.1)
    for l in range(L):
        b = f"blocks.{l}."
        for n in ("ln1", "ln2"):
            p[b + n + ".weight"] = 1 + rn(C, std=0.1)
            p[b + n + ".bias"] = rn(C, std=0.1)
        for c in "rwkvag":
            p[b + f"att.x_{c}"] = ru(1, 1, C)
        p[b + "att.w0"] = ru(1, 1, C, lo=-4.0, hi=1.0)
        p[b + "att.w1"] = rn(C, dw, std=0.1)
        p[b + "att.w2"] = rn(dw, C, std=0.1)
        p[b + "att.a0"] = rn(1, 1, C, std=0.3)
        p[b + "att.a1"] = rn(C, da, std=0.1)
        p[b + "att.a2"] = rn(da, C, std=0.1)
        p[b + "att.v0"] = 0.7 + rn(1, 1, C, std=0.2)
        p[b + "att.v1"] = rn(C, dv, std=0.1)
        p[b + "att.v2"] = rn(dv, C, std=0.1)
        p[b + "att.g1"] = rn(C, dg, std=0.1)
        p[b + "att.g2"] = rn(dg, C, std=0.1)
        p[b + "att.k_k"] = ru(1, 1, C, lo=0.6, hi=0.8)
        p[b + "att.k_a"] = ru(1, 1, C, lo=0.8, hi=1.2)
        p[b + "att.r_k"] = rn(H, N, std=0.1)
        for n in ("receptance", "key", "value", "output"):
            p[b + f"att.{n}.weight"] = rn(C, C, std=1 / math.sqrt(C))
        p[b + "att.ln_x.weight"] = 1 + rn(C, std=0.1)
        p[b + "att.ln_x.bias"] = rn(C, std=0.1)
        p[b + "ffn.x_k"] = ru(1, 1, C)
        p[b + "ffn.key.weight"] = rn(F4, C, std=1 / math.sqrt(C))
        p[b + "ffn.value.weight"] = rn(C, F4, std=1 / math.sqrt(F4))
    p["ln_out.weight"] = 1 + rn(C, std=0.1)
    p["ln_out.bias"] = rn(C, std=0.1)
    p["head.weight"] = rn(V, C, std=1 / math.sqrt(C))
    return p


def shift(x):
    """x_prev[t] = x[t-1], zeros at t = 0. x: [B, T, C]."""
    return F.pad(x, (0, 0, 1, -1))


def time_mix(p, l, x, v_first, N):
    B, T, C = x.shape
    H = C // N
    a_ = lambda n: p[f"blocks.{l}.att.{n}"]
    xx = shift(x) - x
    xr, xw, xk, xv, xa, xg = (x + xx * a_(f"x_{c}") for c in "rwkvag")
    r = xr @ a_("receptance.weight").T
    k = xk @ a_("key.weight").T
    v = xv @ a_("value.weight").T
    w = a_("w0") + torch.tanh(xw @ a_("w1")) @ a_("w2")
    a = torch.sigmoid(a_("a0") + (xa @ a_("a1")) @ a_("a2"))
    g = torch.sigmoid(xg @ a_("g1")) @ a_("g2")
    if l == 0:
        v_first = v
    else:
        v = v + (v_first - v) * torch.sigmoid(a_("v0") + (xv @ a_("v1")) @ a_("v2"))
    kk = F.normalize((k * a_("k_k")).view(B, T, H, N), dim=-1, p=2.0, eps=1e-12).view(B, T, C)
    k = k * (1 + (a - 1) * a_("k_a"))
    decay = torch.exp(-DECAY_SCALE * torch.sigmoid(w))

    # The recurrence, per head: S[i, j] with i = value, j = key.
    view = lambda z: z.view(B, T, H, N)
    rr, dd, kk4, vv, aa, bb = view(r), view(decay), view(k), view(v), view(-kk), view(kk * a)
    S = torch.zeros(B, H, N, N, dtype=x.dtype)
    ys = []
    for t in range(T):
        sa = S @ aa[:, t].unsqueeze(-1)                                   # [B, H, N, 1]
        S = (S * dd[:, t].unsqueeze(-2) + sa @ bb[:, t].unsqueeze(-2)
             + vv[:, t].unsqueeze(-1) @ kk4[:, t].unsqueeze(-2))
        ys.append((S @ rr[:, t].unsqueeze(-1)).squeeze(-1))               # [B, H, N]
    y = torch.stack(ys, dim=1).reshape(B, T, C)

    y = F.group_norm(y.reshape(B * T, C), H, a_("ln_x.weight"), a_("ln_x.bias"),
                     eps=64e-5).view(B, T, C)
    bonus = (rr * kk4 * a_("r_k")).sum(-1, keepdim=True) * vv
    y = y + bonus.reshape(B, T, C)
    return (y * g) @ a_("output.weight").T, v_first


def channel_mix(p, l, x):
    f_ = lambda n: p[f"blocks.{l}.ffn.{n}"]
    kx = x + (shift(x) - x) * f_("x_k")
    h = torch.relu(kx @ f_("key.weight").T) ** 2
    return h @ f_("value.weight").T


def forward(p, L, N, idx):
    C = p["emb.weight"].shape[1]
    ln = lambda z, n: F.layer_norm(z, (C,), p[n + ".weight"], p[n + ".bias"], eps=1e-5)
    x = p["emb.weight"][idx]
    v_first = None
    for l in range(L):
        if l == 0:
            x = ln(x, "blocks.0.ln0")
        dx, v_first = time_mix(p, l, ln(x, f"blocks.{l}.ln1"), v_first, N)
        x = x + dx
        x = x + channel_mix(p, l, ln(x, f"blocks.{l}.ln2"))
    return ln(x, "ln_out") @ p["head.weight"].T


class L2Wrap(torch.autograd.Function):
    """Gradient-only: adds max_logit * 1e-4 / (B*T) at each row's argmax (spec 10.1)."""

    @staticmethod
    def forward(ctx, loss, y):
        ctx.save_for_backward(y)
        return loss

    @staticmethod
    def backward(ctx, grad_output):
        (y,) = ctx.saved_tensors
        factor = 1e-4 / (y.shape[0] * y.shape[1])
        maxx, ids = torch.max(y, -1, keepdim=True)
        gy = torch.zeros_like(y)
        gy.scatter_(-1, ids, maxx * factor)
        return grad_output, gy * grad_output


def loss_fn(p, L, N, tokens):
    logits = forward(p, L, N, tokens[:, :-1])
    V = logits.shape[-1]
    loss = F.cross_entropy(logits.reshape(-1, V), tokens[:, 1:].reshape(-1))
    return L2Wrap.apply(loss, logits), logits


def param_groups(p, wd):
    """Official grouping (spec 10.2): att.w0 at 2x lr without wd; 2-D .weight matrices with wd."""
    lr_2x, decay, rest = [], [], []
    for n, t in p.items():
        if "att.w0" in n:
            lr_2x.append(n)
        elif len(t.squeeze().shape) >= 2 and ".weight" in n and wd > 0:
            decay.append(n)
        else:
            rest.append(n)
    return lr_2x, decay, rest


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--layers", type=int, default=3)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--head", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=300)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--wd", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    L, C, N, V = args.layers, args.dim, args.head, args.vocab

    p64 = make_params(L, C, N, V, args.seed)
    # The model is stored in float32; the twin computes in float64 from those exact values.
    model = {n: t.float() for n, t in p64.items()}
    torch.save(model, os.path.join(args.out, "model.pth"))
    p = {n: t.double().clone().requires_grad_(True) for n, t in model.items()}

    g = torch.Generator().manual_seed(args.seed + 1)
    tokens = torch.randint(0, V, (args.batch, args.ctx + 1), generator=g)
    loss, logits = loss_fn(p, L, N, tokens)
    loss.backward()
    expected = {
        "tokens": tokens.long(),
        "logits": logits.detach().float(),
        "loss": loss.detach().double().reshape(1),
        "hparams": torch.tensor([args.lr, 0.9, 0.99, 1e-8, args.wd], dtype=torch.float64),
    }
    for n, t in p.items():  # layer 0's v0/v1/v2 exist but are unused: zero gradient
        grad = t.grad if t.grad is not None else torch.zeros_like(t)
        expected["grad." + n] = grad.detach().float()

    # N AdamW steps with the official groups, from the same float32 starting point.
    q = {n: t.double().clone().requires_grad_(True) for n, t in model.items()}
    lr_2x, decay, rest = param_groups(q, args.wd)
    opt = torch.optim.AdamW([
        {"params": [q[n] for n in lr_2x], "lr": 2 * args.lr, "weight_decay": 0.0},
        {"params": [q[n] for n in decay], "lr": args.lr, "weight_decay": args.wd},
        {"params": [q[n] for n in rest], "lr": args.lr, "weight_decay": 0.0},
    ], lr=args.lr, betas=(0.9, 0.99), eps=1e-8)
    losses = []
    for _ in range(args.steps):
        opt.zero_grad()
        l, _ = loss_fn(q, L, N, tokens)
        l.backward()
        opt.step()
        losses.append(l.item())
    expected["step_losses"] = torch.tensor(losses, dtype=torch.float64)
    torch.save(expected, os.path.join(args.out, "expected.pth"))
    print(f"twin: L{L} C{C} N{N} V{V}: loss {loss.item():.6f}, after {args.steps} AdamW steps "
          f"{losses[-1]:.6f}; wrote {args.out}")


if __name__ == "__main__":
    main()
