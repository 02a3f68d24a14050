"""Top-k lists from rankings shared by groups of users (numba, CPU).

The clustering recommenders score every user of a cluster alike, so a cluster's ranking
of the catalogue is sorted once and each user's list is the head of it with the user's
training items skipped: O(k + seen) per user instead of a dense users × items score block
cut by a partial sort, which at 160k users × 62k items (synthetic 25M) took minutes.

Rankings are concatenated: group ``g``'s items are ``orders[starts[g]:starts[g + 1]]``,
best first. ``seen`` rows are CSR arrays aligned with the users asked for. A list shorter
than ``k`` is padded with ``-1``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(inline="always")
def _flag(flags, indptr, indices, j, value):  # pragma: no cover - jit
    """Set ``flags`` at row j's indices (a user's training items) to ``value``."""
    for p in range(indptr[j], indptr[j + 1]):
        flags[indices[p]] = value


@njit(cache=True, nogil=True)
def walk_top_k(orders, starts, groups, seen_indptr, seen_indices, n_items,
               k):  # pragma: no cover - jit
    """For each user j: the first ``k`` items of group ``groups[j]``'s ranking that are
    not among ``seen_indices[seen_indptr[j]:seen_indptr[j + 1]]``."""
    out = np.full((groups.size, k), -1, dtype=np.int64)
    mark = np.zeros(n_items, dtype=np.bool_)
    for j in range(groups.size):
        _flag(mark, seen_indptr, seen_indices, j, True)
        g = groups[j]
        c = 0
        for p in range(starts[g], starts[g + 1]):
            it = orders[p]
            if not mark[it]:
                out[j, c] = it
                c += 1
                if c == k:
                    break
        _flag(mark, seen_indptr, seen_indices, j, False)
    return out


@njit(cache=True, nogil=True)
def walk_genre_slots(orders, starts, n_genres, labels, slots, scores, fill, seen_indptr,
                     seen_indices, n_items, k):  # pragma: no cover - jit
    """Seed 000's genre-share lists. User j of cluster ``labels[j]`` (``-1``: none) takes
    ``slots[j, g]`` items from the ranking of (cluster, genre g), group
    ``labels[j] * n_genres + g``, skipping seen items and items already taken; the picks
    are listed by ``scores[cluster]`` descending, then item code; the rest of the ``k``
    come from ``fill`` (global popularity), skipping the same."""
    out = np.full((labels.size, k), -1, dtype=np.int64)
    taken = np.zeros(n_items, dtype=np.bool_)
    picks = np.empty(k, dtype=np.int64)
    for j in range(labels.size):
        _flag(taken, seen_indptr, seen_indices, j, True)
        c = labels[j]
        n = 0
        if c >= 0:
            sc = scores[c]
            for g in range(n_genres):
                want = slots[j, g]
                got = 0
                grp = c * n_genres + g
                p = starts[grp]
                while got < want and p < starts[grp + 1]:
                    it = orders[p]
                    p += 1
                    if not taken[it]:
                        taken[it] = True
                        # insertion by (score descending, item ascending)
                        q = n
                        while q > 0 and (sc[picks[q - 1]] < sc[it] or (
                                sc[picks[q - 1]] == sc[it] and picks[q - 1] > it)):
                            picks[q] = picks[q - 1]
                            q -= 1
                        picks[q] = it
                        n += 1
                        got += 1
        for p in range(fill.size):
            if n >= k:
                break
            it = fill[p]
            if not taken[it]:
                taken[it] = True
                picks[n] = it
                n += 1
        for q in range(n):
            out[j, q] = picks[q]
            taken[picks[q]] = False
        _flag(taken, seen_indptr, seen_indices, j, False)
    return out


@njit(cache=True, nogil=True)
def top_k_rows(scores, ex_indptr, ex_indices, k):  # pragma: no cover - jit
    """Each row's ``k`` best items, score descending and then item code, leaving out the
    row's ``ex_indices[ex_indptr[j]:ex_indptr[j + 1]]`` and scores that are ``-inf`` or
    NaN. One pass over the row keeping a sorted buffer of ``k``: an item scanned later has
    a higher code, so it enters only by beating the buffer's last score strictly, and a
    tie at the cut goes to the lower code (a partial sort picks among tied items at the
    cut arbitrarily)."""
    n, m = scores.shape
    out = np.full((n, k), -1, dtype=np.int64)
    best = np.empty(k, dtype=np.float64)
    mark = np.zeros(m, dtype=np.bool_)
    for j in range(n):
        _flag(mark, ex_indptr, ex_indices, j, True)
        c = 0
        for i in range(m):
            v = scores[j, i]
            if not v > -np.inf:  # -inf and NaN
                continue
            if c == k and not v > best[k - 1]:
                continue
            if mark[i]:
                continue
            q = c if c < k else k - 1
            while q > 0 and best[q - 1] < v:
                if q < k:
                    best[q] = best[q - 1]
                    out[j, q] = out[j, q - 1]
                q -= 1
            best[q] = v
            out[j, q] = i
            if c < k:
                c += 1
        _flag(mark, ex_indptr, ex_indices, j, False)
    return out
