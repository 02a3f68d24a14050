"""ml-100k's official 5-fold split: the ``u1.test`` … ``u5.test`` files GroupLens ships.

Each ``uK.test`` holds 20,000 of the 100,000 ratings, the five disjoint, and ``uK.base``
the other 80,000 (``mku.sh``). GLocal-K's ml-100k figure (0.8889) is measured on the
``u1`` fold, so an RMSE set beside it must be too (the Surprise README's table uses five
random folds instead: ``split=kfold``). The split marks the ratings of ``u.data`` whose
(user, movie) pair is in the fold's test file; the file's digest is checked against the
one the registry lists, and its rows must all be ratings of the loaded data.
"""

from __future__ import annotations

import hashlib

import numpy as np

from kmrec_gpu.data.locate import locate
from kmrec_gpu.data.parse import read_table
from kmrec_gpu.data.registry import get_spec
from kmrec_gpu.errors import ChecksumMismatch, DataError, InvalidArgument
from kmrec_gpu.ratings import Ratings
from kmrec_gpu.splits import TTSplit

FOLDS = (1, 2, 3, 4, 5)


def official_fold(r: Ratings, fold: int) -> TTSplit:
    """Train on ``u{fold}.base``'s ratings, test on ``u{fold}.test``'s, from the copy ``r``
    was loaded from."""
    if fold not in FOLDS:
        raise InvalidArgument(f"fold={fold!r}: ml-100k's official folds are {list(FOLDS)}")
    if r.source is None or not r.name.startswith("ml-100k"):
        raise InvalidArgument(f"the official folds are ml-100k's; {r.name!r} has none")
    spec = get_spec("ml-100k")
    member = f"u{fold}.test"
    src = locate(spec, r.source.path, download=False)
    try:
        data, where = src.read(member), src.where(member)
    finally:
        src.close()
    want = spec.member_sha256.get(member)
    got = hashlib.sha256(data).hexdigest()
    if want is not None and got != want:
        raise ChecksumMismatch(f"{where}: sha256 {got}, expected {want} (GroupLens's {member})")
    t = read_table(data, spec.layout["ratings"], where)
    key = r.users.astype(np.int64) * r.n_items + r.items
    try:
        tu = r.user_codes(t["user"].to_numpy())
        ti = r.item_codes(t["item"].to_numpy())
    except KeyError as e:
        raise DataError(f"{where}: {e.args[0]}; expected the users and movies of u.data") from None
    test_key = tu.astype(np.int64) * r.n_items + ti
    mask = np.isin(key, test_key)
    if int(mask.sum()) != len(t):
        raise DataError(f"{where}: {len(t):,} test ratings, {int(mask.sum()):,} of them in "
                        f"{r.source.path}; expected every one to be a rating of u.data")
    return TTSplit(r.subset(np.flatnonzero(~mask)), r.subset(np.flatnonzero(mask)),
                   "ml100k_fold", {"fold": fold, "file": member, "sha256": got})
