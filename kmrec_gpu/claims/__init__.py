"""The published claims: protocols declared as data (``bench/conf/claim/``), their cells
run through the harness, ``results/claims.json`` rebuilt from stored rows, one verdict
rule."""

from kmrec_gpu.claims.build import MissingRows, build_claims
from kmrec_gpu.claims.protocol import Protocol, ProtocolError, load_protocols
from kmrec_gpu.claims.record import (
                                     DEFAULT_PATH,
                                     load_claims,
                                     validate_claim,
                                     validate_claims,
                                     write_claims,
)
from kmrec_gpu.claims.run import run_claims
from kmrec_gpu.claims.verdict import VERDICTS, conclusion_holds, figure_verdict

__all__ = ["DEFAULT_PATH", "VERDICTS", "MissingRows", "Protocol", "ProtocolError",
           "build_claims", "conclusion_holds", "figure_verdict", "load_claims",
           "load_protocols", "run_claims", "validate_claim", "validate_claims",
           "write_claims"]
