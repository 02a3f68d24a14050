"""The three networks, as ``torch.nn.Module``s with one signature: ``net(users, items, genres)``.

``users`` and ``items`` are int64 codes; the last row of every embedding table is a zero
padding row that cold users and movies (none in training) are mapped to, so an unseen
code never reads an untrained vector. ``genres`` is the float (batch, n_genres) flag
matrix of the rows' movies. Each network returns a (batch,) prediction.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from kmrec_gpu.neural.attention import attend
from kmrec_gpu.neural.dropout import Dropout


def _embedding(n: int, dim: int, std: float | None = None, sparse: bool = False) -> nn.Embedding:
    emb = nn.Embedding(n + 1, dim, padding_idx=n, sparse=sparse)
    if std is not None:
        with torch.no_grad():
            emb.weight.normal_(0.0, std)
            emb.weight[n].zero_()
    return emb


def _mlp(sizes: Sequence[int], act: type[nn.Module], dropout: float = 0.0,
         drop: type[nn.Dropout] = nn.Dropout) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), act()]
        if dropout:
            layers.append(drop(dropout))
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


class PublishedMLP(nn.Module):
    """Seed 000 as its code runs it: [user embedding (8), genre flags] -> 64 -> 32 -> 1, ReLU.

    ``user_dim=0`` drops the embedding, which is the genre-only network of the seed's
    ``BP_predicts.py``. The movie code is not an input (the seed's network never sees it).
    """

    def __init__(self, n_users: int, n_items: int, n_genres: int, *, user_dim: int = 8,
                 hidden: Sequence[int] = (64, 32)) -> None:
        super().__init__()
        self.user_dim = user_dim
        self.user = _embedding(n_users, user_dim) if user_dim else None
        self.mlp = _mlp([n_genres + user_dim, *hidden, 1], nn.ReLU)

    def forward(self, users: torch.Tensor, items: torch.Tensor,
                genres: torch.Tensor) -> torch.Tensor:
        x = genres if self.user is None else torch.cat([self.user(users), genres], 1)
        return self.mlp(x).squeeze(-1)


def token_groups(counts: Sequence[int], max_groups: int = 2,
                 run_cost: int = 256) -> list[tuple[int, int, int]]:
    """Split rows sorted by falling genre count into at most ``max_groups`` runs
    ``(start, stop, most genres)``, the split of least cost: a run of n rows whose first
    has k genres is n·(2 + k) tokens, plus ``run_cost`` for the run itself (another pass
    of the attention block's ~20 operations, worth a few hundred tokens' work on one CPU
    thread). Padding every row to the batch's most genres made ~9,300 tokens per batch of
    1,024 on ml-latest-small, two runs ~6,100, three ~5,500; two measured fastest per
    epoch there, and a batch of 32 stays one run (at most 32·8 tokens to save)."""
    n = len(counts)
    if n == 0:
        return []
    starts = [0] + [i for i in range(1, n) if counts[i] != counts[i - 1]]

    def cost(lo: int, hi: int) -> int:
        return (hi - lo) * (2 + counts[lo]) + run_cost

    # best[g][j]: the fewest tokens for the rows from starts[j] on, in at most g runs
    m = len(starts)
    bounds = starts + [n]
    best = [[cost(bounds[j], n) for j in range(m)]]
    cut: list[list[int]] = [[m] * m]
    for _ in range(1, max_groups):
        row, rcut = [], []
        for j in range(m):
            options = [(cost(bounds[j], bounds[c]) + best[-1][c], c) for c in range(j + 1, m)]
            options.append((cost(bounds[j], n), m))
            value, c = min(options)
            row.append(value)
            rcut.append(c)
        best.append(row)
        cut.append(rcut)
    out, j, g = [], 0, max_groups - 1
    while j < m:
        c = cut[g][j]
        out.append((bounds[j], bounds[c], counts[bounds[j]]))
        j, g = c, g - 1
    return out


class AttentionMLP(nn.Module):
    """Seed 000 as its text describes it.

    Tokens: the user, the movie, and one learned token per genre the movie has. A
    multi-head self-attention block (residual + LayerNorm) mixes them; an attention layer
    (a learned score per token, softmax over the present tokens) pools them; three fully
    connected layers with LeakyReLU and dropout map [pooled, user, movie] to the
    prediction. Weight decay comes from the optimiser.

    Only present genres become tokens: each batch is packed to the most genres any of its
    movies has (8 of 20 on ml-latest-small, against 2.3 on average), present ones first in
    genre order, the rest padding that no query attends to and the pooling ignores. With no
    positional encoding the network is the same function of its inputs as with every genre
    as a (masked) token; attention costs ~(2 + k)² instead of (2 + n_genres)², about 3× less
    per batch of 1,024 on one CPU thread. Training in packed form draws its dropout masks
    for the packed shapes. The batch's rows are sorted by their count of genres (the
    output put back in the caller's order) and cut into two runs (``token_groups``), each
    packed to its own most genres; within a run each genre slot is present in a prefix of
    rows, where the attention kernel stops that slot's loops, and the padding queries,
    whose outputs the pooling weighs 0, are not computed.

    Tokens are laid out (tokens, batch, dim) and ``self.attn`` is applied by
    ``neural.attention.attend``: the module's function and parameters, computed with the
    batch innermost (a numba pass on the CPU), since torch's batch-outermost kernels spend
    most of a step on per-row overhead for 10 tokens of width 8.
    """

    def __init__(self, n_users: int, n_items: int, n_genres: int, *, dim: int = 32,
                 heads: int = 4, hidden: Sequence[int] = (128, 64),
                 dropout: float = 0.1) -> None:
        super().__init__()
        self.user = _embedding(n_users, dim, std=0.05)
        self.item = _embedding(n_items, dim, std=0.05)
        self.genre = nn.Parameter(torch.randn(n_genres, dim) * 0.05)
        self.kind = nn.Parameter(torch.zeros(3, dim))  # user / movie / genre token type
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(dim)
        self.pool = nn.Linear(dim, 1)
        self.mlp = _mlp([3 * dim, *hidden, 1], nn.LeakyReLU, dropout, Dropout)
        self.register_buffer("offset", torch.zeros(()))

    def forward(self, users: torch.Tensor, items: torch.Tensor,
                genres: torch.Tensor) -> torch.Tensor:
        present = genres > 0
        count = present.sum(1)
        # rows by falling genre count: each genre slot is then present in a prefix of the
        # rows, where the attention kernel stops its loops; the output is put back
        perm = torch.argsort(count, descending=True, stable=True)
        users, items, present = users[perm], items[perm], present[perm]
        pu = self.user(users)
        qi = self.item(items)
        count = count[perm]
        pooled = [self._attend_and_pool(pu[lo:hi], qi[lo:hi], present[lo:hi], count[lo:hi], k)
                  for lo, hi, k in token_groups(count.tolist())]
        pooled_all = torch.cat(pooled) if pooled else pu.new_zeros(0, pu.shape[1])
        out = self.mlp(torch.cat([pooled_all, pu, qi], 1)).squeeze(-1) + self.offset
        return out[torch.argsort(perm)]

    def _attend_and_pool(self, pu: torch.Tensor, qi: torch.Tensor, present: torch.Tensor,
                         count: torch.Tensor, k: int) -> torch.Tensor:
        """(B, D): the attention block and pooling over one group of rows, each with at
        most ``k`` genres, as 2 + k tokens."""
        b = pu.shape[0]
        # a stable sort of the absent flags puts each row's present genres first, in order
        order = torch.argsort((~present).to(torch.uint8), dim=1, stable=True)[:, :k].T
        # token-major (T, B, D): attention and pooling then run with the batch innermost
        # an embedding lookup: its backward sums rows (an index gather's scatter-adds
        # elements, several times slower here)
        g = nn.functional.embedding(order, self.genre + self.kind[2])
        x = torch.cat([(pu + self.kind[0]).unsqueeze(0), (qi + self.kind[1]).unsqueeze(0), g])
        # each row's present genres come first: slot j is absent where the row has <= j
        slots = torch.arange(k, device=count.device).unsqueeze(1)
        absent = torch.cat([present.new_zeros(2, b), slots >= count.unsqueeze(0)])
        # padding slots' outputs are pooled with weight 0: they are not computed
        h = self.norm(x + attend(self.attn, x, absent, mask_queries=True))
        score = self.pool(h).squeeze(-1).masked_fill(absent, float("-inf"))
        return (torch.softmax(score, 0).unsqueeze(-1) * h).sum(0)


class HybridNet(nn.Module):
    """Seed 003's hybrid: a matrix-factorisation term plus an MLP, summed into one rating.

    ``mu + b_u + b_i + p_u . q_i`` (the MF term) plus ``MLP([user', movie', genres])`` with
    separate embeddings for the MLP, as neural collaborative filtering keeps them.

    ``sparse``: the six embedding tables produce sparse gradients (only the batch's rows),
    which the estimator updates with ``SparseAdam``; a dense Adam step would read and write
    every row of every table (and its two moments) each batch, which at batch 32 is most of
    an epoch.
    """

    def __init__(self, n_users: int, n_items: int, n_genres: int, *, mf_dim: int = 32,
                 mlp_dim: int = 16, hidden: Sequence[int] = (64, 32),
                 dropout: float = 0.0, sparse: bool = False) -> None:
        super().__init__()
        self.p = _embedding(n_users, mf_dim, std=0.01, sparse=sparse)
        self.q = _embedding(n_items, mf_dim, std=0.01, sparse=sparse)
        self.bu = _embedding(n_users, 1, std=0.0, sparse=sparse)
        self.bi = _embedding(n_items, 1, std=0.0, sparse=sparse)
        self.mlp_user = _embedding(n_users, mlp_dim, std=0.05, sparse=sparse)
        self.mlp_item = _embedding(n_items, mlp_dim, std=0.05, sparse=sparse)
        self.mlp = _mlp([2 * mlp_dim + n_genres, *hidden, 1], nn.ReLU, dropout)
        self.register_buffer("offset", torch.zeros(()))

    def forward(self, users: torch.Tensor, items: torch.Tensor,
                genres: torch.Tensor) -> torch.Tensor:
        mf = (self.p(users) * self.q(items)).sum(-1)
        mf = mf + self.bu(users).squeeze(-1) + self.bi(items).squeeze(-1)
        z = torch.cat([self.mlp_user(users), self.mlp_item(items), genres], 1)
        return self.offset + mf + self.mlp(z).squeeze(-1)
