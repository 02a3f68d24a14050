"""Seed 000's one printed pair: the network trained as published, then user 6 on movie 2.

Seed 000 (CLAIMS.md, 000) trains its network (user embedding 8 + 19 genre flags -> 64 ->
32 -> 1, ReLU; Adam 1e-3, batch 32, 10 epochs, MSE, no clipping:
:class:`~kmrec_gpu.neural.estimators.PublishedMLP000`) on the adjusted target
(:func:`~kmrec_gpu.neural.adjusted.adjusted_target`) with scikit-learn's 80/20 split of
rating rows, seed 42 (split ``seed000_published``), prints the mean of per-batch test
MSEs, and one prediction: user 6 on movie 2, whose true adjusted rating is 4.0, scored
with a feature row sliced one column off (:func:`~kmrec_gpu.neural.seed000.
pair_features`). Its "accuracy" figures are that prediction's ``1 - |pred - 4| / 4``
(:func:`~kmrec_gpu.neural.seed000.pair_accuracy`). The seed left torch unseeded; here the
network's seed is the cell's, so a sweep over seeds shows the spread.

The feature row is the movie's first row in the file, so the probe puts the split's two
parts back in file order: exactly for the seed's own split (its row indices are
recomputed from the split's parameters), else by (user id, movie id), the order of the
MovieLens files. The lead column of the mis-sliced row is read from the data handed in
(the adjusted target; on (6, 2)'s feature row, which has no tags, it equals the raw
rating 4.0).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import numpy as np

from kmrec_gpu.neural.estimators import PublishedMLP000
from kmrec_gpu.neural.seed000 import (
    LEAD_COLUMNS,
    PAIR,
    batch_mean_mse,
    first_row_of_movie,
    pair_accuracy,
    pair_features,
    pair_row,
    published_rows,
)
from kmrec_gpu.probes import Probe
from kmrec_gpu.ratings import Ratings


def file_order(split) -> tuple[Ratings, str]:
    """Train and test rows together in the data file's order, and how it was found."""
    train, test = split.train, split.test
    if (train.n_users, train.n_items) != (test.n_users, test.n_items):
        raise ValueError("the split's parts must share their vocabularies")
    n = len(train) + len(test)
    cols = ("users", "items", "ratings")
    if split.method == "seed000_published":
        params = {k: split.params[k] for k in ("test_size", "random_state") if k in split.params}
        train_idx, test_idx = published_rows(n, **params)
        if train_idx.size == len(train) and test_idx.size == len(test):
            out: dict[str, Any] = {}
            for c in cols + (("timestamps",) if train.timestamps is not None
                             and test.timestamps is not None else ()):
                a, b = getattr(train, c), getattr(test, c)
                full = np.empty(n, dtype=a.dtype)
                full[train_idx], full[test_idx] = a, b
                out[c] = full
            if "timestamps" not in out:
                out["timestamps"] = None
            return dataclasses.replace(train, **out), "the seed's split, inverted"
    both = {c: np.concatenate([getattr(train, c), getattr(test, c)]) for c in cols}
    order = np.lexsort((train.item_ids[both["items"]], train.user_ids[both["users"]]))
    ts = (None if train.timestamps is None or test.timestamps is None
          else np.concatenate([train.timestamps, test.timestamps])[order])
    return (dataclasses.replace(train, **{c: v[order] for c, v in both.items()}, timestamps=ts),
            "sorted by user id, then movie id (the MovieLens files' order)")


class Probe000Pair(Probe):
    """Seed 000's network fitted on ``split.train``; the printed pair's prediction and
    "accuracy", and the printed test loss on ``split.test``.

    ``lead`` is the column assumed before the genres in the seed's mis-sliced feature row
    (``"rating"`` or ``"tag_count"``). With ``genres_only`` the genre-only network of the
    seed's ``BP_predicts.py`` (no user embedding) is fitted and scored too.

    ``metrics_``: ``pair_accuracy``, ``pair_prediction`` (with the seed's feature row),
    ``pair_prediction_aligned`` (with the movie's right flags), ``pair_true``,
    ``pair_in_train`` (1 or 0), ``test_mse`` (the seed's printed figure: the mean of
    per-batch MSEs over batches of ``batch_size``), ``test_rmse`` (over rows); with
    ``genres_only`` the same with the suffix ``_genres_only``. ``details_``: the pair
    (rows, lead value, side of the split), each network's predictions for the three
    feature rows, their accuracies and its per-epoch training loss.
    """

    def __init__(self, *, user: int = PAIR[0], movie: int = PAIR[1], lead: str = "rating",
                 epochs: int = 10, batch_size: int = 32, lr: float = 1e-3, user_dim: int = 8,
                 hidden: list[int] | tuple[int, ...] = (64, 32),
                 genres: str | list[str] = "seed000", genres_only: bool = True,
                 random_state: int = 0, device: str = "cpu") -> None:
        self.user = user
        self.movie = movie
        self.lead = lead
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.user_dim = user_dim
        self.hidden = hidden
        self.genres = genres
        self.genres_only = genres_only
        self.random_state = random_state
        self.device = device

    def _network(self, user_dim: int) -> PublishedMLP000:
        genres = self.genres if isinstance(self.genres, str) else tuple(self.genres)
        return PublishedMLP000(epochs=int(self.epochs), batch_size=int(self.batch_size),
                               lr=float(self.lr), genres=genres, user_dim=int(user_dim),
                               hidden=tuple(int(h) for h in self.hidden),
                               random_state=int(self.random_state), device=self.device)

    def measure(self, split) -> Probe000Pair:
        if self.lead not in LEAD_COLUMNS:
            raise ValueError(f"lead must be one of {LEAD_COLUMNS}, got {self.lead!r}")
        if len(split.test) == 0:
            raise ValueError("probe_000_pair needs a test part (the seed's printed test loss)")
        full, order = file_order(split)
        row = pair_row(full, self.user, self.movie)
        true = float(full.ratings[row])
        features_row = first_row_of_movie(full, self.movie)
        pu, pm = full.user_codes(self.user), full.item_codes(self.movie)
        tr = split.train
        in_train = bool(np.any((tr.users == pu) & (tr.items == pm)))
        tags = full.tag_counts()
        pair = {"user": self.user, "movie": self.movie, "row": row, "true": true,
                "in_train": in_train, "features_row": features_row,
                "lead": self.lead, "row_order": order,
                "lead_values": {"rating": float(full.ratings[features_row]),
                                "tag_count": int(tags[features_row])}}
        variants = {"": int(self.user_dim)}
        if self.genres_only:
            variants["_genres_only"] = 0
        self.metrics_, nets = {}, {}
        y = split.test.ratings.astype(np.float64)
        for suffix, user_dim in variants.items():
            t0 = time.perf_counter()
            m = self._network(user_dim).fit(tr)
            fit_s = time.perf_counter() - t0
            p = m.predict(split.test)
            rows = {"aligned": pair_features(full, features_row, m.genre_names_,
                                             misaligned=False)}
            for lead in LEAD_COLUMNS:
                rows[f"misaligned ({lead})"] = pair_features(
                    full, features_row, m.genre_names_, misaligned=True, lead=lead)
            preds = {k: float(m.predict_with_genres(np.array([pu]), np.array([pm]), f)[0])
                     for k, f in rows.items()}
            accs = {k: pair_accuracy(v, true) for k, v in preds.items()}
            published = f"misaligned ({self.lead})"
            self.metrics_.update({
                f"pair_accuracy{suffix}": accs[published],
                f"pair_prediction{suffix}": preds[published],
                f"pair_prediction_aligned{suffix}": preds["aligned"],
                f"test_mse{suffix}": batch_mean_mse(y, p, int(self.batch_size)),
                f"test_rmse{suffix}": math.sqrt(float(np.mean((p - y) ** 2))),
            })
            nets["user+genres" if user_dim else "genres only"] = {
                "user_dim": user_dim, "genre_columns": list(m.genre_names_),
                "predictions": preds, "accuracies": accs,
                "train_loss": [float(x) for x in m.history_.train_loss],
                "fit_s": round(fit_s, 3)}
        self.metrics_.update(pair_true=true, pair_in_train=int(in_train))
        self.details_ = {"pair": pair, "networks": nets,
                         "published_row": f"misaligned ({self.lead})",
                         "n_train": len(tr), "n_test": len(split.test)}
        return self
