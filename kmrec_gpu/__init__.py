"""kmrec_gpu: a GPU-accelerated benchmark harness for K-means-based movie recommenders."""

from kmrec_gpu.errors import DataError, KmrecError
from kmrec_gpu.ratings import RatingScale, Ratings

__version__ = "0.1.0"

__all__ = ["DataError", "KmrecError", "RatingScale", "Ratings", "__version__"]
