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
BEST = "CLAIMS.md, 'Published best (random splits)'"

SURPRISE_PROTOCOL = "5-fold cross-validation over random folds of the rating rows"
RENDLE_PROTOCOL = "one random 90/10 split of the rating rows"
BEST_PROTOCOL = "random split, sizes as in the cited paper (not recorded in CLAIMS.md)"


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
    Anchor("published best", BEST, "ml-1m", "GLocal-K", 0.822, BEST_PROTOCOL),
    Anchor("published best", BEST, "ml-100k", "best published", 0.889, BEST_PROTOCOL),
)


def same_protocol(anchor: Anchor, split: dict[str, Any] | None) -> bool:
    if anchor.split_method is None or not split or split.get("method") != anchor.split_method:
        return False
    params = split.get("params") or {}
    return all(params.get(k) == v for k, v in anchor.split_params)


def anchor_datasets() -> set[str]:
    return {a.dataset for a in ANCHORS}
