"""Seed 001's factorisations of the mean-filled rating matrix, dense and scalable.

The names below load with their submodule on first use, so ``kmrec_gpu.factor.linalg``
alone does not import the models.
"""

from kmrec_gpu._lazy import lazy_exports

__all__ = [
    "FilledMatrix", "IterativeSVDModel", "NMFModel", "TruncatedSVDModel", "fill_matrix",
]

_LAZY = {
    "FilledMatrix": "kmrec_gpu.factor.filled",
    "fill_matrix": "kmrec_gpu.factor.filled",
    "IterativeSVDModel": "kmrec_gpu.factor.models",
    "NMFModel": "kmrec_gpu.factor.models",
    "TruncatedSVDModel": "kmrec_gpu.factor.models",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
