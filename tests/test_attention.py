"""The batch-innermost attention (``neural.attention``) against ``nn.MultiheadAttention``,
and its numba core against the same core composed from torch ops, values and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from kmrec_gpu.neural.attention import attend, core
from kmrec_gpu.neural.nets import AttentionMLP, token_groups


def _mask(n_tok: int, n_b: int, gen: torch.Generator) -> torch.Tensor:
    absent = torch.rand(n_tok, n_b, generator=gen) < 0.4
    absent[:2] = False  # the user and movie tokens are always present
    return absent


@pytest.mark.parametrize("kernel", [True, False])
@pytest.mark.parametrize(("n_tok", "n_b"), [(2, 1), (5, 33), (10, 257)])
def test_attend_is_multihead_attention(kernel: bool, n_tok: int, n_b: int) -> None:
    gen = torch.Generator().manual_seed(n_tok * 1000 + n_b)
    torch.manual_seed(n_b)
    mha = nn.MultiheadAttention(32, 4, dropout=0.1, batch_first=True).eval()
    x = torch.randn(n_tok, n_b, 32, generator=gen)
    absent = _mask(n_tok, n_b, gen)
    xb = x.transpose(0, 1)
    ref, _ = mha(xb, xb, xb, key_padding_mask=absent.T, need_weights=False)
    with torch.no_grad():
        got = attend(mha, x, absent, kernel=kernel)
    torch.testing.assert_close(got, ref.transpose(0, 1), rtol=1e-5, atol=1e-6)


def test_attend_float64_takes_the_torch_path() -> None:
    torch.manual_seed(1)
    mha = nn.MultiheadAttention(16, 2, batch_first=True).double().eval()
    x = torch.randn(4, 9, 16, dtype=torch.float64)
    absent = torch.zeros(4, 9, dtype=torch.bool)
    absent[3, ::2] = True
    xb = x.transpose(0, 1)
    ref, _ = mha(xb, xb, xb, key_padding_mask=absent.T, need_weights=False)
    torch.testing.assert_close(attend(mha, x, absent), ref.transpose(0, 1), rtol=1e-12,
                               atol=1e-12)


def _sorted_mask(n_tok: int, n_b: int, gen: torch.Generator) -> torch.Tensor:
    """As the attention MLP lays its batch out: rows by falling count of present tokens,
    each row's present tokens first, so every token is present in a prefix of rows."""
    count = torch.randint(0, n_tok - 1, (n_b,), generator=gen).sort(descending=True).values
    return torch.cat([torch.zeros(2, n_b, dtype=torch.bool),
                      torch.arange(n_tok - 2).unsqueeze(1) >= count])


@pytest.mark.parametrize("layout", ["random", "sorted"])
@pytest.mark.parametrize("mask_queries", [False, True])
@pytest.mark.parametrize("dropout", [False, True])
@pytest.mark.parametrize(("heads", "width", "n_tok", "n_b"), [(4, 8, 10, 129), (2, 3, 3, 7)])
def test_kernel_core_matches_torch_core_values_and_gradients(
        dropout: bool, mask_queries: bool, layout: str, heads: int, width: int, n_tok: int,
        n_b: int) -> None:
    gen = torch.Generator().manual_seed(heads * 100 + n_tok)
    qkv = torch.randn(3, heads, width, n_tok, n_b, generator=gen)
    absent = (_mask if layout == "random" else _sorted_mask)(n_tok, n_b, gen)
    keep = None
    if dropout:
        keep = (torch.rand(heads, n_tok, n_tok, n_b, generator=gen) >= 0.3).float() / 0.7
    upstream = torch.randn(heads, width, n_tok, n_b, generator=gen)
    outs, grads = [], []
    for kernel in (True, False):
        leaf = qkv.clone().requires_grad_(True)
        out = core(leaf, absent, keep, width ** -0.5, mask_queries=mask_queries,
                   kernel=kernel)
        (out * upstream).sum().backward()
        outs.append(out.detach())
        grads.append(leaf.grad)
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-5)
    if mask_queries:  # an absent token's output is 0 and its upstream gradient goes nowhere
        assert bool((outs[0][:, :, absent] == 0).all())
        grad_queries = grads[0][0].abs().sum(dim=(0, 1))
        assert bool((grad_queries[absent] == 0).all())


def test_torch_core_gradients_pass_gradcheck() -> None:
    gen = torch.Generator().manual_seed(3)
    qkv = torch.randn(3, 2, 3, 4, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    absent = torch.zeros(4, 5, dtype=torch.bool)
    absent[3, 1:] = True
    keep = (torch.rand(2, 4, 4, 5, generator=gen, dtype=torch.float64) > 0.2) / 0.8
    assert torch.autograd.gradcheck(lambda t: core(t, absent, keep.double(), 0.5), (qkv,))


def test_masked_keys_get_no_weight_and_no_gradient() -> None:
    gen = torch.Generator().manual_seed(4)
    qkv = torch.randn(3, 4, 8, 6, 50, generator=gen, requires_grad=True)
    absent = _mask(6, 50, gen)
    out = core(qkv, absent, None, 8 ** -0.5, kernel=True)
    out.sum().backward()
    grad_keys = qkv.grad[1:].abs().sum(dim=(0, 1, 2))  # keys and values, per (token, row)
    assert bool((grad_keys[absent] == 0).all())
    assert bool((grad_keys[~absent] > 0).all())
    # moving an absent key's value moves nothing
    moved = qkv.detach().clone()
    moved[2][:, :, absent] += 100.0
    torch.testing.assert_close(core(moved, absent, None, 8 ** -0.5, kernel=True), out.detach())


def test_dropout_is_drawn_from_the_torch_seed_and_off_in_eval() -> None:
    torch.manual_seed(5)
    mha = nn.MultiheadAttention(32, 4, dropout=0.5)
    x = torch.randn(6, 40, 32)
    absent = torch.zeros(6, 40, dtype=torch.bool)
    torch.manual_seed(7)
    a = attend(mha, x, absent)
    torch.manual_seed(7)
    b = attend(mha, x, absent)
    c = attend(mha, x, absent)
    torch.testing.assert_close(a, b)
    assert not torch.allclose(b, c)
    mha.eval()
    torch.testing.assert_close(attend(mha, x, absent), attend(mha, x, absent))


def _reference_forward(net: AttentionMLP, users: torch.Tensor, items: torch.Tensor,
                       genres: torch.Tensor) -> torch.Tensor:
    """The network as first written: batch-first tokens through ``nn.MultiheadAttention``."""
    b = users.shape[0]
    pu, qi = net.user(users), net.item(items)
    present = genres > 0
    k = int(present.sum(1).max())
    order = torch.argsort((~present).to(torch.uint8), dim=1, stable=True)[:, :k]
    g = (net.genre + net.kind[2])[order]
    x = torch.cat([(pu + net.kind[0]).unsqueeze(1), (qi + net.kind[1]).unsqueeze(1), g], 1)
    absent = torch.cat([present.new_zeros(b, 2), ~torch.gather(present, 1, order)], 1)
    h, _ = net.attn(x, x, x, key_padding_mask=absent, need_weights=False)
    h = net.norm(x + h)
    score = net.pool(h).squeeze(-1).masked_fill(absent, float("-inf"))
    pooled = (torch.softmax(score, 1).unsqueeze(-1) * h).sum(1)
    return net.mlp(torch.cat([pooled, pu, qi], 1)).squeeze(-1) + net.offset


def test_attention_mlp_is_the_multihead_attention_network() -> None:
    torch.manual_seed(0)
    net = AttentionMLP(30, 50, 12).eval()
    gen = torch.Generator().manual_seed(1)
    users = torch.randint(0, 31, (300,), generator=gen)  # code 30: the padding row
    items = torch.randint(0, 51, (300,), generator=gen)
    genres = (torch.rand(300, 12, generator=gen) < 0.25).float()
    genres[0] = 0  # a movie with no genre: only the user and movie tokens
    with torch.no_grad():
        torch.testing.assert_close(net(users, items, genres),
                                   _reference_forward(net, users, items, genres),
                                   rtol=1e-5, atol=1e-6)


def test_attention_mlp_trains_as_the_multihead_attention_network() -> None:
    """Gradients too (dropout off): the row sort, the skipped padding queries and the
    kernel's prefix loops change no parameter's gradient."""
    torch.manual_seed(0)
    net = AttentionMLP(30, 50, 12, dropout=0.0).train()
    gen = torch.Generator().manual_seed(2)
    users = torch.randint(0, 31, (257,), generator=gen)
    items = torch.randint(0, 51, (257,), generator=gen)
    genres = (torch.rand(257, 12, generator=gen) < 0.25).float()
    genres[:3] = 0
    target = torch.randn(257, generator=gen)
    grads = []
    for forward in (net, lambda u, i, g: _reference_forward(net, u, i, g)):
        net.zero_grad()
        loss = ((forward(users, items, genres) - target) ** 2).mean()
        loss.backward()
        grads.append({n: p.grad.clone() for n, p in net.named_parameters()
                      if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and "attn.in_proj_weight" in grads[0]
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6,
                                   msg=name)


def test_dropout_keeps_the_expected_weight() -> None:
    """Values of 1 everywhere: each output is the sum of the kept weights, whose mean
    must stay 1 under dropout (inverted scaling), as in ``nn.MultiheadAttention``."""
    torch.manual_seed(6)
    mha = nn.MultiheadAttention(8, 2, dropout=0.5)
    with torch.no_grad():
        mha.in_proj_weight[16:] = 0.0
        mha.in_proj_bias[16:] = 1.0
        mha.out_proj.weight.copy_(torch.eye(8))
        mha.out_proj.bias.zero_()
    x = torch.randn(5, 4000, 8)
    absent = torch.zeros(5, 4000, dtype=torch.bool)
    for kernel in (True, False):
        with torch.no_grad():
            out = attend(mha, x, absent, kernel=kernel)
        assert abs(float(out.mean()) - 1.0) < 0.02
        assert float(out.std()) > 0.2  # dropout did act


def test_token_groups_are_the_fewest_tokens_split() -> None:
    """Against every split of the distinct counts into at most 2 or 3 runs."""
    import itertools
    import random

    rnd = random.Random(0)
    for _ in range(200):
        counts = sorted((rnd.randint(0, 9) for _ in range(rnd.randint(1, 40))), reverse=True)
        starts = [0] + [i for i in range(1, len(counts)) if counts[i] != counts[i - 1]]
        for groups, run_cost in itertools.product((1, 2, 3), (0, 7, 256)):
            got = token_groups(counts, groups, run_cost)
            assert got[0][0] == 0 and got[-1][1] == len(counts) and len(got) <= groups
            assert all(a[1] == b[0] for a, b in zip(got, got[1:]))
            assert all(k == counts[lo] for lo, _, k in got)
            best = min(
                sum((hi - lo) * (2 + counts[lo]) + run_cost
                    for lo, hi in zip((0, *cut), (*cut, len(counts))))
                for r in range(groups) for cut in itertools.combinations(starts[1:], r))
            assert sum((hi - lo) * (2 + k) + run_cost for lo, hi, k in got) == best
    assert token_groups([], 2) == []
    assert len(token_groups([8] * 4 + [1] * 28)) == 1  # a batch of 32: one run
    assert len(token_groups([8] * 100 + [1] * 924)) == 2
