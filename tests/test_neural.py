"""The neural models (kmrec_gpu.neural): seed 000's adjusted target, the three networks,
their estimators (determinism, leakage, save/load, early stopping, cold codes, errors)."""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import re

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from kmrec_gpu.errors import BackendUnavailable, MalformedInput
from kmrec_gpu.leakage import assert_no_leakage, fit_predict_estimator
from kmrec_gpu.metrics import rmse
from kmrec_gpu.models.baseline import GlobalMean
from kmrec_gpu.neural import (
    ESTIMATORS,
    SEED000_GENRES,
    AttentionMLP000,
    HybridNN003,
    NeuralRegressor,
    PublishedMLP000,
    adjusted_target,
    adjusted_values,
)
from kmrec_gpu.neural.estimators import MODEL_FORMAT, SparseDenseAdam, genre_columns
from kmrec_gpu.neural.nets import AttentionMLP, HybridNet, PublishedMLP
from kmrec_gpu.ratings import Ratings, RatingScale, Tags, from_arrays
from kmrec_gpu.splits import holdout

HALF_STARS = RatingScale(0.5, 5.0, 0.5)
NAMES = ("Action", "Comedy", "Drama", "Horror")


# -- small synthetic data ---------------------------------------------------------------------


def synth(n_users=30, n_items=20, n_ratings=300, *, seed=0, noise=0.3, cold_users=0,
          cold_items=0) -> Ratings:
    """Ratings = 3 + user bias + genre effects + noise, on the half-star scale; item 0 has
    no genre flag. ``cold_users`` extra user codes and the last ``cold_items`` items of the
    vocabulary have no rating at all."""
    g = np.random.default_rng(seed)
    flags = g.random((n_items, len(NAMES))) < 0.4
    flags[0] = False
    rated_items = n_items - cold_items
    pairs = g.choice(n_users * rated_items, n_ratings, replace=False)
    u, i = np.divmod(pairs, rated_items)
    val = (3.0 + g.normal(0, 0.8, n_users)[u]
           + flags[i].astype(float) @ g.normal(0, 0.8, len(NAMES)) + g.normal(0, noise, len(u)))
    r = from_arrays(u, i, HALF_STARS.snap(val), scale=HALF_STARS, name="synth",
                    item_vocab=np.arange(n_items), genres=flags, genre_names=NAMES)
    assert r.n_users == n_users  # every user of the pool got a rating
    if cold_users:
        r = dataclasses.replace(r, user_ids=np.arange(n_users + cold_users))
    return r


# small networks and few epochs; the two with early stopping by default keep it on
SMALL = {
    PublishedMLP000: dict(genres="all", hidden=(16, 8), epochs=3, batch_size=32),
    AttentionMLP000: dict(dim=8, heads=2, hidden=(16, 8), epochs=3, batch_size=64,
                          patience=1, valid_fraction=0.2),
    HybridNN003: dict(mf_dim=4, mlp_dim=4, hidden=(16, 8), epochs=3, batch_size=64,
                      patience=1, valid_fraction=0.2),
}
ALL = pytest.mark.parametrize("cls", list(SMALL), ids=lambda c: c.__name__)


def make(cls, **over) -> NeuralRegressor:
    return cls(**{"device": "cpu", **SMALL[cls], **over})


# -- 1. seed 000's adjusted target ------------------------------------------------------------

# (user, item, rating, tag applications of that user on that movie, expected adjusted value)
ADJUST_CASES = [
    (0, 0, 4.0, 0, 4.0),   # no tags: the rating
    (0, 1, 3.0, 2, 4.0),   # >= 3 with 2 tags: 3 + 0.5 * 2
    (0, 2, 4.0, 3, 5.5),   # >= 3 with 3 tags: 4 + 0.5 * 3
    (1, 0, 5.0, 1, 5.0),   # >= 3 with exactly 1 tag: unchanged
    (1, 1, 1.0, 1, 0.0),   # tagged 1.0: zero
    (1, 2, 0.5, 2, 0.0),   # tagged 0.5: zero
    (2, 0, 1.0, 0, 1.0),   # 1.0 without tags: unchanged, not zero
    (2, 1, 2.0, 3, 2.0),   # 2.0 with 3 tags: unchanged
    (2, 2, 3.5, 4, 5.5),   # 3.5 + 0.5 * 4
    (3, 3, 2.5, 1, 2.5),   # between 1 and 3, tagged: unchanged
    (3, 4, 1.5, 2, 1.5),   # 1.5 with 2 tags: unchanged (neither rule)
]
# tag applications on pairs nobody rated: user 3 on movie 0, user 0 on movie 4
UNRATED_TAGS = [(3, 0), (3, 0), (0, 4)]


def tagged_ratings(scale: RatingScale = HALF_STARS) -> Ratings:
    users, items, vals, _, _ = (np.array(c) for c in zip(*ADJUST_CASES))
    tag_pairs = [(u, i) for u, i, _, n, _ in ADJUST_CASES for _ in range(n)] + UNRATED_TAGS
    order = np.random.default_rng(0).permutation(len(tag_pairs))  # applications unsorted
    tu = np.array([tag_pairs[k][0] for k in order], dtype=np.int32)
    ti = np.array([tag_pairs[k][1] for k in order], dtype=np.int32)
    tags = Tags(tu, ti, np.array([f"tag{k}" for k in range(len(order))], dtype=object))
    flags = np.zeros((5, len(NAMES)), bool)
    flags[0, 0] = flags[2, 1:3] = True
    return Ratings(users=users.astype(np.int32), items=items.astype(np.int32),
                   ratings=vals.astype(np.float32), timestamps=None,
                   user_ids=np.array([10, 20, 30, 40]), item_ids=np.array([1, 2, 3, 4, 5]),
                   scale=scale, name="hand", genres=flags, genre_names=NAMES, tags=tags,
                   meta={"origin": "test"}).validate()


def test_adjusted_values_follow_the_rule_row_by_row():
    ratings = np.array([c[2] for c in ADJUST_CASES])
    counts = np.array([c[3] for c in ADJUST_CASES])
    want = np.array([c[4] for c in ADJUST_CASES])
    got = adjusted_values(ratings, counts)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, want)
    # the boundary of the bonus rule: exactly 3 with 2 tags gets it, 2.5 with 5 does not
    np.testing.assert_array_equal(adjusted_values(np.array([3.0, 2.5, 3.0]),
                                                  np.array([2, 5, 0])), [4.0, 2.5, 3.0])
    with pytest.raises(ValueError, match="shape"):
        adjusted_values(np.ones(3), np.ones(2, dtype=np.int64))
    with pytest.raises(ValueError, match="non-negative integers"):
        adjusted_values(np.ones(2), np.array([1, -1]))
    with pytest.raises(ValueError, match="non-negative integers"):
        adjusted_values(np.ones(2), np.array([1.0, 2.0]))


def test_adjusted_target_on_hand_made_ratings_and_tags():
    r = tagged_ratings()
    before = r.ratings.copy()
    np.testing.assert_array_equal(r.tag_counts(), [c[3] for c in ADJUST_CASES])
    a = adjusted_target(r)
    np.testing.assert_array_equal(a.ratings, np.array([c[4] for c in ADJUST_CASES], np.float32))
    assert a.ratings.dtype == np.float32
    assert a.scale == RatingScale(0.0, 5.5, 0.5)
    assert a.scale.minimum == 0.0 and a.scale.maximum == float(a.ratings.max())
    assert a.meta["target"] == "adjusted" and a.meta["origin"] == "test"
    assert a.name == "hand+adjusted"
    np.testing.assert_array_equal(a.users, r.users)
    np.testing.assert_array_equal(a.items, r.items)
    np.testing.assert_array_equal(a.user_ids, r.user_ids)
    np.testing.assert_array_equal(a.item_ids, r.item_ids)
    np.testing.assert_array_equal(a.genres, r.genres)
    assert a.tags is r.tags
    a.validate()  # every value lies on the new scale's grid
    np.testing.assert_array_equal(r.ratings, before)  # the source is left alone
    assert "target" not in r.meta


def test_adjusted_target_scale_on_a_whole_star_source():
    # ml-100k's grid (1..5 by 1): a bonus of 1.0 (2 tags) stays on it, 1.5 (3 tags) does not
    whole = RatingScale(1.0, 5.0, 1.0)

    def one(rating, n_tags):
        tags = Tags(np.zeros(n_tags, np.int32), np.zeros(n_tags, np.int32),
                    np.array(["t"] * n_tags, dtype=object))
        return Ratings(users=np.array([0, 1], np.int32), items=np.array([0, 0], np.int32),
                       ratings=np.array([rating, 2.0], np.float32), timestamps=None,
                       user_ids=np.array([1, 2]), item_ids=np.array([1]), scale=whole,
                       tags=tags)

    a = adjusted_target(one(4.0, 2))
    np.testing.assert_array_equal(a.ratings, [5.0, 2.0])
    assert a.scale == whole
    b = adjusted_target(one(4.0, 3))
    np.testing.assert_array_equal(b.ratings, [5.5, 2.0])
    assert b.scale == RatingScale(1.0, 5.5, 0.5)
    c = adjusted_target(one(1.0, 1))  # a zero below the source's minimum of 1
    np.testing.assert_array_equal(c.ratings, [0.0, 2.0])
    assert c.scale == RatingScale(0.0, 5.0, 1.0)
    for x in (a, b, c):
        x.validate()


@pytest.mark.data
def test_adjusted_target_on_ml_latest_small(ml_small):
    a = adjusted_target(ml_small)
    assert float(a.ratings.max()) == 91.5
    assert int((a.ratings > 5).sum()) == 317
    assert int((a.ratings == 0).sum()) == 28
    assert a.scale == RatingScale(0.0, 91.5, 0.5)
    a.validate()
    # seed 000's 19 columns are ml-latest-small's genres without IMAX
    assert set(genre_columns(ml_small, "seed000")) == set(ml_small.genre_names) - {"IMAX"}


@pytest.mark.data
def test_adjusted_target_on_ml100k_is_the_rating(ml100k):
    assert ml100k.tags is None
    a = adjusted_target(ml100k)
    np.testing.assert_array_equal(a.ratings, ml100k.ratings)
    assert a.scale == ml100k.scale and a.meta["target"] == "adjusted"
    # seed 000's genre columns are not all there: the default model names what is missing
    with pytest.raises(ValueError, match=r"Children.*\(no genres listed\)"):
        PublishedMLP000(device="cpu").fit(ml100k)


# -- 2. the networks --------------------------------------------------------------------------

NETS = [
    pytest.param(PublishedMLP, dict(user_dim=8), id="published"),
    pytest.param(PublishedMLP, dict(user_dim=0), id="published-genre-only"),
    pytest.param(AttentionMLP, dict(dim=8, heads=2, hidden=(16, 8)), id="attention"),
    pytest.param(HybridNet, dict(mf_dim=4, mlp_dim=4, hidden=(8,)), id="hybrid"),
]
N_U, N_I, N_G = 7, 5, 3


def net_inputs(batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    users = torch.randint(0, N_U + 1, (batch,), generator=g)  # N_U: the padding code
    items = torch.randint(0, N_I + 1, (batch,), generator=g)
    genres = (torch.rand(batch, N_G, generator=g) < 0.5).float()
    return users, items, genres


@pytest.mark.parametrize("net_class, kw", NETS)
@pytest.mark.parametrize("batch", [1, 6])
def test_networks_return_one_value_per_row(net_class, kw, batch):
    torch.manual_seed(0)
    net = net_class(N_U, N_I, N_G, **kw)
    u, i, g = net_inputs(batch)
    for mode in ("train", "eval"):
        getattr(net, mode)()
        out = net(u, i, g)
        assert out.shape == (batch,) and out.dtype == torch.float32
        assert torch.isfinite(out).all()
    out.sum().backward()  # differentiable end to end


@pytest.mark.parametrize("net_class, kw", NETS)
def test_padding_rows_are_zero(net_class, kw):
    torch.manual_seed(1)
    net = net_class(N_U, N_I, N_G, **kw)
    embeddings = [m for m in net.modules() if isinstance(m, torch.nn.Embedding)]
    assert len(embeddings) == {"published": 1, "published-genre-only": 0, "attention": 2,
                               "hybrid": 6}[_id(net_class, kw)]
    for e in embeddings:
        assert e.padding_idx == e.num_embeddings - 1 and e.padding_idx in (N_U, N_I)
        assert not e.weight[e.padding_idx].any()
        assert e.weight[:-1].abs().sum() > 0 or e.embedding_dim == 1  # biases start at 0


def _id(net_class, kw) -> str:
    if net_class is PublishedMLP:
        return "published" if kw["user_dim"] else "published-genre-only"
    return {AttentionMLP: "attention", HybridNet: "hybrid"}[net_class]


def test_published_mlp_reads_user_and_genres_but_not_the_movie():
    torch.manual_seed(2)
    net = PublishedMLP(N_U, N_I, N_G).eval()
    u, i, g = net_inputs(6)
    torch.testing.assert_close(net(u, i, g), net(u, (i + 1) % N_I, g), rtol=0, atol=0)
    assert not torch.equal(net(u, i, g), net((u + 1) % N_U, i, g))
    genre_only = PublishedMLP(N_U, N_I, N_G, user_dim=0).eval()
    assert genre_only.user is None
    torch.testing.assert_close(genre_only(u, i, g), genre_only((u + 3) % N_U, i, g),
                               rtol=0, atol=0)


def test_attention_mlp_with_a_movie_without_genres_is_finite_and_ignores_absent_genres():
    torch.manual_seed(3)
    net = AttentionMLP(N_U, N_I, N_G, dim=8, heads=2, hidden=(16, 8))
    users = torch.tensor([0, 1, N_U, N_U, 2])
    items = torch.tensor([0, 1, N_I, 2, 3])
    genres = torch.tensor([[0, 0, 0], [1, 1, 1], [0, 0, 0], [0, 1, 0], [1, 0, 0]],
                          dtype=torch.float32)
    net.train()
    out = net(users, items, genres)
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    net.eval()
    with torch.no_grad():
        before = net(users, items, genres)
        one = net(users[:1], items[:1], genres[:1])  # batch of one, no genre
        assert torch.isfinite(before).all() and torch.isfinite(one).all()
        torch.testing.assert_close(one, before[:1])
        # genre 2 is absent from every row but the second: moving its token changes only it
        net.genre[2] += 1.0
        after = net(users, items, genres)
    keep = torch.tensor([True, False, True, True, True])
    torch.testing.assert_close(after[keep], before[keep], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(after[1], before[1])


def test_attention_mlp_packs_present_genres_into_the_same_function():
    # the unpacked network: every genre a token, absent ones masked as keys and in pooling
    def unpacked(net, users, items, genres):
        b = users.shape[0]
        pu, qi = net.user(users), net.item(items)
        g = (net.genre + net.kind[2]).unsqueeze(0).expand(b, -1, -1)
        x = torch.cat([(pu + net.kind[0]).unsqueeze(1), (qi + net.kind[1]).unsqueeze(1), g], 1)
        absent = torch.cat([genres.new_zeros(b, 2, dtype=torch.bool), genres <= 0], 1)
        h, _ = net.attn(x, x, x, key_padding_mask=absent, need_weights=False)
        h = net.norm(x + h)
        score = net.pool(h).squeeze(-1).masked_fill(absent, float("-inf"))
        pooled = (torch.softmax(score, 1).unsqueeze(-1) * h).sum(1)
        return net.mlp(torch.cat([pooled, pu, qi], 1)).squeeze(-1) + net.offset

    torch.manual_seed(5)
    n_g = 7
    net = AttentionMLP(N_U, N_I, n_g, dim=8, heads=2, hidden=(16, 8)).eval()
    users, items = torch.randint(0, N_U, (64,)), torch.randint(0, N_I, (64,))
    genres = (torch.rand(64, n_g) < 0.3).float()
    genres[:, -1] = 0.0  # no movie has the last genre: the batch packs to fewer tokens
    genres[0] = 0.0  # no genre
    with torch.no_grad():
        net.genre.normal_()  # distinct genre tokens, so a wrong gather would show
        assert int(genres.sum(1).max()) < n_g
        want = unpacked(net, users, items, genres)
        torch.testing.assert_close(net(users, items, genres), want, rtol=1e-5, atol=1e-6)
        every = genres.clone()
        every[1] = 1.0
        torch.testing.assert_close(net(users, items, every), unpacked(net, users, items, every),
                                   rtol=1e-5, atol=1e-6)
        # a batch where no movie has a genre packs to the user and movie tokens alone
        none = torch.zeros(3, n_g)
        torch.testing.assert_close(net(users[:3], items[:3], none),
                                   unpacked(net, users[:3], items[:3], none),
                                   rtol=1e-5, atol=1e-6)


def _one_step(est, net, users, items):
    opt = est._optimizer(net)
    genres = torch.zeros(users.shape[0], N_G)
    loss = ((net(users, items, genres) - 4.0) ** 2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return opt


def test_hybrid_sparse_embeddings_step_only_the_batch_rows_lazily():
    torch.manual_seed(0)
    est = HybridNN003(lr=0.05, mf_dim=4, mlp_dim=4, hidden=(8,))
    nets = {}
    for sparse in (True, False):
        torch.manual_seed(0)
        nets[sparse] = HybridNet(N_U, N_I, N_G, mf_dim=4, mlp_dim=4, hidden=(8,), sparse=sparse)
    a, b = torch.tensor([0, 1]), torch.tensor([2, 3])
    opts = {}
    after_first_sparse = None
    for sparse, net in nets.items():
        opts[sparse] = est._optimizer(net)
        for users in (a, b):  # user 0 is in the first batch only
            genres = torch.zeros(2, N_G)
            loss = ((net(users, users, genres) - 4.0) ** 2).mean()
            opts[sparse].zero_grad(set_to_none=True)
            loss.backward()
            assert net.p.weight.grad.is_sparse is sparse
            opts[sparse].step()
            if users is a:  # Adam's first step is the same dense or lazy
                first = {s: n.p.weight.detach().clone() for s, n in nets.items() if s is sparse}
                if sparse is False:
                    torch.testing.assert_close(first[False], after_first_sparse)
                else:
                    after_first_sparse = first[True]
    # second step: the lazy update leaves user 0's row where the first step put it, the
    # dense one moves it by its momentum; the batch's rows move in both
    torch.testing.assert_close(nets[True].p.weight[0], after_first_sparse[0], rtol=0, atol=0)
    assert not torch.allclose(nets[False].p.weight[0], after_first_sparse[0])
    assert not torch.allclose(nets[True].p.weight[2], after_first_sparse[2])
    assert isinstance(opts[True], SparseDenseAdam) and len(opts[True].param_groups) == 2
    assert isinstance(opts[False], torch.optim.Adam)


@pytest.mark.parametrize("batch_size, sparse", [(15, True), (16, False)])
def test_hybrid_auto_is_sparse_only_for_tables_much_larger_than_a_batch(batch_size, sparse):
    r = synth(n_users=600, n_items=424, n_ratings=6000)  # 1,024 rows: the boundary is 64 x 16
    m = make(HybridNN003, epochs=1, batch_size=batch_size, patience=None).fit(r)
    assert m.sparse == "auto"
    assert m.net_.p.sparse is sparse and m.net_.mlp_item.sparse is sparse
    with pytest.raises(ValueError, match="sparse must be True, False or 'auto'"):
        make(HybridNN003, epochs=1, sparse="yes").fit(r)


def test_hybrid_sparse_refuses_weight_decay_and_keeps_lr_zero_still():
    torch.manual_seed(0)
    net = HybridNet(N_U, N_I, N_G, mf_dim=4, mlp_dim=4, hidden=(8,), sparse=True)
    with pytest.raises(ValueError, match="SparseAdam, which has no weight decay"):
        HybridNN003(weight_decay=1e-3)._optimizer(net)
    before = [p.detach().clone() for p in net.parameters()]
    _one_step(HybridNN003(lr=0.0), net, torch.tensor([0, 1]), torch.tensor([0, 1]))
    assert all(torch.equal(p, q) for p, q in zip(before, net.parameters()))


# -- 3. determinism ---------------------------------------------------------------------------


@ALL
def test_same_seed_same_predictions_other_seed_other_ones(cls):
    r = synth(seed=1)
    s = holdout(r, 0.2, seed=0)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = make(cls, random_state=5).fit(s.train)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is untouched
    torch.manual_seed(456)  # and the global RNG does not steer the fit
    b = make(cls, random_state=5).fit(s.train)
    c = make(cls, random_state=6).fit(s.train)
    pa, pb, pc = (m.predict(s.test) for m in (a, b, c))
    np.testing.assert_array_equal(pa, pb)
    assert a.history_.as_dict() == {**b.history_.as_dict(), "epoch_s": a.history_.epoch_s}
    assert not np.allclose(pa, pc)


# -- 4. leakage -------------------------------------------------------------------------------


@ALL
def test_no_leakage(cls):
    s = holdout(synth(seed=2), 0.2, seed=0)
    made = []

    def factory():
        made.append(make(cls, epochs=2))
        return made[-1]

    rep = assert_no_leakage(fit_predict_estimator(factory), s)
    assert rep.n_rows == len(s.test) and rep.n_changed_ratings == len(s.test)
    m = made[-1]
    if m.patience is not None:  # the validation rows were carved out of train
        assert m.n_valid_ == round(0.2 * len(s.train)) and m.n_train_ + m.n_valid_ == len(s.train)
        assert len(m.history_.valid_rmse) == len(m.history_.train_loss) >= 1
    else:
        assert m.n_valid_ == 0 and m.n_train_ == len(s.train) and m.history_.valid_rmse == []


# -- 5. save and load -------------------------------------------------------------------------


def _meta(path):
    """The JSON metadata of a saved model."""
    with safe_open(path, framework="pt") as f:
        return f.metadata()[MODEL_FORMAT]


def _rewrite_meta(src, dst, **changes):
    """A copy of saved model ``src`` at ``dst`` with keys of its JSON metadata changed."""
    with safe_open(src, framework="pt") as f:
        meta = json.loads(f.metadata()[MODEL_FORMAT])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, dst, metadata={MODEL_FORMAT: json.dumps({**meta, **changes})})
    return dst


@ALL
def test_save_load_round_trip(cls, tmp_path):
    r = synth(seed=3, cold_users=2, cold_items=2)
    m = make(cls).fit(r)
    path = m.save(tmp_path / "m.pt")
    assert path == tmp_path / "m.pt"
    assert os.listdir(tmp_path) == ["m.pt"]  # no temporary file left behind
    assert json.loads(_meta(path))["class"] == cls.__name__  # tensors + JSON, no pickle
    back = NeuralRegressor.load(path, device="cpu")
    assert type(back) is cls
    users, items = np.meshgrid(np.arange(r.n_users), np.arange(r.n_items), indexing="ij")
    users, items = users.ravel(), items.ravel()  # every pair, cold codes included
    np.testing.assert_array_equal(back.predict_pairs(users, items), m.predict_pairs(users, items))
    np.testing.assert_array_equal(back.predict(r), m.predict(r))
    p_m, p_b = m.get_params(), back.get_params()
    assert p_b.pop("device") == "cpu"
    p_m.pop("device")
    assert p_b == p_m
    assert back.history_.as_dict() == m.history_.as_dict()
    assert (back.n_train_, back.n_valid_) == (m.n_train_, m.n_valid_)
    assert back.genre_names_ == m.genre_names_ and back.scale_ == m.scale_
    assert back.device_ == torch.device("cpu")
    np.testing.assert_array_equal(back.seen_users_, m.seen_users_)
    # saving again over the file, into a new folder, still leaves one file each
    m.save(tmp_path / "m.pt")
    m.save(tmp_path / "sub" / "m.pt")
    assert sorted(os.listdir(tmp_path)) == ["m.pt", "sub"]
    assert os.listdir(tmp_path / "sub") == ["m.pt"]


@pytest.mark.parametrize("name", ["NotAModel", "NeuralRegressor", "os.system", None,
                                  "kmrec_gpu.neural.estimators.HybridNN003", ["HybridNN003"]])
def test_load_rebuilds_only_the_allowed_classes(tmp_path, name):
    m = make(PublishedMLP000, epochs=1).fit(synth(seed=4))
    bad = _rewrite_meta(m.save(tmp_path / "m.pt"), tmp_path / "bad.pt", **{"class": name})
    with pytest.raises(MalformedInput, match=re.escape(f"{bad}: class {name!r} is not one of")):
        NeuralRegressor.load(bad, device="cpu")
    assert set(ESTIMATORS) == {"PublishedMLP000", "AttentionMLP000", "HybridNN003"}


def test_save_needs_a_fit(tmp_path):
    with pytest.raises(RuntimeError, match="not fitted"):
        make(HybridNN003).save(tmp_path / "x.pt")
    assert os.listdir(tmp_path) == []


class _Payload:
    """Unpickling this creates folder ``marker``: what a crafted model file could run."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("how", ["pickle", "torch.save", "torch.save legacy"])
def test_load_never_unpickles(tmp_path, how):
    marker = tmp_path / "pwned"
    bad = tmp_path / "bad.pt"
    state = {"class": "PublishedMLP000", "params": _Payload(marker)}
    if how == "pickle":
        bad.write_bytes(pickle.dumps(state))
    else:
        torch.save(state, bad, _use_new_zipfile_serialization=how == "torch.save")
    with pytest.raises(MalformedInput, match=re.escape(str(bad)) + ": not a kmrec model file"
                       ".*expected a model written by NeuralRegressor.save"):
        NeuralRegressor.load(bad, device="cpu")
    assert not marker.exists()
    # the payload is live: unpickling the file (what load did before) runs it
    if how == "pickle":
        pickle.loads(bad.read_bytes())
    else:
        torch.load(bad, weights_only=False)
    assert marker.exists()


def test_load_refuses_truncated_foreign_and_inconsistent_files(tmp_path):
    m = make(HybridNN003, epochs=1).fit(synth(seed=4))
    data = m.save(tmp_path / "m.pt").read_bytes()
    cases = {"short.pt": data[: len(data) // 2], "header.pt": data[:6], "empty.pt": b"",
             "text.pt": b"user_id,movie_id\n1,2\n"}
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
    save_file({"w": torch.zeros(2)}, tmp_path / "plain.pt")  # safetensors, not ours
    for name in [*cases, "plain.pt"]:
        with pytest.raises(MalformedInput, match=re.escape(str(tmp_path / name))
                           + ": not a kmrec model file"):
            NeuralRegressor.load(tmp_path / name, device="cpu")
    # well-formed, but its parts do not fit together
    odd = _rewrite_meta(tmp_path / "m.pt", tmp_path / "odd.pt",
                        fitted={**json.loads(_meta(tmp_path / "m.pt"))["fitted"], "n_users": 3})
    with pytest.raises(MalformedInput, match=re.escape(str(odd)) + ": inconsistent HybridNN003"):
        NeuralRegressor.load(odd, device="cpu")


# -- 6. training learns -----------------------------------------------------------------------


@pytest.mark.parametrize("cls, kw", [
    (PublishedMLP000, dict(epochs=15, lr=3e-3)),
    (HybridNN003, dict(epochs=25, patience=None, batch_size=32, lr=5e-3)),
], ids=["published", "hybrid"])
def test_short_training_lowers_the_loss_and_beats_the_global_mean(cls, kw):
    s = holdout(synth(40, 25, 600, seed=5, noise=0.2), 0.2, seed=0)
    m = make(cls, **kw).fit(s.train)
    loss = m.history_.train_loss
    assert len(loss) == kw["epochs"] and loss[-1] < 0.5 * loss[0]
    y = s.test.ratings
    e_model = rmse(y, m.predict(s.test))
    e_mean = rmse(y, GlobalMean().fit(s.train).predict(s.test))
    assert e_model < 0.8 * e_mean


@pytest.mark.parametrize("batch_size", [7, 10_000], ids=["ragged-batches", "one-batch"])
def test_train_loss_is_the_mean_squared_error_over_every_row(batch_size):
    # lr=0: the weights stay the initial ones, so the epoch's recorded loss must be the
    # plain MSE of the final predictions over all training rows (partial batch included)
    r = synth(seed=12)
    m = make(HybridNN003, lr=0.0, epochs=2, batch_size=batch_size, patience=None,
             clip=False).fit(r)
    mse = float(np.mean((m.predict(r) - r.ratings.astype(np.float64)) ** 2))
    assert m.history_.train_loss == pytest.approx([mse, mse], rel=1e-5)


def test_clip_bounds_predictions_to_the_training_scale():
    r = synth(seed=13)
    raw = make(HybridNN003, epochs=1, patience=None, clip=False).fit(r)
    clipped = make(HybridNN003, epochs=1, patience=None, clip=True).fit(r)
    np.testing.assert_array_equal(clipped.predict(r), np.clip(raw.predict(r), 0.5, 5.0))
    for shift, bound in ((+100.0, 5.0), (-200.0, 0.5)):  # push every prediction off the scale
        for m in (raw, clipped):
            with torch.no_grad():
                m.net_.offset += shift
        assert (clipped.predict(r) == bound).all()
        assert (np.abs(raw.predict(r) - bound) > 50).all()


# -- 7. early stopping ------------------------------------------------------------------------


def test_early_stopping_restores_the_best_epoch():
    r = synth(40, 25, 600, seed=6, noise=0.6)
    s = holdout(r, 0.25, seed=1)
    # a wide, unregularised hybrid overfits 450 noisy ratings within a few epochs
    kw = dict(mf_dim=32, mlp_dim=16, hidden=(64, 32), batch_size=64, lr=5e-3, patience=1,
              clip=False)
    m = make(HybridNN003, epochs=60, **kw).fit(s.train, s.test)
    h = m.history_
    v = np.array(h.valid_rmse)
    assert h.stopped_early and len(v) < 60
    assert 2 <= h.best_epoch == int(np.argmin(v)) + 1 < len(v)  # not just the first
    assert len(v) == h.best_epoch + 1 == len(h.train_loss) == len(h.epoch_s)  # patience 1
    assert m.n_valid_ == len(s.test) and m.n_train_ == len(s.train)
    assert rmse(s.test.ratings, m.predict(s.test)) == pytest.approx(v.min(), abs=1e-5)
    # the same run without a validation set trains every epoch and ends elsewhere
    full = make(HybridNN003, epochs=len(v), valid_fraction=0.0, **kw).fit(s.train)
    assert full.history_.best_epoch == 0 and not full.history_.stopped_early
    assert full.history_.valid_rmse == [] and full.n_valid_ == 0
    np.testing.assert_allclose(full.history_.train_loss, h.train_loss, rtol=1e-5)
    # its weights are the last epoch's, whose validation RMSE the stopped run recorded
    assert rmse(s.test.ratings, full.predict(s.test)) == pytest.approx(v[-1], abs=1e-5)
    assert v[-1] > v.min()


def test_early_stopping_judges_the_clipped_predictions():
    """With ``clip`` on, the watched validation RMSE is that of the clipped predictions,
    so the restored model's own validation RMSE equals the recorded minimum."""
    r = synth(40, 25, 600, seed=6, noise=0.6)
    s = holdout(r, 0.25, seed=1)
    m = make(HybridNN003, epochs=8, mf_dim=32, mlp_dim=16, hidden=(64, 32), batch_size=64,
             lr=5e-3, patience=2, clip=True).fit(s.train, s.test)
    assert rmse(s.test.ratings, m.predict(s.test)) == pytest.approx(min(m.history_.valid_rmse),
                                                                    abs=1e-5)


def test_valid_and_pairs_are_checked():
    r = synth(seed=3)
    with pytest.raises(ValueError, match="vocabularies"):
        make(HybridNN003).fit(r, synth(10, 5, 40, seed=4))
    m = make(HybridNN003, epochs=1).fit(r)
    with pytest.raises(ValueError, match="one shape"):
        m.predict_pairs(np.array([0, 1]), np.array([0]))


def test_auto_device_follows_the_cuda_probe(no_cuda):
    """The estimators ask kmrec_gpu.backends for CUDA, so the probe's answer decides."""
    r = synth(seed=12)
    assert make(PublishedMLP000, device="auto", epochs=1).fit(r).device_ == torch.device("cpu")
    with pytest.raises(BackendUnavailable):
        make(PublishedMLP000, device="cuda").fit(r)


# -- 8. cold users and movies -----------------------------------------------------------------


@ALL
def test_cold_codes_map_to_the_padding_rows(cls):
    r = synth(seed=7, cold_users=2, cold_items=2)
    m = make(cls, patience=None).fit(r)
    n_u, n_i = r.n_users, r.n_items
    assert m.seen_users_.sum() == n_u - 2 and not m.seen_users_[-2:].any()
    assert m.seen_items_.sum() == n_i - 2 and not m.seen_items_[-2:].any()
    # two cold users on one movie, two cold movies for one user: the same prediction
    p = m.predict_pairs(np.array([n_u - 2, n_u - 1, 3, 3, n_u - 1]),
                        np.array([5, 5, n_i - 2, n_i - 1, n_i - 1]))
    assert p[0] == p[1] and p[2] == p[3]
    assert np.isfinite(p).all()
    # warm users are told apart (the mapping is not everyone-to-padding)
    warm = m.predict_pairs(np.array([0, 1, 2]), np.array([5, 5, 5]))
    assert len(set(warm.tolist())) > 1
    # training never moved the padding rows
    for e in m.net_.modules():
        if isinstance(e, torch.nn.Embedding):
            assert not e.weight[e.padding_idx].any()
    with pytest.raises(ValueError, match=r"user codes must lie in \[0, 32\)"):
        m.predict_pairs(np.array([n_u]), np.array([0]))
    with pytest.raises(ValueError, match="item codes"):
        m.predict_pairs(np.array([0]), np.array([-1]))


# -- 9. errors --------------------------------------------------------------------------------


def test_predict_before_fit_and_bad_parameters():
    r = synth(seed=8)
    for cls in SMALL:
        with pytest.raises(RuntimeError, match="not fitted"):
            make(cls).predict(r)
        with pytest.raises(RuntimeError, match="not fitted"):
            make(cls).predict_pairs(np.array([0]), np.array([0]))
        with pytest.raises(TypeError):
            cls(device="cpu", nope=1)
        with pytest.raises(ValueError, match="Invalid parameter 'nope'"):
            make(cls).set_params(nope=1)
        with pytest.raises(ValueError, match="Invalid parameter 'net_'"):
            make(cls).set_params(net_=None)
    assert make(HybridNN003).set_params(lr=0.5).get_params()["lr"] == 0.5
    with pytest.raises(ValueError, match="optimizer"):
        make(PublishedMLP000, optimizer="sgd").fit(r)
    with pytest.raises(ValueError, match="device must be"):
        make(PublishedMLP000, device="tpu").fit(r)
    with pytest.raises(ValueError, match="empty"):
        make(PublishedMLP000).fit(r.subset(np.zeros(len(r), bool)))
    with pytest.raises(TypeError, match="Ratings"):
        make(PublishedMLP000).fit(r.to_frame())
    m = make(PublishedMLP000, epochs=1).fit(r)
    with pytest.raises(ValueError, match="vocabularies"):
        m.predict(synth(10, 20, 100, seed=8))


def test_unknown_genres_are_named():
    r = synth(seed=9)
    with pytest.raises(ValueError, match=r"\['Western'\]"):
        make(PublishedMLP000, genres=("Action", "Western")).fit(r)
    # the seed's own 19 columns: every one that synth lacks is named, none that it has
    with pytest.raises(ValueError) as e:
        make(PublishedMLP000, genres="seed000").fit(r)
    msg = str(e.value).split("are not among")[0]
    for g in SEED000_GENRES:
        assert (repr(g) in msg) == (g not in NAMES), g
    assert make(HybridNN003, genres="none", epochs=1).fit(r).genre_table_.shape == (21, 0)
    m = make(AttentionMLP000, genres=("Horror", "Action"), epochs=1).fit(r)
    assert m.genre_names_ == ("Horror", "Action")
    np.testing.assert_array_equal(m.genre_table_[:-1].numpy(), r.genres[:, [3, 0]])
    assert not m.genre_table_[-1].any()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_asked_for_without_a_gpu(tmp_path):
    r = synth(seed=10)
    with pytest.raises(BackendUnavailable):
        make(PublishedMLP000, device="cuda").fit(r)
    m = make(PublishedMLP000, device="auto", epochs=1).fit(r)
    assert m.device_ == torch.device("cpu")
    path = m.save(tmp_path / "m.pt")
    with pytest.raises(BackendUnavailable):
        NeuralRegressor.load(path, device="cuda")


# -- 10. explicit genre rows ------------------------------------------------------------------


def test_predict_with_genres_matches_the_movies_own_flags():
    r = synth(seed=11, cold_items=2)
    m = make(PublishedMLP000, epochs=2).fit(r)
    users = np.arange(12) % r.n_users
    items = np.arange(12) % (r.n_items - 2)  # rated movies: their flags are used
    own = r.genres[items].astype(np.float32)
    np.testing.assert_allclose(m.predict_with_genres(users, items, own),
                               m.predict_pairs(users, items), rtol=1e-6, atol=1e-6)
    other = 1.0 - own  # the genres given are the ones read
    assert not np.allclose(m.predict_with_genres(users, items, other),
                           m.predict_pairs(users, items))
    # a cold movie is read with no genre flag, whatever its own are
    cold = np.array([r.n_items - 1, r.n_items - 2])
    np.testing.assert_allclose(m.predict_with_genres(users[:2], cold, np.zeros((2, 4))),
                               m.predict_pairs(users[:2], cold), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match=r"shape \(12, 4\)"):
        m.predict_with_genres(users, items, own[:, :3])
    with pytest.raises(ValueError, match="shape"):
        m.predict_with_genres(users, items, own[:-1])
    with pytest.raises(ValueError, match="shape"):
        m.predict_with_genres(users, items, own.ravel())
    with pytest.raises(RuntimeError, match="not fitted"):
        make(PublishedMLP000).predict_with_genres(users, items, own)
