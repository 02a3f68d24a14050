"""Dropout whose masks are drawn fast on the CPU, still from torch's seed.

torch's CPU dropout draws one Mersenne-Twister number per element: for the attention
MLP's masks (its two hidden layers and the (heads, T, T, B) attention weights at batch
1,024) that was ~2 ms of a ~15 ms training step on one thread. On the CPU the masks here
come from NumPy's PCG64 (several times faster per element), seeded by one draw from
torch's default generator at each call, so ``torch.manual_seed`` still fixes every
mask. Elsewhere (CUDA) they are torch's own ``torch.rand`` on the device.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def keep_factors(shape: tuple[int, ...], rate: float, like: torch.Tensor) -> torch.Tensor:
    """Inverted-dropout factors of ``shape``: 1 / (1 - rate) with probability 1 - rate,
    else 0, in ``like``'s dtype and on its device."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {rate!r}")
    if like.device.type != "cpu":
        u = torch.rand(shape, device=like.device, dtype=like.dtype)
    else:
        seed = int(torch.randint(0, 2**62, (1,)))  # torch's generator seeds the draw
        dtype = np.float64 if like.dtype == torch.float64 else np.float32
        u = torch.from_numpy(np.random.default_rng(seed).random(shape, dtype=dtype))
        u = u.to(like.dtype)
    return u.ge_(rate).mul_(1.0 / (1.0 - rate))


class Dropout(nn.Dropout):
    """``nn.Dropout`` with its mask from :func:`keep_factors` (same function and rate)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        return x * keep_factors(tuple(x.shape), self.p, x)
