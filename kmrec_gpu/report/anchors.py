"""Published RMSE figures that put the stored results in context (CLAIMS.md, "Anchors for
context"). These are the only result figures the report does not read from stored files;
each carries its citation and its protocol, in words and, where the harness has the same
split, as the split method and parameters a stored row would record.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SURPRISE = ("Surprise README benchmark table, github.com/NicolasHug/Surprise "
            "(quoted in CLAIMS.md)")
RENDLE = ("S. Rendle, L. Zhang, Y. Koren, 'On the Difficulty of Evaluating Baselines: "
          "A Study on Recommender Systems', arXiv:1905.01395, 2019 (quoted in CLAIMS.md)")
GLOCAL = ("S. C. Han, T. Lim, S. Long, B. Burgstaller, J. Poon, 'GLocal-K: Global and Local "
          "Kernels for Recommender Systems', CIKM 2021 (quoted in CLAIMS.md)")

SURPRISE_PROTOCOL = "5-fold cross-validation over random folds of the rating rows"
RENDLE_PROTOCOL = "one random 90/10 split of the rating rows"
GLOCAL_PROTOCOL = "ml-100k's official u1.base / u1.test split"


@dataclass(frozen=True)
class Anchor:
    source: str
    citation: str
    dataset: str  # the harness registry's name for the same release
    model: str
    rmse: float
    protocol: str
    split_method: str | None = None  # None: no stored split is the same protocol
    split_params: tuple[tuple[str, Any], ...] = ()


def _surprise(dataset: str, model: str, rmse: float) -> Anchor:
    return Anchor("Surprise README", SURPRISE, dataset, model, rmse, SURPRISE_PROTOCOL, "kfold",
                  (("n_folds", 5),))


def _rendle(model: str, rmse: float) -> Anchor:
    return Anchor("Rendle, Zhang & Koren 2019", RENDLE, "ml-10m", model, rmse, RENDLE_PROTOCOL,
                  "holdout", (("test_fraction", 0.1),))


ANCHORS: tuple[Anchor, ...] = (
    _surprise("ml-100k", "SVD", 0.934),
    _surprise("ml-100k", "SVD++", 0.919),
    _surprise("ml-100k", "NMF", 0.963),
    _surprise("ml-100k", "BaselineOnly", 0.944),
    _surprise("ml-1m", "SVD", 0.873),
    _surprise("ml-1m", "SVD++", 0.862),
    _surprise("ml-1m", "NMF", 0.916),
    _surprise("ml-1m", "BaselineOnly", 0.909),
    _rendle("SGD MF", 0.772),
    _rendle("Bayesian MF", 0.763),
    _rendle("Bayesian timeSVD++ flipped", 0.7485),
    Anchor("GLocal-K", GLOCAL, "ml-1m", "GLocal-K", 0.8227,
           "one random 90/10 split of the rating rows (its README, as CLAIMS.md quotes it)",
           "holdout", (("test_fraction", 0.1),)),
    Anchor("GLocal-K", GLOCAL, "ml-100k", "GLocal-K", 0.8889, GLOCAL_PROTOCOL, "ml100k_fold",
           (("fold", 1),)),
)


def same_protocol(anchor: Anchor, split: dict[str, Any] | None) -> bool:
    if anchor.split_method is None or not split or split.get("method") != anchor.split_method:
        return False
    params = split.get("params") or {}
    return all(params.get(k) == v for k, v in anchor.split_params)


def anchor_datasets() -> set[str]:
    return {a.dataset for a in ANCHORS}
