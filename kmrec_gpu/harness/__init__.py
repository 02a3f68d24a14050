"""The benchmark harness behind ``kmrec-bench``, ``kmrec check`` and the CPU-vs-GPU sweep."""
