# What the WKV-7 backward's saved state costs in precision: the chunked backward (phase B) reads
# each chunk's entering state S0 (f32, 16 KB a chunk and head) and every step's sa = S_{t-1} a_t
# (f32). This study stores them rounded to bf16 instead and measures each gradient's error against
# a float64 backward with exact S0 and sa, beside the error the kernel already has (its f32
# arithmetic, bf16 gradients written out). Realistic inputs as in wkv7_lab.cu, rounded to bf16.
#
# The backward is the step form of spec rwkv7.md §8.3 with every state rebuilt forward from the
# chunk's S0 and the saved sa (what phase B computes in closed form), so a rounded S0 or sa enters
# exactly where the kernel would read it.
#
# Run: /usr/bin/python3 snapshot_precision.py [--T 4096] [--heads 8] [--seed 0]
import argparse

import numpy as np

SC = 0.6065306597126334  # decay = exp(-SC * sigmoid(w_raw))
N, L = 64, 16


def bf16(x):
    """x rounded to the nearest bf16 (ties to even), as float32."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    u = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return u.view(np.float32)


def inputs(T, BH, rng):
    """(T, BH, N) arrays like the lab's, rounded to bf16: w_raw, r, k, v, a = -kk, b = kk gate."""
    w = rng.uniform(-6, 2, (T, BH, N))
    r = rng.uniform(-1, 1, (T, BH, N))
    k = rng.uniform(-.5, .5, (T, BH, N))
    v = rng.uniform(-1, 1, (T, BH, N))
    kk = rng.normal(size=(T, BH, N))
    kk /= np.linalg.norm(kk, axis=2, keepdims=True)
    a = -kk
    b = kk * rng.uniform(0, 1, (T, BH, N))
    dy = rng.uniform(-1, 1, (T, BH, N))
    return [bf16(x).astype(np.float64) for x in (w, r, k, v, a, b, dy)]


def forward(w, r, k, v, a, b, dt):
    """The recurrence in dtype dt: y, sa (T, BH, N) and the state entering every chunk."""
    T, BH, _ = r.shape
    w, r, k, v, a, b = (x.astype(dt) for x in (w, r, k, v, a, b))
    d = np.exp(-SC / (1 + np.exp(-w))).astype(dt)
    S = np.zeros((BH, N, N), dt)  # S[h, i (value), j (key)]
    y = np.empty((T, BH, N), dt)
    sa = np.empty((T, BH, N), dt)
    S0 = []
    for t in range(T):
        if t % L == 0:
            S0.append(S.copy())
        sa[t] = np.einsum("hij,hj->hi", S, a[t])
        S = S * d[t][:, None, :] + sa[t][:, :, None] * b[t][:, None, :] \
            + v[t][:, :, None] * k[t][:, None, :]
        y[t] = np.einsum("hij,hj->hi", S, r[t])
    return y, sa, S0


def backward(w, r, k, v, a, b, dy, sa, S0, dt):
    """Gradients of sum(dy * y) in dtype dt from the saved S0 (per chunk) and sa (per step)."""
    T, BH, _ = r.shape
    w, r, k, v, a, b, dy, sa = (x.astype(dt) for x in (w, r, k, v, a, b, dy, sa))
    sig = (1 / (1 + np.exp(-w))).astype(dt)
    d = np.exp(-SC * sig).astype(dt)
    g = {n: np.zeros((T, BH, N), dt) for n in ("w", "r", "k", "v", "a", "b")}
    dS = np.zeros((BH, N, N), dt)
    for c in reversed(range(len(S0))):
        t0, t1 = c * L, min(T, (c + 1) * L)
        states = [S0[c].astype(dt)]  # states[s] = S_{t0 + s - 1}
        for t in range(t0, t1):
            S = states[-1]
            states.append(S * d[t][:, None, :] + sa[t][:, :, None] * b[t][:, None, :]
                          + v[t][:, :, None] * k[t][:, None, :])
        for t in reversed(range(t0, t1)):
            S, Sp = states[t - t0 + 1], states[t - t0]
            dS = dS + dy[t][:, :, None] * r[t][:, None, :]
            g["r"][t] = np.einsum("hij,hi->hj", S, dy[t])
            dsa = np.einsum("hij,hj->hi", dS, b[t])
            g["v"][t] = np.einsum("hij,hj->hi", dS, k[t])
            g["k"][t] = np.einsum("hij,hi->hj", dS, v[t])
            g["b"][t] = np.einsum("hij,hi->hj", dS, sa[t])
            dd = np.einsum("hij,hij->hj", dS, Sp)
            g["w"][t] = dd * d[t] * (-SC) * sig[t] * (1 - sig[t])
            g["a"][t] = np.einsum("hij,hi->hj", Sp, dsa)
            dS = dS * d[t][:, None, :] + dsa[:, :, None] * a[t][:, None, :]
    return g


def rel(x, ref):
    return float(np.linalg.norm((x - ref).ravel()) / np.linalg.norm(ref.ravel()))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--T", type=int, default=4096)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    w, r, k, v, a, b, dy = inputs(args.T, args.heads, np.random.default_rng(args.seed))
    _, sa64, S064 = forward(w, r, k, v, a, b, np.float64)
    ref = backward(w, r, k, v, a, b, dy, sa64, S064, np.float64)
    _, sa32, S032 = forward(w, r, k, v, a, b, np.float32)
    saved = {  # what the backward reads: (S0 per chunk, sa per step)
        "f32 S0, f32 sa (now)": (S032, sa32),
        "bf16 S0, f32 sa": ([bf16(s) for s in S032], sa32),
        "f32 S0, bf16 sa": (S032, bf16(sa32)),
        "bf16 S0, bf16 sa": ([bf16(s) for s in S032], bf16(sa32)),
    }
    names = ("r", "w", "k", "v", "a", "b")
    print(f"WKV-7 backward, T {args.T}, {args.heads} heads of {N}, chunks of {L}: relative error "
          "||g - g_ref|| / ||g_ref|| against float64 with exact S0 and sa")
    print(f"{'saved state':<30}" + "".join(f"{'d' + n:>10}" for n in names))
    floor = {n: rel(bf16(ref[n]), ref[n]) for n in names}
    print(f"{'(bf16 rounding of g_ref)':<30}" + "".join(f"{floor[n]:10.2e}" for n in names))
    for label, (S0, sa) in saved.items():
        g = backward(w, r, k, v, a, b, dy, sa, S0, np.float32)
        print(f"{label:<30}" + "".join(f"{rel(g[n], ref[n]):10.2e}" for n in names))
        gb = {n: bf16(g[n]) for n in names}
        print(f"{'  + bf16 gradients out':<30}" + "".join(f"{rel(gb[n], ref[n]):10.2e}" for n in names))


if __name__ == "__main__":
    main()
