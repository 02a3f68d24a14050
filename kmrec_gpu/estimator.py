"""The base of the project's estimators: scikit-learn's ``BaseEstimator`` (parameters read
from the constructor's signature: ``get_params``, ``set_params``, ``clone``, the repr and
pickling) and one fitted check.

The rating and top-k models take :class:`~kmrec_gpu.ratings.Ratings`, not ``X``, so
scikit-learn's estimator checks do not apply to them; ``tests/test_estimator_contract.py``
holds each to the same contract (clone, parameter round trip, pickle round trip with
identical predictions, the not-fitted error).
"""

from __future__ import annotations

from typing import ClassVar

from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError as _SkNotFittedError


class NotFittedError(_SkNotFittedError, RuntimeError):
    """The estimator was used before ``fit`` (scikit-learn's, which is a ValueError and an
    AttributeError; a RuntimeError too, as this project's own was)."""


class Estimator(BaseEstimator):
    """Subclasses name one attribute that ``fit`` sets (``_fitted_attr``)."""

    _fitted_attr: ClassVar[str]

    def _check_fitted(self) -> None:
        if not hasattr(self, self._fitted_attr):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(train) first")
