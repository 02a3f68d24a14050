"""The ``implicit`` library's ALS (Hu, Koren & Volinsky 2008) as a top-k reference.

Fitted on the implicit matrix of what each user rated in training (confidence
``1 + alpha``), as EASE and item-kNN here are; lists come from the factors' scores through
this project's top-k cut, so training items, movies without a training rating and ties are
handled as for every other recommender. Its own threads are set by ``num_threads`` (the
harness's ``threads`` governs torch and BLAS only): 1 by default, as every timed cell here.
"""

from __future__ import annotations

import numpy as np

from kmrec_gpu.errors import BackendUnavailable
from kmrec_gpu.models._recbase import RecommenderMixin, check_k, check_users, top_k
from kmrec_gpu.ratings import Ratings


class ImplicitALS(RecommenderMixin):
    def __init__(self, *, factors: int = 64, regularization: float = 0.01, alpha: float = 1.0,
                 iterations: int = 15, num_threads: int = 1, random_state: int = 0) -> None:
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.iterations = iterations
        self.num_threads = num_threads
        self.random_state = random_state

    def fit(self, train: Ratings) -> ImplicitALS:
        try:
            from implicit.cpu.als import AlternatingLeastSquares
        except ImportError:
            raise BackendUnavailable("implicit is not installed (the 'peers' extra: "
                                     "pip install -e '.[peers]')") from None
        from threadpoolctl import threadpool_limits

        self._store_train(train)
        # implicit parallelises itself; a BLAS thread pool under it only contends (its advice)
        with threadpool_limits(1, "blas"):
            model = AlternatingLeastSquares(
                factors=self.factors, regularization=self.regularization, alpha=self.alpha,
                iterations=self.iterations, num_threads=self.num_threads,
                random_state=self.random_state)
            model.fit(self.seen_.tocsr(), show_progress=False)
        self.user_factors_ = np.asarray(model.user_factors)
        self.item_factors_ = np.asarray(model.item_factors)
        self.catalog_ = np.bincount(train.items, minlength=train.n_items) > 0
        return self

    def recommend(self, users: np.ndarray, k: int = 10) -> np.ndarray:
        self._check_fitted()
        k, users = check_k(k), check_users(users, self.n_users_)
        scores = (self.user_factors_[users] @ self.item_factors_.T).astype(np.float64)
        scores[:, ~self.catalog_] = -np.inf
        return top_k(scores, users, self.seen_, k)
