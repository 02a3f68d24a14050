"""Seed 001's factorisations of the mean-filled rating matrix, dense and scalable."""

from kmrec_gpu.factor.filled import FilledMatrix, fill_matrix
from kmrec_gpu.factor.models import IterativeSVDModel, NMFModel, TruncatedSVDModel

__all__ = ["FilledMatrix", "IterativeSVDModel", "NMFModel", "TruncatedSVDModel", "fill_matrix"]
