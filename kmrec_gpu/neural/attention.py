"""Self-attention for a few tokens per row, batch innermost.

``nn.MultiheadAttention`` lays the batch outermost: for the attention MLP's 4 heads of
width 8 over ≤ 10 tokens that is ~40,000 tiny products and softmaxes per batch of 1,024,
each a separate step of torch's CPU kernels. Here tokens arrive as (T, B, D), the
projections are two matrix products over all T·B tokens, and the core works on
(heads, width, tokens, batch) arrays, so each operation is a few long vector loops.

The function is ``nn.MultiheadAttention``'s (same parameters, ``in_proj_weight``,
``in_proj_bias``, ``out_proj``, dropout on the attention weights): ``attend`` only reads
the module. On the CPU in float32 the core is one numba pass each way
(``kernels/cpu_attention.py``); elsewhere (CUDA, float64) it is composed from torch ops
in the same layout. Dropout masks come from ``neural.dropout.keep_factors`` (NumPy's
PCG64 on the CPU, ``torch.rand`` elsewhere), seeded from torch's generator on either
path.
"""

from __future__ import annotations

import torch
from torch import nn

from kmrec_gpu.neural.dropout import keep_factors


def _core_torch(qkv: torch.Tensor, absent: torch.Tensor, keep: torch.Tensor | None,
                scale: float, mask_queries: bool = False) -> torch.Tensor:
    """(3, H, d, T, B) -> (H, d, T, B), composed from torch ops (any device, dtype)."""
    q, k, v = qkv[0] * scale, qkv[1], qkv[2]
    s = q[:, 0].unsqueeze(2) * k[:, 0].unsqueeze(1)                  # (H, T, T, B)
    for j in range(1, q.shape[1]):
        s = s + q[:, j].unsqueeze(2) * k[:, j].unsqueeze(1)
    p = torch.softmax(s.masked_fill(absent[None, None], float("-inf")), 2)
    if keep is not None:
        p = p * keep
    o = torch.stack([(p * v[:, j].unsqueeze(1)).sum(2) for j in range(v.shape[1])], 1)
    return o.masked_fill(absent, 0.0) if mask_queries else o


class _CoreCpu(torch.autograd.Function):
    """The same core as ``_core_torch`` through the numba kernels (CPU, float32)."""

    @staticmethod
    def forward(ctx, qkv: torch.Tensor, absent: torch.Tensor,  # type: ignore[override]
                keep: torch.Tensor | None, scale: float, mask_queries: bool) -> torch.Tensor:
        from kernels.cpu_attention import attention_forward

        keep_np = (keep if keep is not None else qkv.new_empty(0, 0, 0, 0)).detach().numpy()
        qkv_np = qkv.detach().contiguous().numpy()
        absent_np = absent.contiguous().numpy()
        o, p, hi = attention_forward(qkv_np, absent_np, keep_np, scale, mask_queries)
        ctx.arrays = (qkv_np, absent_np, hi, p, keep_np)
        ctx.scale, ctx.mask_queries = scale, mask_queries
        return torch.from_numpy(o)

    @staticmethod
    def backward(ctx, d_o: torch.Tensor):  # type: ignore[override]
        from kernels.cpu_attention import attention_backward

        qkv_np, absent_np, hi, p, keep_np = ctx.arrays
        g = attention_backward(qkv_np, absent_np, hi, p, keep_np, d_o.contiguous().numpy(),
                               ctx.scale, ctx.mask_queries)
        return torch.from_numpy(g), None, None, None, None


def core(qkv: torch.Tensor, absent: torch.Tensor, keep: torch.Tensor | None,
         scale: float, *, mask_queries: bool = False,
         kernel: bool | None = None) -> torch.Tensor:
    """Scaled dot-product attention of (3, H, d, T, B) queries, keys and values with the
    (T, B) ``absent`` keys masked; ``keep`` multiplies the weights (dropout) or is None.
    ``mask_queries``: an absent token's own output is 0 (its work skipped) instead of its
    attention over the present keys. ``kernel``: None uses the numba kernel where it
    applies (CPU, float32)."""
    if kernel is None:
        kernel = qkv.device.type == "cpu" and qkv.dtype == torch.float32
    if kernel:
        return _CoreCpu.apply(qkv, absent, keep, scale, mask_queries)
    return _core_torch(qkv, absent, keep, scale, mask_queries)


def attend(mha: nn.MultiheadAttention, x: torch.Tensor, absent: torch.Tensor, *,
           mask_queries: bool = False, kernel: bool | None = None) -> torch.Tensor:
    """``mha(x, x, x, key_padding_mask=absent)`` for token-major x (T, B, D) and a (T, B)
    mask, returned as (T, B, D); dropout on the weights while ``mha`` is training.
    ``mask_queries``: outputs at absent positions are 0, not attention results (for a
    caller that uses none of them)."""
    n_tok, n_b, dim = x.shape
    heads = mha.num_heads
    width = dim // heads
    tokens = x.reshape(n_tok * n_b, dim)
    qkv = torch.addmm(mha.in_proj_bias.unsqueeze(1), mha.in_proj_weight, tokens.T)
    qkv = qkv.view(3, heads, width, n_tok, n_b)
    keep = None
    if mha.training and mha.dropout > 0:
        rate = mha.dropout
        keep = keep_factors((heads, n_tok, n_tok, n_b), rate, x)
    o = core(qkv, absent, keep, width ** -0.5, mask_queries=mask_queries, kernel=kernel)
    out = torch.addmm(mha.out_proj.bias, o.reshape(dim, n_tok * n_b).T, mha.out_proj.weight.T)
    return out.view(n_tok, n_b, dim)
