"""Surprise's algorithms as peers, behind this project's ``fit(train) / predict(X)``."""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np

from kmrec_gpu.errors import BackendUnavailable
from kmrec_gpu.ratings import Ratings


def surprise_available() -> bool:
    try:
        importlib.import_module("surprise")
    except ImportError:
        return False
    return True


class SurprisePeer:
    """A Surprise algorithm (``SVD``, ``BaselineOnly``, ...) by name.

    The trainset is built from exactly the training rows (codes as raw ids); predictions go
    through ``algo.predict``, which clips to the rating scale and falls back to the global
    mean (plus known biases) for unknown users or items, as Surprise's own evaluation does.
    """

    def __init__(self, name: str, **params: Any) -> None:
        self.name = name
        self.params = params

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"name": self.name, **self.params}

    def fit(self, train: Ratings) -> SurprisePeer:
        try:
            import surprise
        except ImportError:
            raise BackendUnavailable("scikit-surprise is not installed (the 'peers' extra: "
                                     "pip install -e '.[peers]')") from None
        df = train.to_frame()[["user", "item", "rating"]]
        reader = surprise.Reader(rating_scale=(train.scale.minimum, train.scale.maximum))
        trainset = surprise.Dataset.load_from_df(df, reader).build_full_trainset()
        self.algo_ = getattr(surprise, self.name)(**self.params).fit(trainset)
        return self

    def predict(self, X: Ratings) -> np.ndarray:
        algo = self.algo_
        return np.array([algo.predict(int(u), int(i)).est
                         for u, i in zip(X.users.tolist(), X.items.tolist())])
