"""Library messages go through logging: warnings reach stderr with no set-up, information
waits for the command lines to ask for it, and the CLI handler writes to the stderr of
the moment (so a redirected or captured stream gets them)."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

from kmrec_gpu import log


def test_warnings_show_without_set_up_and_information_waits():
    # a fresh interpreter: pytest's own log capture is not there to intercept
    code = ("from kmrec_gpu import log; log.get('data.x').warning('a warning'); "
            "log.get('data.x').info('some information')")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert p.returncode == 0, p.stderr
    assert "a warning" in p.stderr and "some information" not in p.stderr


def test_the_cli_handler_writes_to_the_current_stderr(capsys, monkeypatch):
    logger = logging.getLogger(log.ROOT)
    monkeypatch.setattr(logger, "handlers", [])
    log.for_cli()
    log.for_cli()  # once per process: no second handler
    assert len(logger.handlers) == 1
    log.get("data.locate").info("downloading x ...")
    assert capsys.readouterr().err == "downloading x ...\n"
