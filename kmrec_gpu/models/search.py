"""Any model's hyper-parameters searched under a declared budget, on training data only.

:class:`ValidatedSearch` is itself an estimator: ``fit(train)`` carves a validation split
out of ``train`` (:func:`kmrec_gpu.splits.validation_split`), runs Optuna's TPE sampler
(seeded) for at most ``n_trials`` trials and ``timeout_s`` seconds, each trial fitting the
model on the rest of ``train`` and scoring it on the validation part (RMSE for a rating
model, nDCG@k for a recommender), then refits the best configuration on all of ``train``.
A ``task="pipeline"`` search (a ``split -> predictions`` pipeline such as seed 004's forest)
runs each trial as the pipeline on the inner split and scores its RMSE; ``fit_predict``
searches on the split's training part, then runs the chosen pipeline on the split.
The test set is never an argument here, so the whole tune-then-fit pipeline goes through
the leakage check like any model (Rendle et al. 2019: tune every compared model the same
way, on validation data, and say how much).

The budget is part of the configuration (``get_params``); the cost is in the fitted facts:
``n_trials_`` run, ``tune_s_`` spent, and ``at_edge_``, the numeric parameters whose best
value lies in the outer 5% of their range (in log space for a log range): a search that
ends at an edge was too narrow, and says so.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from kmrec_gpu.estimator import Estimator
from kmrec_gpu.ratings import Ratings
from kmrec_gpu.splits import validation_split

EDGE = 0.05


class ValidatedSearch(Estimator):
    """``estimator``: ``{"class": class path, fixed parameters}`` (not Hydra's ``_target_``,
    which Hydra would build once, before the search); ``space``:
    ``{parameter: {"low": a, "high": b, "log": bool, "int": bool}}`` or
    ``{parameter: {"choices": [...]}}``."""

    _fitted_attr = "best_estimator_"

    def __init__(self, *, estimator: dict, space: dict, task: str = "rating",
                 n_trials: int = 20, timeout_s: float | None = None,
                 valid_fraction: float = 0.1, k: int = 10, threshold: float = 4.0,
                 random_state: int = 0) -> None:
        self.estimator = estimator
        self.space = space
        self.task = task
        self.n_trials = n_trials
        self.timeout_s = timeout_s
        self.valid_fraction = valid_fraction
        self.k = k
        self.threshold = threshold
        self.random_state = random_state

    def _check(self) -> None:
        if self.task not in ("rating", "topk", "pipeline"):
            raise ValueError(f"task must be 'rating', 'topk' or 'pipeline', got {self.task!r}")
        if not (isinstance(self.n_trials, int) and self.n_trials >= 1):
            raise ValueError(f"n_trials must be an int >= 1, got {self.n_trials!r}")
        if not isinstance(self.estimator, dict) or "class" not in self.estimator:
            raise ValueError("estimator must be a dict with a 'class' path")
        for name, dom in self.space.items():
            ok = ("choices" in dom and len(dom["choices"]) > 0) or (
                "low" in dom and "high" in dom and dom["low"] < dom["high"]
                and (not dom.get("log") or dom["low"] > 0))
            if not ok:
                raise ValueError(f"space[{name!r}] = {dom!r}: expected choices, or low < high "
                                 "(low > 0 for a log range)")

    def _build(self, params: dict) -> Any:
        from hydra.utils import instantiate

        fixed = {k: v for k, v in self.estimator.items() if k != "class"}
        return instantiate({"_target_": self.estimator["class"], **fixed, **params},
                           _convert_="all")

    def _score(self, model: Any, valid: Ratings, fit_part: Ratings) -> float:
        if self.task == "pipeline":  # a split -> predictions pipeline, on the inner split
            from kmrec_gpu.metrics import rmse
            from kmrec_gpu.splits import TTSplit

            pred = model.fit_predict(TTSplit(fit_part, valid, method="validation"))
            return float(rmse(valid.ratings.astype(np.float64), pred))
        if self.task == "rating":
            from kmrec_gpu.metrics import rmse

            return float(rmse(valid.ratings.astype(np.float64), model.predict(valid)))
        from kmrec_gpu.metrics import per_user_ranking

        users = np.unique(valid.users)
        per_user, _ = per_user_ranking(model.recommend(users, self.k), users, valid,
                                       train=fit_part, k=self.k, threshold=self.threshold)
        return float(np.mean(per_user["ndcg"])) if per_user["ndcg"].size else 0.0

    def fit(self, train: Ratings) -> ValidatedSearch:
        import optuna

        self._check()
        t0 = time.perf_counter()
        inner = validation_split(train, self.valid_fraction, seed=self.random_state)

        def objective(trial: Any) -> float:
            params = {}
            for name, dom in sorted(self.space.items()):
                if "choices" in dom:
                    params[name] = trial.suggest_categorical(name, list(dom["choices"]))
                elif dom.get("int"):
                    params[name] = trial.suggest_int(name, int(dom["low"]), int(dom["high"]),
                                                     log=bool(dom.get("log")))
                else:
                    params[name] = trial.suggest_float(name, float(dom["low"]),
                                                       float(dom["high"]), log=bool(dom.get("log")))
            model = self._build(params)
            if self.task != "pipeline":
                model = model.fit(inner.train)
            return self._score(model, inner.test, inner.train)

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(
            direction="maximize" if self.task == "topk" else "minimize",
            sampler=optuna.samplers.TPESampler(seed=self.random_state))
        study.optimize(objective, n_trials=self.n_trials, timeout=self.timeout_s)
        self.best_params_ = dict(study.best_params)
        self.best_score_ = float(study.best_value)
        self.n_trials_ = len(study.trials)
        self.at_edge_ = ",".join(n for n in sorted(self.best_params_) if self._at_edge(n))
        self.tune_s_ = time.perf_counter() - t0
        best = self._build(self.best_params_)
        self.best_estimator_ = best if self.task == "pipeline" else best.fit(train)
        return self

    def fit_predict(self, split: Any) -> np.ndarray:
        """A pipeline search (``task="pipeline"``): search on ``split.train`` only, then the
        chosen pipeline maps ``split`` to its test predictions."""
        if self.task != "pipeline":
            raise ValueError(f"fit_predict is for task='pipeline', this search is {self.task!r}")
        self.fit(split.train)
        return self.best_estimator_.fit_predict(split)

    def _at_edge(self, name: str) -> bool:
        dom = self.space[name]
        if "choices" in dom:
            return False
        lo, hi, v = float(dom["low"]), float(dom["high"]), float(self.best_params_[name])
        if dom.get("log"):
            lo, hi, v = math.log(lo), math.log(hi), math.log(v)
        return min(v - lo, hi - v) <= EDGE * (hi - lo)

    def predict(self, X: Ratings) -> np.ndarray:
        self._check_fitted()
        return self.best_estimator_.predict(X)

    def recommend(self, users: np.ndarray, k: int = 10) -> np.ndarray:
        self._check_fitted()
        return self.best_estimator_.recommend(users, k)
