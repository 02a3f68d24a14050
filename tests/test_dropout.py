"""neural.dropout: masks drawn with NumPy on the CPU, from torch's seed; the same
function as nn.Dropout (rate, inverted scaling, identity in eval)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kmrec_gpu.neural.dropout import Dropout, keep_factors


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_keep_factors_have_the_rate_and_keep_the_mean(dtype: torch.dtype, rate: float) -> None:
    torch.manual_seed(0)
    k = keep_factors((400, 500), rate, torch.zeros((), dtype=dtype))
    assert k.dtype == dtype and k.shape == (400, 500)
    values = torch.unique(k).tolist()
    assert values[0] == 0.0 and values[1:] == [pytest.approx(1.0 / (1.0 - rate))]
    dropped = float((k == 0).double().mean())
    assert abs(dropped - rate) < 0.005  # 200,000 draws: ~4.5 standard errors at 0.5
    assert abs(float(k.double().mean()) - 1.0) < 0.01


def test_the_torch_seed_drives_the_masks() -> None:
    like = torch.zeros(())
    torch.manual_seed(3)
    a, b = keep_factors((50, 60), 0.3, like), keep_factors((50, 60), 0.3, like)
    torch.manual_seed(3)
    assert torch.equal(a, keep_factors((50, 60), 0.3, like))
    assert not torch.equal(a, b)


def test_dropout_module_is_nn_dropout_in_function() -> None:
    x = torch.randn(300, 200, requires_grad=True)
    d = Dropout(0.25)
    torch.manual_seed(1)
    y = d(x)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.75)
    assert abs(float(kept.double().mean()) - 0.75) < 0.01
    y.sum().backward()  # the gradient is the mask
    torch.testing.assert_close(x.grad, kept.float() / 0.75)
    d.eval()
    assert d(x) is x
    assert isinstance(d, nn.Dropout) and d.p == 0.25


def test_a_rate_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match="dropout rate must be in"):
        keep_factors((3,), 1.0, torch.zeros(()))
