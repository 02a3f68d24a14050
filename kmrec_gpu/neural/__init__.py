"""Seed 000's networks (as its code runs one, as its text describes one) and seed 003's
hybrid, in PyTorch: one code path for CPU and CUDA."""

from kmrec_gpu.neural.adjusted import adjusted_target, adjusted_values
from kmrec_gpu.neural.estimators import (
    ESTIMATORS,
    SEED000_GENRES,
    AttentionMLP000,
    HybridNN003,
    NeuralRegressor,
    PublishedMLP000,
)

__all__ = ["ESTIMATORS", "SEED000_GENRES", "AttentionMLP000", "HybridNN003",
           "NeuralRegressor", "PublishedMLP000", "adjusted_target", "adjusted_values"]
