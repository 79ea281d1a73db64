# float64 check of the chunked WKV-7 closed forms (forward, backward, and the decay-gradient
# identity; derivation in README.md "Chunked form") against the sequential recurrence and torch
# autograd. Run: /usr/bin/python3 verify_chunked.py (prints max abs differences, all ~1e-15).
import numpy as np, torch
torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(0)
N, T, L = 8, 40, 16
sc = 0.6065306597126334
w = rng.uniform(-6, 2, (T, N)); r = rng.uniform(-1, 1, (T, N)); k = rng.uniform(-.5, .5, (T, N))
v = rng.uniform(-1, 1, (T, N)); kk = rng.normal(size=(T, N)); kk /= np.linalg.norm(kk, axis=1, keepdims=True)
a = -kk; b = kk * rng.uniform(0.02, .98, (T, N)); dy = rng.uniform(-1, 1, (T, N))
S0 = rng.uniform(-1, 1, (N, N)); dSout = rng.uniform(-.1, .1, (N, N))
def seq(tw, tr, tk, tv, ta, tb, tS):
    S = tS; ys = []; us = []; Ss = []
    for t in range(T):
        d = torch.exp(-sc * torch.sigmoid(tw[t]))
        u = S @ ta[t]; us.append(u)
        S = S * d[None, :] + torch.outer(u, tb[t]) + torch.outer(tv[t], tk[t])
        ys.append(S @ tr[t]); Ss.append(S)
    return torch.stack(ys), S, torch.stack(us), Ss
ts = [torch.tensor(x, requires_grad=True) for x in (w, r, k, v, a, b, S0)]
Y, SL, Useq, Ss = seq(*ts)
loss = (Y * torch.tensor(dy)).sum() + (SL * torch.tensor(dSout)).sum()
g = torch.autograd.grad(loss, ts)
gw, gr, gk, gv, ga, gb, gS0 = [x.numpy() for x in g]
Y = Y.detach().numpy(); Useq = Useq.detach().numpy(); snaps = {}
Sseq = [x.detach().numpy() for x in Ss]
# ---- chunked forward
l = -sc / (1 + np.exp(-w)); y = np.zeros((T, N)); U = np.zeros((T, N)); S = S0.copy(); chunk_S0 = []
for c0 in range(0, T, L):
    n = min(L, T - c0); sl = slice(c0, c0 + n); chunk_S0.append(S.copy())
    lam = np.cumsum(l[sl], 0); lamp = np.vstack([np.zeros(N), lam[:-1]])
    At = a[sl] * np.exp(lamp); Rt = r[sl] * np.exp(lam); Bs = b[sl] * np.exp(-lam); Ks = k[sl] * np.exp(-lam)
    Ab = np.tril(At @ Bs.T, -1); Ak = np.tril(At @ Ks.T, -1); Rb = np.tril(Rt @ Bs.T); Rk = np.tril(Rt @ Ks.T)
    Uc = np.linalg.solve(np.eye(n) - Ab, At @ S.T + Ak @ v[sl])
    U[sl] = Uc; y[sl] = Rt @ S.T + Rb @ Uc + Rk @ v[sl]
    eL = np.exp(lam[-1])
    S = S * eL[None, :] + Uc.T @ (b[sl] * np.exp(lam[-1] - lam)) + v[sl].T @ (k[sl] * np.exp(lam[-1] - lam))
print("fwd y", abs(y - Y).max(), "u", abs(U - Useq).max(), "S_T", abs(S - SL.detach().numpy()).max())
# ---- chunked backward (phase A reverse + phase B per chunk)
chunks = list(range(0, T, L)); Gh = dSout.copy(); DU = np.zeros((T, N)); GhL = {}
for c0 in reversed(chunks):
    n = min(L, T - c0); sl = slice(c0, c0 + n); GhL[c0] = Gh.copy()
    lam = np.cumsum(l[sl], 0); lamp = np.vstack([np.zeros(N), lam[:-1]])
    At = a[sl] * np.exp(lamp); Rt = r[sl] * np.exp(lam); Bs = b[sl] * np.exp(-lam); Bh = b[sl] * np.exp(lam[-1] - lam)
    # du_t = Gh Bh_t + sum_{s>=t} (Rt_s.Bs_t) dy_s + sum_{s>t} (At_s.Bs_t) du_s
    du = np.zeros((n, N))
    for t in reversed(range(n)):
        du[t] = Gh @ Bh[t] + sum((Rt[s] @ Bs[t]) * dy[sl][s] for s in range(t, n)) \
            + sum((At[s] @ Bs[t]) * du[s] for s in range(t + 1, n))
    DU[sl] = du
    Gh = Gh * np.exp(lam[-1])[None, :] + dy[sl].T @ Rt + du.T @ At
print("bwd dS0", abs(Gh - gS0).max())
# check du against autograd: du_t = dL/du_t, compute from sequential G_t b_t
G = dSout.copy(); du_ref = np.zeros((T, N)); dl_ref = np.zeros((T, N))
d_all = np.exp(l)
for t in reversed(range(T)):
    G = G + np.outer(dy[t], r[t]); du_ref[t] = G @ b[t]
    Sprev = Sseq[t - 1] if t > 0 else S0
    dl_ref[t] = d_all[t] * (G * Sprev).sum(0)
    G = G * d_all[t][None, :] + np.outer(du_ref[t], a[t])
print("du", abs(DU - du_ref).max())
# phase B
dr = np.zeros((T, N)); da = np.zeros((T, N)); dv = np.zeros((T, N)); dk = np.zeros((T, N)); db = np.zeros((T, N)); dl = np.zeros((T, N))
for ci, c0 in enumerate(chunks):
    n = min(L, T - c0); sl = slice(c0, c0 + n); S0c = chunk_S0[ci]; G_L = GhL[c0]
    SLc = chunk_S0[ci + 1] if ci + 1 < len(chunks) else S
    lam = np.cumsum(l[sl], 0); lamp = np.vstack([np.zeros(N), lam[:-1]]); eL = np.exp(lam[-1])
    At = a[sl] * np.exp(lamp); Rt = r[sl] * np.exp(lam); Bs = b[sl] * np.exp(-lam); Ks = k[sl] * np.exp(-lam)
    Kh = Ks * eL; Bh = Bs * eL; Uc = U[sl]; DUc = DU[sl]; DYc = dy[sl]; Vc = v[sl]
    dr[sl] = np.exp(lam) * (DYc @ S0c + np.tril(DYc @ Uc.T) @ Bs + np.tril(DYc @ Vc.T) @ Ks)
    da[sl] = np.exp(lamp) * (DUc @ S0c + np.tril(DUc @ Uc.T, -1) @ Bs + np.tril(DUc @ Vc.T, -1) @ Ks)
    Rk = np.tril(Rt @ Ks.T); Ak = np.tril(At @ Ks.T, -1); Rb = np.tril(Rt @ Bs.T); Ab = np.tril(At @ Bs.T, -1)
    dv[sl] = Kh @ G_L.T + Rk.T @ DYc + Ak.T @ DUc
    # dk_t = e^{-lam_t} o (eL o (G_L^T v_t) + sum_{s>=t}(dy_s.v_t) Rt_s + sum_{s>t}(du_s.v_t) At_s)
    dk[sl] = np.exp(-lam) * (eL * (Vc @ G_L) + np.triu(Vc @ DYc.T) @ Rt + np.triu(Vc @ DUc.T, 1) @ At)
    db[sl] = np.exp(-lam) * (eL * (Uc @ G_L) + np.triu(Uc @ DYc.T) @ Rt + np.triu(Uc @ DUc.T, 1) @ At)
    cL = (G_L * SLc).sum(0)
    x = r[sl] * dr[sl] - b[sl] * db[sl] - k[sl] * dk[sl]; z = a[sl] * da[sl]
    for t in range(n):
        dl[c0 + t] = x[t:].sum(0) + z[t + 1:].sum(0) + cL
print("dr", abs(dr - gr).max(), "da", abs(da - ga).max(), "dv", abs(dv - gv).max(), "dk", abs(dk - gk).max(), "db", abs(db - gb).max())
sg = 1 / (1 + np.exp(-w)); dw = dl * (-sc * sg * (1 - sg))
print("dl vs G.S ref", abs(dl - dl_ref).max(), "dw", abs(dw - gw).max(), "scale", abs(gw).max())
