"""LensKit's ALS biased matrix factorisation as a peer, behind ``fit(train) / predict(X)``.

LensKit (2025.x) pins pandas 2.x; the project's range (``pandas>=2.1``) admits it, so the
``lenskit`` extra installs beside the project in one environment (pip then picks pandas
2.x) and the peer runs in the same process as the model it is compared with.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from kmrec_gpu.errors import BackendUnavailable
from kmrec_gpu.ratings import Ratings


def lenskit_available() -> bool:
    try:
        importlib.import_module("lenskit.als")
    except ImportError:
        return False
    return True


class LensKitBiasedMF:
    """``lenskit.als.BiasedMFScorer``: biases (damped means) then ALS on the residuals,
    solved per user and per item with Cholesky on the Gram matrices.

    Codes are the ids LensKit sees, so its vocabularies are the training rows' users and
    items. Predictions are its scores for each test user's items; a user or item it never
    saw gets no score from it (NaN) and is predicted with the training mean instead.
    """

    def __init__(self, embedding_size: int = 50, epochs: int = 10, regularization: float = 0.1,
                 damping: float = 5.0, random_state: int = 0) -> None:
        self.embedding_size = embedding_size
        self.epochs = epochs
        self.regularization = regularization
        self.damping = damping
        self.random_state = random_state

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"library": "lenskit", "algorithm": "BiasedMFScorer",
                "embedding_size": self.embedding_size, "epochs": self.epochs,
                "regularization": self.regularization, "damping": self.damping,
                "random_state": self.random_state}

    def fit(self, train: Ratings) -> LensKitBiasedMF:
        try:
            import pandas as pd
            from lenskit.als import BiasedMFScorer
            from lenskit.data import from_interactions_df
            from lenskit.training import TrainingOptions
        except ImportError:
            raise BackendUnavailable("lenskit is not installed (the 'lenskit' extra: pip "
                                     "install -e '.[lenskit]')") from None
        df = pd.DataFrame({"user_id": train.users.astype(np.int64),
                           "item_id": train.items.astype(np.int64),
                           "rating": train.ratings.astype(np.float64)})
        self.scorer_ = BiasedMFScorer(embedding_size=self.embedding_size, epochs=self.epochs,
                                      regularization=self.regularization, damping=self.damping)
        self.scorer_.train(from_interactions_df(df), TrainingOptions(rng=self.random_state))
        self.mean_ = float(train.ratings.astype(np.float64).mean())
        return self

    def predict(self, X: Ratings) -> np.ndarray:
        from lenskit.data import ItemList

        users = X.users.astype(np.int64)
        items = X.items.astype(np.int64)
        out = np.full(len(users), np.nan)
        order = np.argsort(users, kind="stable")
        bounds = np.flatnonzero(np.diff(users[order])) + 1
        for rows in np.split(order, bounds):
            if rows.size:
                scored = self.scorer_(int(users[rows[0]]), ItemList(item_ids=items[rows]))
                out[rows] = scored.scores()
        missing = np.isnan(out)
        out[missing] = self.mean_
        return out
