"""Seed 000's networks (as its code runs one, as its text describes one) and seed 003's
hybrid, in PyTorch: one code path for CPU and CUDA.

The names below load with their submodule on first use: ``kmrec_gpu.neural.adjusted``
(seed 000's target, NumPy) does not import torch through the networks.
"""

from kmrec_gpu._lazy import lazy_exports

__all__ = [
    "AttentionMLP000", "ESTIMATORS", "HybridNN003", "NeuralRegressor", "PublishedMLP000",
    "SEED000_GENRES", "adjusted_target", "adjusted_values",
]

_LAZY = {
    "adjusted_target": "kmrec_gpu.neural.adjusted",
    "adjusted_values": "kmrec_gpu.neural.adjusted",
    "ESTIMATORS": "kmrec_gpu.neural.estimators",
    "SEED000_GENRES": "kmrec_gpu.neural.estimators",
    "AttentionMLP000": "kmrec_gpu.neural.estimators",
    "HybridNN003": "kmrec_gpu.neural.estimators",
    "NeuralRegressor": "kmrec_gpu.neural.estimators",
    "PublishedMLP000": "kmrec_gpu.neural.estimators",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
