"""Multi-head self-attention over a few tokens per row, batch innermost (numba, CPU).

The attention MLP attends over 2 + k ≤ 10 tokens with 4 heads of width 8. Composed from
torch's CPU ops that is ~40,000 softmaxes over 10 numbers and as many 10 × 8 products per
batch of 1,024 rows, each paying a kernel's overhead for a few dozen flops: in a profile
the attention took two thirds of a training step. Here every array is laid out
(heads, width or tokens, tokens, batch) so each inner loop runs over the batch,
contiguous, and the whole forward (scores, key mask, softmax, dropout, weighted sum) and
backward are one pass each.

Shapes: ``qkv`` (3, H, d, T, B) float32 — queries, keys and values; ``absent`` (T, B) bool
— keys no query attends to (each row has at least one present key); ``keep`` (H, T, T, B)
float32 — the dropout factor of each attention weight (0 or 1 / (1 - p)), or a (0, 0, 0, 0)
array for none. The query scale 1/√d is applied inside. ``mask_queries``: an absent token's
own output is 0 instead of its attention over the present keys (a caller that uses none
of those outputs says so, and their work is skipped).

Each token's loops stop at the last row where it is present (``hi``): with the rows
sorted by their count of present tokens, as the attention MLP sorts them, a token
present in a prefix of the batch costs that prefix only.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# fastmath without "ninf"/"nnan": masked scores are -inf and must stay so
_FAST = {"contract", "reassoc", "arcp", "afn", "nsz"}


@njit(cache=True, nogil=True)
def present_rows(absent):  # pragma: no cover - jit
    """hi (T,): one past the last row where each token is present (0 if nowhere)."""
    n_tok, n_b = absent.shape
    hi = np.zeros(n_tok, dtype=np.int64)
    for t in range(n_tok):
        for b in range(n_b - 1, -1, -1):
            if not absent[t, b]:
                hi[t] = b + 1
                break
    return hi


@njit(cache=True, nogil=True, fastmath=_FAST)
def attention_forward(qkv, absent, keep, scale, mask_queries):  # pragma: no cover - jit
    """(o, p, hi): o (H, d, T, B) the heads' outputs, p (H, T, T, B) the softmax weights
    before dropout (rows past a query's ``hi`` unset when ``mask_queries``) and ``hi``
    (:func:`present_rows`), both for the backward."""
    _, n_heads, width, n_tok, n_b = qkv.shape
    drop = keep.shape[0] > 0
    hi = present_rows(absent)
    o = np.zeros((n_heads, width, n_tok, n_b), dtype=np.float32)
    p = np.empty((n_heads, n_tok, n_tok, n_b), dtype=np.float32)
    peak = np.empty(n_b, dtype=np.float32)
    total = np.empty(n_b, dtype=np.float32)
    w = np.empty(n_b, dtype=np.float32)
    for h in range(n_heads):
        for t in range(n_tok):
            nt = hi[t] if mask_queries else n_b
            for s in range(n_tok):
                ns = min(hi[s], nt)
                acc = p[h, t, s]
                for b in range(ns):
                    acc[b] = np.float32(0.0)
                for j in range(width):
                    qj = qkv[0, h, j, t]
                    kj = qkv[1, h, j, s]
                    for b in range(ns):
                        acc[b] += qj[b] * kj[b]
                for b in range(ns):
                    acc[b] = -np.inf if absent[s, b] else acc[b] * scale
                for b in range(ns, nt):  # past its last present row the key is absent
                    acc[b] = -np.inf
            for b in range(nt):
                peak[b] = -np.inf
                total[b] = np.float32(0.0)
            for s in range(n_tok):
                acc = p[h, t, s]
                for b in range(nt):
                    peak[b] = max(peak[b], acc[b])
            for s in range(n_tok):
                acc = p[h, t, s]
                for b in range(nt):
                    acc[b] = np.exp(acc[b] - peak[b])
                    total[b] += acc[b]
            for s in range(n_tok):
                ns = min(hi[s], nt)
                acc = p[h, t, s]
                for b in range(nt):
                    acc[b] /= total[b]
                for b in range(ns):
                    w[b] = acc[b] * keep[h, t, s, b] if drop else acc[b]
                for j in range(width):
                    out = o[h, j, t]
                    vj = qkv[2, h, j, s]
                    for b in range(ns):
                        out[b] += w[b] * vj[b]
            if mask_queries:  # rows before hi where the token itself is absent
                for j in range(width):
                    out = o[h, j, t]
                    for b in range(nt):
                        if absent[t, b]:
                            out[b] = np.float32(0.0)
    return o, p, hi


@njit(cache=True, nogil=True, fastmath=_FAST)
def attention_backward(qkv, absent, hi, p, keep, d_o, scale,
                       mask_queries):  # pragma: no cover - jit
    """The gradient of ``attention_forward``'s o with respect to qkv, (3, H, d, T, B), from
    the forward's ``p`` and ``hi``. A key's weight is 0 past its last present row, so only
    the rows before it count."""
    _, n_heads, width, n_tok, n_b = qkv.shape
    drop = keep.shape[0] > 0
    g = np.zeros(qkv.shape, dtype=np.float32)
    dp = np.empty((n_tok, n_b), dtype=np.float32)
    dot = np.empty(n_b, dtype=np.float32)
    w = np.empty(n_b, dtype=np.float32)
    d_t = np.empty((width, n_b), dtype=np.float32)
    for h in range(n_heads):
        for t in range(n_tok):
            nt = hi[t] if mask_queries else n_b
            for j in range(width):  # an absent query's output is the constant 0
                for b in range(nt):
                    d_t[j, b] = np.float32(0.0) if mask_queries and absent[t, b] \
                        else d_o[h, j, t, b]
            # dP[s] = dO[t] . v[s] (times the dropout factor); dV[s] += P'[t, s] dO[t]
            for s in range(n_tok):
                ns = min(hi[s], nt)
                ps = p[h, t, s]
                acc = dp[s]
                for b in range(ns):
                    acc[b] = np.float32(0.0)
                    w[b] = ps[b] * keep[h, t, s, b] if drop else ps[b]
                for j in range(width):
                    doj = d_t[j]
                    vj = qkv[2, h, j, s]
                    gv = g[2, h, j, s]
                    for b in range(ns):
                        acc[b] += doj[b] * vj[b]
                        gv[b] += w[b] * doj[b]
                if drop:
                    for b in range(ns):
                        acc[b] *= keep[h, t, s, b]
            # softmax: dS[s] = P[s] (dP[s] - Σ_s' P[s'] dP[s'])
            for b in range(nt):
                dot[b] = np.float32(0.0)
            for s in range(n_tok):
                ns = min(hi[s], nt)
                ps = p[h, t, s]
                acc = dp[s]
                for b in range(ns):
                    dot[b] += ps[b] * acc[b]
            for s in range(n_tok):
                ns = min(hi[s], nt)
                ps = p[h, t, s]
                acc = dp[s]
                for b in range(ns):
                    acc[b] = ps[b] * (acc[b] - dot[b]) * scale
                for j in range(width):
                    gq = g[0, h, j, t]
                    gk = g[1, h, j, s]
                    kj = qkv[1, h, j, s]
                    qj = qkv[0, h, j, t]
                    for b in range(ns):
                        gq[b] += acc[b] * kj[b]
                        gk[b] += acc[b] * qj[b]
    return g

