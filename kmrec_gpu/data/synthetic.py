"""Synthetic MovieLens-like ratings at any size, deterministic for a seed.

The model: Zipf item popularity over a shuffled item order, lognormal user activity, and
a continuous score ``user bias + item bias + user . item factors + noise`` (users drawn
around a few taste segments, genres cut from the item factors so genre profiles carry
signal), mapped through quantiles onto ml-latest-small's half-star histogram.

Per-rating random numbers are hashes of (stream, user, index) rather than the next draws
of one sequential generator: that way the output is the same whatever the chunking, and
chunks share no generator state. Small per-user and per-item tables come from
:func:`kmrec_gpu.seeding.rng` as usual.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtri

from kmrec_gpu import seeding
from kmrec_gpu.errors import InvalidArgument, UnknownDataset
from kmrec_gpu.ratings import Ratings, RatingScale

__all__ = ["SYNTHETIC_PRESETS", "SyntheticSpec", "synthetic", "synthetic_preset"]

SCALE = RatingScale(0.5, 5.0, 0.5)
# ml-latest-small's rating counts for 0.5, 1.0, ..., 5.0 (mean 3.50, mode 4.0).
ML_SMALL_HISTOGRAM = (1370, 2811, 1791, 7551, 5550, 20047, 13136, 26818, 8551, 13211)
EPOCH = (828_000_000, 1_537_800_000)  # 1996-03 .. 2018-09, ml-latest-small's span
N_SEGMENTS = 8
TASTE = 0.5  # std of user . item, in stars (user and item biases have 0.35)
GENRE_PULL = 1.0  # about half of an item's factors is its genres'
USER_SIGMA = 1.3  # lognormal activity: ml-25m's mean/median extra ratings ratio is ~2.6
_ROUNDS = 4
_CHUNK_RATINGS = 1 << 16  # small chunks keep temporaries in cache: 25% faster than 2^20
_MAX_SEQ = 1 << 24  # draws per chunk, so sort keys keep 24 bits for the draw position
_DAY = 86_400


@dataclass(frozen=True)
class SyntheticSpec:
    n_users: int
    n_items: int
    n_ratings: int
    description: str = ""


def _spec(u: int, i: int, r: int, what: str) -> SyntheticSpec:
    return SyntheticSpec(u, i, r, f"synthetic, {what}: {u:,} users, {i:,} items, {r:,} ratings")


SYNTHETIC_PRESETS: dict[str, SyntheticSpec] = {
    "synthetic-small": _spec(100, 200, 3_000, "tiny, for tests"),
    # round sizes keep ml-25m/32m's shape: ~160 ratings a user, ~0.4 items a user
    "synthetic-1m": _spec(6_000, 4_000, 1_000_000, "1M"),
    # synthetic-1m's users and ratings over ten times the items: a tenth of its density,
    # as synthetic-32m has a twentieth of synthetic-1m's (sweep=density)
    "synthetic-1m-sparse": _spec(6_000, 40_000, 1_000_000, "1M at a tenth of the density"),
    "synthetic-10m": _spec(70_000, 11_000, 10_000_000, "10M"),
    "synthetic-25m": _spec(160_000, 62_000, 25_000_000, "25M"),
    "synthetic-32m": _spec(200_000, 87_000, 32_000_000, "32M"),
    "synthetic-100m": _spec(625_000, 250_000, 100_000_000, "100M"),
    "synthetic-ml-100k": _spec(943, 1_682, 100_000, "ml-100k's size"),
    "synthetic-ml-latest-small": _spec(610, 9_742, 100_836, "ml-latest-small's size"),
    "synthetic-ml-1m": _spec(6_040, 3_952, 1_000_209, "ml-1m's size"),
    "synthetic-ml-10m": _spec(71_567, 10_681, 10_000_054, "ml-10m's size"),
    "synthetic-ml-20m": _spec(138_493, 27_278, 20_000_263, "ml-20m's size"),
    "synthetic-ml-25m": _spec(162_541, 62_423, 25_000_095, "ml-25m's size"),
    "synthetic-ml-32m": _spec(200_948, 87_585, 32_000_204, "ml-32m's size"),
}


def synthetic_preset(name: str, seed: int = 0, progress: bool = False) -> Ratings:
    """The named preset's ratings (see :data:`SYNTHETIC_PRESETS`)."""
    spec = SYNTHETIC_PRESETS.get(name)
    if spec is None:
        raise UnknownDataset(
            f"unknown synthetic preset {name!r}; expected one of {list(SYNTHETIC_PRESETS)}"
        )
    return synthetic(spec.n_users, spec.n_items, spec.n_ratings, seed=seed,
                     progress=progress, name=name)


def synthetic(
    n_users: int,
    n_items: int,
    n_ratings: int,
    *,
    seed: int = 0,
    rank: int = 16,
    n_genres: int = 19,
    min_user_ratings: int = 20,
    noise: float = 0.6,
    chunk_users: int | None = None,
    progress: bool = False,
    name: str | None = None,
) -> Ratings:
    """Exactly ``n_ratings`` distinct (user, item) ratings, every user rating at least
    ``min_user_ratings`` items; user ids 1..n_users, item ids 1..n_items.

    ``chunk_users`` bounds the users generated at once (memory only: the output does not
    depend on it). ``noise`` is the Gaussian noise's standard deviation in stars.
    """
    n_users, n_items, n_ratings, rank, n_genres, min_user_ratings = (
        _int(v, k) for v, k in ((n_users, "n_users"), (n_items, "n_items"),
                                (n_ratings, "n_ratings"), (rank, "rank"),
                                (n_genres, "n_genres"), (min_user_ratings, "min_user_ratings")))
    for k, v in (("n_users", n_users), ("n_items", n_items), ("rank", rank),
                 ("n_genres", n_genres), ("min_user_ratings", min_user_ratings)):
        if v < 1:
            raise ValueError(f"{k} must be >= 1, got {v}")
    if min_user_ratings > n_items:
        raise ValueError(f"min_user_ratings={min_user_ratings} exceeds n_items={n_items}: "
                         "a user cannot rate an item twice")
    if n_ratings < n_users * min_user_ratings:
        raise ValueError(f"n_ratings={n_ratings:,} is below n_users * min_user_ratings = "
                         f"{n_users:,} * {min_user_ratings} = {n_users * min_user_ratings:,}")
    if n_ratings > n_users * n_items:
        raise ValueError(f"n_ratings={n_ratings:,} cannot fit: n_users * n_items = "
                         f"{n_users * n_items:,} distinct (user, item) pairs")
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    if chunk_users is not None and _int(chunk_users, "chunk_users") < 1:
        raise ValueError(f"chunk_users must be >= 1, got {chunk_users}")
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed < 0:
        raise InvalidArgument(f"{name or 'synthetic'}: seed must be a non-negative int, "
                              f"got {seed} (0 is a seed like any other)")
    seeding.seed_sequence(seed)  # refuse a bad seed before any work

    counts = _user_counts(seed, n_users, n_items, n_ratings, min_user_ratings)
    pop = _Popularity(seed, n_items, n_ratings / n_users)
    users = _user_tables(seed, n_users, rank)
    q, item_bias, genres = _item_tables(seed, pop, rank, n_genres)
    keys = seeding.seed_sequence(seed, "synthetic", "hash").generate_state(_ROUNDS + 1, np.uint64)

    out_u = np.empty(n_ratings, np.int32)
    out_i = np.empty(n_ratings, np.int32)
    out_r = np.empty(n_ratings, np.float32)  # continuous score until the final mapping
    out_t = np.empty(n_ratings, np.int64)
    ends = np.cumsum(counts)
    bounds = _chunks(counts, n_items, chunk_users)
    with _progress(progress, name or "synthetic", n_ratings) as advance:
        for lo, hi in bounds:
            a, b = int(ends[lo] - counts[lo]), int(ends[hi - 1])
            j, items = _sample_chunk(lo, counts[lo:hi], pop, keys[:_ROUNDS])
            uid = j + lo
            out_u[a:b] = uid
            out_i[a:b] = items
            base = _hash(keys[_ROUNDS] + np.arange(lo, hi, dtype=np.uint64) * _GOLD)
            h = _hash(base[j] + items.astype(np.uint64) * _GOLD2)  # keyed by the pair
            z = ndtri(((h >> 32) + 0.5) * 2.0**-32).astype(np.float32)
            # np.take: row gathers by fancy indexing are several times slower
            score = np.einsum("ij,ij->i", np.take(users.p, uid, axis=0),
                              np.take(q, items, axis=0))
            score += users.bias[uid] + item_bias[items] + np.float32(noise) * z
            out_r[a:b] = score
            frac = (h & 0xFFFFFFFF) * 2.0**-32
            out_t[a:b] = users.t0[uid] + (frac * users.span[uid]).astype(np.int64)
            advance(b - a)
    _to_histogram(out_r)

    label = name or f"synthetic-{n_ratings}"
    meta = {
        "generator": "synthetic", "seed": int(seed), "preset": name,
        "params": {"n_users": n_users, "n_items": n_items, "n_ratings": n_ratings,
                   "rank": rank, "n_genres": n_genres, "min_user_ratings": min_user_ratings,
                   "noise": float(noise), "zipf_exponent": 1.0, "zipf_offset": round(pop.k0, 3),
                   "n_segments": N_SEGMENTS, "taste": TASTE, "genre_pull": GENRE_PULL,
                   "histogram": "ml-latest-small"},
    }
    return Ratings(
        users=out_u, items=out_i, ratings=out_r, timestamps=out_t,
        user_ids=np.arange(1, n_users + 1, dtype=np.int64),
        item_ids=np.arange(1, n_items + 1, dtype=np.int64),
        scale=SCALE, name=label, genres=genres,
        genre_names=tuple(f"Genre{g:02d}" for g in range(n_genres)), meta=meta,
    )


def _int(v, what: str) -> int:
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"{what} must be an int, got {v!r}") from None


# ---- hashing: counter-based randomness -------------------------------------------------
_GOLD = np.uint64(0x9E3779B97F4A7C15)
_GOLD2 = np.uint64(0xD1B54A32D192ED03)


def _hash(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser; ``x`` (uint64) is overwritten."""
    x = np.asarray(x, dtype=np.uint64)
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return x


# ---- users and items ---------------------------------------------------------------------
def _user_counts(seed: int, n_users: int, n_items: int, n_ratings: int, floor: int) -> np.ndarray:
    """Lognormal activity above ``floor``, capped at ``n_items``, summing to ``n_ratings``."""
    w = seeding.rng(seed, "synthetic", "activity").lognormal(0.0, USER_SIGMA, n_users)
    extra, cap = n_ratings - n_users * floor, n_items - floor
    # scale the weights so the capped shares sum to `extra` (bisection: it is monotone)
    lo, hi = 0.0, float(cap / w.min()) + 1.0
    for _ in range(64):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if np.minimum(mid * w, cap).sum() < extra else (lo, mid)
    x = np.minimum(hi * w, cap)
    n = np.floor(x).astype(np.int64)
    # largest remainders take the units rounding lost (or give back any excess)
    while (diff := extra - int(n.sum())) != 0:
        room = n < cap if diff > 0 else n > 0
        order = np.argsort(-(x - n) if diff > 0 else (x - n), kind="stable")
        order = order[room[order]][: abs(diff)]
        n[order] += 1 if diff > 0 else -1
    return n + floor


class _Popularity:
    """Zipf (exponent 1) over a shuffled item order: rank k has weight ~ 1 / (k + k0).

    k0 is set so the top item's weight is 1 / (mean ratings per user): that leaves it
    rated by about half the users, as in every MovieLens release, where a plain Zipf
    head would have nearly every user rate the same few items.
    """

    def __init__(self, seed: int, n_items: int, mean_activity: float):
        self.n = n_items
        lo, hi = 0.0, 28.0  # log k0; a uniform catalogue needs k0 >> n_items
        for _ in range(60):
            mid = (lo + hi) / 2
            k0 = np.exp(mid)
            top = np.log1p(1 / k0) / np.log1p(n_items / k0)
            lo, hi = (mid, hi) if top > 1 / mean_activity else (lo, mid)
        self.k0 = float(np.exp(hi))
        self.log_span = float(np.log1p(n_items / self.k0))
        self.order = seeding.rng(seed, "synthetic", "popularity").permutation(n_items)
        self.order = self.order.astype(np.int32)
        ranks = np.arange(n_items + 1, dtype=np.float64)
        mass = np.log1p(ranks / self.k0) / self.log_span  # share of the top k ranks
        # expected draws to collect k distinct items if each draw hits the top-k mass
        # first; an overestimate, which is the safe side for sizing a round of draws
        miss = np.maximum(1.0 - mass[:-1], 1e-12)
        self.draws_for = np.concatenate([[0.0], np.cumsum(1.0 / miss)])

    def items(self, u: np.ndarray) -> np.ndarray:
        rank = (self.k0 * np.expm1(u * self.log_span)).astype(np.int64)
        return self.order[np.minimum(rank, self.n - 1)]

    def item_rank(self) -> np.ndarray:
        r = np.empty(self.n, np.int64)
        r[self.order] = np.arange(self.n)
        return r


@dataclass(frozen=True)
class _Users:
    p: np.ndarray  # (n_users, rank) float32 factors
    bias: np.ndarray  # float32
    t0: np.ndarray  # int64 first activity
    span: np.ndarray  # float64 seconds of activity


def _user_tables(seed: int, n_users: int, rank: int) -> _Users:
    g = seeding.rng(seed, "synthetic", "users")
    centres = g.standard_normal((N_SEGMENTS, rank))
    seg = g.integers(0, N_SEGMENTS, n_users)
    # taste is mostly the segment's, so user clusters exist to be found
    p = TASTE * (0.8 * centres[seg] + 0.6 * g.standard_normal((n_users, rank)))
    bias = 0.35 * g.standard_normal(n_users)
    t0 = g.integers(EPOCH[0], EPOCH[1] - _DAY, n_users)
    # most users rate within days, a few over years (ml's users are mostly one-session)
    span = np.minimum(np.exp(g.normal(np.log(20 * _DAY), 2.0, n_users)), EPOCH[1] - t0)
    return _Users(p.astype(np.float32), bias.astype(np.float32), t0, span)


def _item_tables(seed: int, pop: _Popularity, rank: int, n_genres: int):
    g = seeding.rng(seed, "synthetic", "items")
    z = g.standard_normal((pop.n, rank)) / np.sqrt(rank)
    logpop = -np.log(pop.item_rank() + pop.k0)
    logpop = (logpop - logpop.mean()) / (logpop.std() or 1.0)
    bias = 0.35 * g.standard_normal(pop.n) + 0.1 * logpop  # popular items rate a bit higher
    # each genre is a direction in factor space; an item has it when its projection is in
    # the top `freq` of items (Drama-like 35% down to ~1%), and always its strongest one
    directions = g.standard_normal((n_genres, rank))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    proj = z @ directions.T
    freq = 0.35 * 0.8 ** np.arange(n_genres)
    cut = np.sort(proj, axis=0)[((1.0 - freq) * (pop.n - 1)).astype(np.int64), np.arange(n_genres)]
    genres = proj >= cut
    genres[np.arange(pop.n), np.argmax(proj / np.maximum(proj.std(axis=0), 1e-12), axis=1)] = True
    # then pull items toward their genres' directions: thresholding one projection of 16
    # alone leaves genre averages too weak to tell users' tastes apart
    q = z + GENRE_PULL * (genres @ directions) / np.sqrt(genres.sum(axis=1, keepdims=True))
    q /= np.sqrt(np.mean(np.sum(q * q, axis=1)))  # unit norm on average: TASTE sets the scale
    return q.astype(np.float32), bias.astype(np.float32), genres


# ---- sampling items without replacement ------------------------------------------------
def _chunks(counts: np.ndarray, n_items: int, chunk_users: int | None) -> list[tuple[int, int]]:
    """User ranges small enough for memory and for the 63-bit sort keys."""
    max_users = max(1, min(chunk_users or len(counts), (1 << 38) // n_items))
    bound = np.cumsum(9 * counts + 160)  # worst-case draws a user's sequence can hold
    ratings = np.cumsum(counts)
    out, lo = [], 0
    while lo < len(counts):
        base_b = bound[lo - 1] if lo else 0
        base_r = ratings[lo - 1] if lo else 0
        hi = min(int(np.searchsorted(bound, base_b + _MAX_SEQ, "right")),
                 int(np.searchsorted(ratings, base_r + _CHUNK_RATINGS, "right")),
                 lo + max_users)
        hi = max(hi, lo + 1)
        out.append((lo, hi))
        lo = hi
    return out


def _sample_chunk(u0: int, quota: np.ndarray, pop: _Popularity, keys: np.ndarray):
    """Each user's ``quota`` distinct items by Zipf successive sampling; returns (local
    user, item) sorted by user then item.

    Draw with replacement, keep first occurrences in draw order (which *is* weighted
    sampling without replacement), redraw for users still short, and give the few users
    left short after the rounds their most popular unrated items.
    """
    n = len(quota)
    active = np.arange(n)
    held = np.empty(0, np.int32)  # active users' items so far, grouped by user
    held_n = np.zeros(n, np.int64)
    done_j, done_i = [], []
    for r, key in enumerate(keys):
        want = quota[active]
        need = pop.draws_for[want] - pop.draws_for[held_n]
        m = np.minimum(np.ceil(need * (1.1 if r == 0 else 2.0)).astype(np.int64) + 8 + 16 * r,
                       8 * (want - held_n) + 64)
        seq_n = held_n + m
        j = np.repeat(np.arange(len(active)), seq_n)
        start = np.cumsum(seq_n) - seq_n
        pos = np.arange(len(j)) - start[j]  # index within the user's sequence
        is_new = pos >= held_n[j]
        seq = np.empty(len(j), np.int32)
        seq[~is_new] = held
        h = _hash(key + (active + u0).astype(np.uint64) * _GOLD)[j[is_new]]
        h += (pos[is_new] - held_n[j[is_new]]).astype(np.uint64) * _GOLD2
        seq[is_new] = pop.items((_hash(h) >> np.uint64(11)) * 2.0**-53)
        keep = _first_distinct(j, seq, start, want, pop.n)
        kj, held = j[keep], seq[keep]
        held_n = np.bincount(kj, minlength=len(active))
        full = held_n == want
        done_j.append(active[kj[full[kj]]])
        done_i.append(held[full[kj]])
        active, held, held_n = active[~full], held[~full[kj]], held_n[~full]
        if not len(active):
            break
    if len(active):  # deterministic top-up; only users rating most of the catalogue
        ends = np.cumsum(held_n)
        for a, e, have in zip(active, ends, held_n):
            mine = held[e - have:e]
            cand = pop.order[: quota[a]]
            extra = cand[~np.isin(cand, mine)][: quota[a] - have]
            done_j.append(np.full(quota[a], a))
            done_i.append(np.concatenate([mine, extra]))
    key = np.concatenate(done_j).astype(np.int64) * pop.n + np.concatenate(done_i)
    key.sort()
    j = np.repeat(np.arange(n), quota)
    return j, (key - j * pop.n).astype(np.int32)


def _first_distinct(j, seq, start, quota, n_items) -> np.ndarray:
    """Mask of each user's first ``quota`` distinct items, in sequence order.

    ``j`` is the user of each element (grouped, users' blocks begin at ``start``).
    """
    n = len(seq)
    bits = max(1, (n - 1).bit_length())
    key = ((j * n_items + seq) << bits) | np.arange(n)  # (user, item, position)
    key.sort()
    grp = key >> bits
    first = np.ones(n, bool)
    first[1:] = grp[1:] != grp[:-1]
    is_first = np.zeros(n, bool)
    is_first[key[first] & ((1 << bits) - 1)] = True
    seen = np.cumsum(is_first)
    before = np.where(start > 0, seen[start - 1], 0)  # distinct items before each block
    return is_first & (seen - before[j] <= quota[j])


# ---- rating values ---------------------------------------------------------------------
def _to_histogram(scores: np.ndarray) -> None:
    """Map scores (in place) to half stars with ml-latest-small's histogram, by quantiles
    of a strided sample (the same whatever the chunking)."""
    if not len(scores):
        return
    sample = scores[np.linspace(0, len(scores) - 1, min(len(scores), 1 << 21)).astype(np.int64)]
    cum = np.cumsum(ML_SMALL_HISTOGRAM)[:-1] / sum(ML_SMALL_HISTOGRAM)
    cuts = np.quantile(sample.astype(np.float64), cum).astype(np.float32)
    values = SCALE.values
    for a in range(0, len(scores), 1 << 22):
        block = scores[a:a + (1 << 22)]
        block[:] = values[np.searchsorted(cuts, block, side="right")]


class _progress:
    """A rich progress bar over ratings when asked for, else a no-op."""

    def __init__(self, on: bool, label: str, total: int):
        self.on, self.label, self.total = on, label, total

    def __enter__(self):
        if not self.on:
            return lambda n: None
        from rich.progress import Progress

        self.bar = Progress(transient=False)
        self.bar.__enter__()
        task = self.bar.add_task(f"generating {self.label}", total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc):
        if self.on:
            self.bar.__exit__(*exc)
