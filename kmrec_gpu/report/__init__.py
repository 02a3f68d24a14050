"""The results report: ``results/REPORT.md`` and its plots, built from stored rows only.

``kmrec report`` calls :func:`build_report`; nothing is re-run, so the report can be
rebuilt at any time and changes only when new rows are stored.
"""

from kmrec_gpu.report.build import build_report

__all__ = ["build_report"]
