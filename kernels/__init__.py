"""Triton kernels for kmrec_gpu's hot loops (one file per kernel, each with a reference).

Importing this package never imports Triton: kernels are loaded lazily, so the library
works where Triton is absent.
"""
