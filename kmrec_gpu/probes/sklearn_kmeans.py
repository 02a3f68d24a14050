"""Seed 002's K-means fit by whatever scikit-learn the running interpreter has.

This module imports only the standard library, NumPy and scikit-learn, so that another
environment's interpreter can run it by path (how :mod:`kmrec_gpu.probes.seed002`
measures one scikit-learn release in isolation)::

    ENV/bin/python -I kmrec_gpu/probes/sklearn_kmeans.py < request.json > answer.json

Request (JSON on stdin): ``shape`` ``[n_rows, n_cols]``, ``rows`` and ``cols`` (where
the ones of the binary matrix are) and ``kmeans`` (keyword arguments of ``KMeans``).
The matrix is made dense int64, as the article's ``CountVectorizer().fit_transform(...)
.toarray()`` gives it (KMeans converts it to float64 itself).
Answer (JSON on stdout): ``labels``, ``inertia``, ``n_iter`` and the versions of
scikit-learn, NumPy and Python that computed them. Nothing is pickled either way.
"""

from __future__ import annotations

import json
import sys


def fit(request: dict) -> dict:
    """Fit ``KMeans(**request["kmeans"])`` on the request's matrix; the answer dict."""
    import numpy as np
    import sklearn
    from sklearn.cluster import KMeans

    n_rows, n_cols = (int(x) for x in request["shape"])
    X = np.zeros((n_rows, n_cols), dtype=np.int64)
    X[np.asarray(request["rows"], dtype=np.int64), np.asarray(request["cols"], dtype=np.int64)] = 1
    km = KMeans(**request["kmeans"])
    labels = km.fit_predict(X)
    return {"labels": [int(x) for x in labels], "inertia": float(km.inertia_),
            "n_iter": int(km.n_iter_), "sklearn": sklearn.__version__,
            "numpy": np.__version__, "python": sys.version.split()[0]}


def main() -> int:
    request = json.load(sys.stdin)
    json.dump(fit(request), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
