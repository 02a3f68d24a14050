"""The library's messages go through :mod:`logging` under the ``kmrec_gpu`` logger; the
command lines show them on stderr (:func:`for_cli`). Used as a library without any
logging set up, warnings still reach stderr (Python's last-resort handler) and
information stays quiet, as a library's should."""

from __future__ import annotations

import logging
import sys

ROOT = "kmrec_gpu"


class _Stderr(logging.Handler):
    """Writes to the ``sys.stderr`` of the moment (a captured or redirected stream too)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:  # pragma: no cover - as logging.Handler does
            self.handleError(record)


def get(name: str) -> logging.Logger:
    return logging.getLogger(name if name.startswith(ROOT) else f"{ROOT}.{name}")


def for_cli(level: int = logging.INFO) -> None:
    """Show the library's messages (information and up) on stderr, once per process."""
    logger = logging.getLogger(ROOT)
    if not any(isinstance(h, _Stderr) for h in logger.handlers):
        logger.addHandler(_Stderr())
    logger.setLevel(level)
    logger.propagate = False
