"""The training loop: every tensor on the device, batches cut by slicing a permutation.

One Python iteration per batch, none per sample. The shuffle comes from a CPU generator
seeded by the run seed (the same order on CPU and CUDA); initialisation and dropout run
under a forked, seeded global RNG, so two fits with one seed are identical and the
caller's RNG state is untouched. Early stopping watches the RMSE on a validation set
that the caller carves out of the training rows, and restores the best epoch's weights.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass(frozen=True)
class Batches:
    """Index and target tensors of one set of rows, already on the device."""

    users: torch.Tensor
    items: torch.Tensor
    target: torch.Tensor

    def __len__(self) -> int:
        return int(self.users.shape[0])


@dataclass
class History:
    """Per-epoch record of a fit; ``epoch_s`` is device-synchronised wall time."""

    train_loss: list[float] = field(default_factory=list)
    valid_rmse: list[float] = field(default_factory=list)
    epoch_s: list[float] = field(default_factory=list)
    best_epoch: int = 0  # 1-based; 0 when no validation set was watched
    stopped_early: bool = False

    def as_dict(self) -> dict:
        return dict(vars(self))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """Fork the global torch RNG (and the device's), seed it, restore it afterwards."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def predict_batches(net: nn.Module, users: torch.Tensor, items: torch.Tensor,
                    genre_table: torch.Tensor, batch_size: int = 65536,
                    amp_dtype: torch.dtype | None = None,
                    genre_rows: torch.Tensor | None = None) -> torch.Tensor:
    """Predictions for index tensors, in eval mode and without autograd.

    The genre features are the movies' rows of ``genre_table``, or ``genre_rows`` (one
    row per pair) when given."""
    was_training = net.training
    net.eval()
    out = []
    with torch.inference_mode(), _autocast(users.device, amp_dtype):
        for s in range(0, users.shape[0], batch_size):
            u, i = users[s:s + batch_size], items[s:s + batch_size]
            g = genre_table[i] if genre_rows is None else genre_rows[s:s + batch_size]
            out.append(net(u, i, g).float())
    net.train(was_training)
    if not out:
        return torch.zeros(0, device=users.device)
    return torch.cat(out)


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def train(net: nn.Module, data: Batches, genre_table: torch.Tensor, *, epochs: int,
          batch_size: int, optimizer: torch.optim.Optimizer, shuffle_seed: int,
          valid: Batches | None = None, patience: int | None = None,
          amp_dtype: torch.dtype | None = None,
          on_epoch: Callable[[int, History], None] | None = None,
          clip: tuple[float, float] | None = None) -> History:
    """Train ``net`` in place; return the per-epoch history.

    With ``valid`` and ``patience``, stop after ``patience`` epochs without a lower
    validation RMSE and load the best epoch's weights back into ``net``. ``clip`` bounds
    the validation predictions as the estimator bounds its predictions.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"need epochs >= 1 and batch_size >= 1, got {epochs}, {batch_size}")
    if len(data) == 0:
        raise ValueError("cannot train on an empty set of rows")
    device = data.users.device
    gen = torch.Generator().manual_seed(shuffle_seed)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    hist = History()
    best, best_state, waited = math.inf, None, 0
    n = len(data)
    for epoch in range(1, epochs + 1):
        sync(device)
        t0 = time.perf_counter()
        net.train()
        order = torch.randperm(n, generator=gen).to(device)
        total = torch.zeros((), device=device)
        for s in range(0, n, batch_size):
            idx = order[s:s + batch_size]
            u, i, y = data.users[idx], data.items[idx], data.target[idx]
            with _autocast(device, amp_dtype):
                loss = nn.functional.mse_loss(net(u, i, genre_table[i]).float(), y)
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
                optimizer.step()
            else:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            total += loss.detach() * idx.shape[0]
        hist.train_loss.append(float(total) / n)
        if valid is not None and len(valid):
            p = predict_batches(net, valid.users, valid.items, genre_table, amp_dtype=amp_dtype)
            if clip is not None:
                p = p.clamp(*clip)
            rmse = float(torch.sqrt(torch.mean((p - valid.target) ** 2)))
            hist.valid_rmse.append(rmse)
        sync(device)
        hist.epoch_s.append(time.perf_counter() - t0)
        if on_epoch is not None:
            on_epoch(epoch, hist)
        if valid is None or not len(valid) or patience is None:
            continue
        if hist.valid_rmse[-1] < best:
            best, waited, hist.best_epoch = hist.valid_rmse[-1], 0, epoch
            best_state = copy.deepcopy(net.state_dict())
        else:
            waited += 1
            if waited >= patience:
                hist.stopped_early = epoch < epochs
                break
    if best_state is not None:
        net.load_state_dict(best_state)
    return hist
