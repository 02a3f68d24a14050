"""kmrec_gpu: a GPU-accelerated benchmark harness for K-means-based movie recommenders.

Importing the package loads only its error classes: :class:`Ratings` and
:class:`RatingScale` (which need pandas and SciPy) load on first use, so a command that
never touches ratings (``kmrec --help``, the Hydra app's start-up) does not pay for them.
"""

from kmrec_gpu._lazy import lazy_exports
from kmrec_gpu.errors import DataError, KmrecError

__version__ = "0.1.0"

__all__ = ["DataError", "KmrecError", "RatingScale", "Ratings", "__version__"]

_LAZY = {"RatingScale": "kmrec_gpu.ratings", "Ratings": "kmrec_gpu.ratings"}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
