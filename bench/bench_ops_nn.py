"""One training step of each network: forward, MSE loss, backward, optimiser step.

The step is the body of ``neural.train.train``'s batch loop (genre rows gathered from the
movies' table, ``zero_grad(set_to_none=True)``), and each network gets the optimiser,
learning rate, weight decay and layer sizes of the estimator that trains it. One batch
size for all three (``Sizes.nn_batch``), so their costs compare; the published network's
own batch of 32 is a throughput question for ``bench/bench_nn.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from kmrec_gpu.neural.estimators import ESTIMATORS

# network class name -> the estimator whose defaults say how it is trained
ESTIMATOR_OF = {est.net_class.__name__: est for est in ESTIMATORS.values()}


@pytest.fixture(scope="module")
def batch(sizes):
    rng = np.random.default_rng(0)
    b, n_users, n_items, n_genres = sizes.nn_batch, sizes.nn_users, sizes.nn_items, sizes.nn_genres
    flags = (rng.random((n_items, n_genres)) < 0.1).astype(np.float32)  # ~2 genres a movie
    return {
        "users": rng.integers(n_users, size=b),
        "items": rng.integers(n_items, size=b),
        "target": rng.uniform(0.5, 5.0, size=b).astype(np.float32),
        # the padding row (cold movies) has no flags, as the estimators build it
        "genre_table": np.vstack([flags, np.zeros((1, n_genres), np.float32)]),
    }


def _build(net_name: str, sizes, device: torch.device):
    # the network and optimiser a fit at this batch size would build (e.g. the hybrid's
    # sparse="auto" decides from the table and batch sizes)
    est = ESTIMATOR_OF[net_name](batch_size=sizes.nn_batch)
    est.n_users_, est.n_items_ = sizes.nn_users, sizes.nn_items
    params = {**est.get_params(), **est._net_params()}
    torch.manual_seed(0)
    net = est.net_class(sizes.nn_users, sizes.nn_items, sizes.nn_genres,
                        **est._net_params()).to(device)
    return net.train(), est._optimizer(net), params


def _step_flops(step) -> int:
    """Forward + backward FLOPs of the matrix products (the optimiser's are not counted)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return int(counter.get_total_flops())


@pytest.mark.benchmark(group="nn-train-step")
@pytest.mark.parametrize("net_name", sorted(ESTIMATOR_OF))
def test_train_step(measure, torch_backend, sizes, batch, net_name):
    dev = torch_backend.device
    net, opt, params = _build(net_name, sizes, dev)
    u, i = (torch.from_numpy(batch[k]).to(dev) for k in ("users", "items"))
    y = torch.from_numpy(batch["target"]).to(dev)
    table = torch.from_numpy(batch["genre_table"]).to(dev)
    if hasattr(net, "offset"):
        net.offset.fill_(float(y.mean()))  # the estimators start at the global mean

    def step():
        loss = nn.functional.mse_loss(net(u, i, table[i]).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    flops = _step_flops(step)
    n_params = sum(p.numel() for p in net.parameters())
    loss = measure(torch_backend, step, op="nn.train_step", flops=flops, net=net_name,
                   batch=sizes.nn_batch, n_params=n_params, optimizer=params["optimizer"],
                   users=sizes.nn_users, items=sizes.nn_items, genres=sizes.nn_genres)
    assert torch.isfinite(loss).item()
