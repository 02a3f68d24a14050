"""One seed drives every random stream.

Streams are derived from a single :class:`numpy.random.SeedSequence` by name, so adding
a new stream never shifts the numbers an existing one produces. ``0`` is a seed like any
other; ``None`` is refused so that no result is ever produced from an unrecorded seed.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _name_key(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "little")


def seed_sequence(seed: int, *names: str) -> np.random.SeedSequence:
    """The seed sequence for stream ``names`` under the run seed ``seed``."""
    if seed is None or isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a non-negative int (0 is a valid seed), got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    return np.random.SeedSequence(int(seed), spawn_key=tuple(_name_key(n) for n in names))


def rng(seed: int, *names: str) -> np.random.Generator:
    """A NumPy generator for the named stream."""
    return np.random.default_rng(seed_sequence(seed, *names))


def int_seed(seed: int, *names: str) -> int:
    """A 31-bit integer seed for libraries that want one (scikit-learn, torch)."""
    return int(seed_sequence(seed, *names).generate_state(1, dtype=np.uint32)[0] >> 1)
