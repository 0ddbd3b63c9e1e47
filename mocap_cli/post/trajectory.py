"""Smooth trajectories that stand still where a joint is planted: one small banded least-squares solve.

Foot locking used to pin each planted joint at its contact's median and ease the pin in and out; a pin that
switches on and off moves the estimate's foot error into the leg in a few frames (pops, acceleration error).
Here each planted joint's path is instead the minimiser of

    sum_f d_f |p_f - p^_f|^2  +  sum_f s_f |p_f - p_{f-1}|^2  +  a sum_f |p_{f+1} - 2 p_f + p_{f-1}|^2

(``still_track``): stay near the estimate p^ (weight d), stand still where the joint is planted (s grows with
the contact probability, so a joint settles and leaves smoothly) and accelerate no more than needed. The
normal equations are a symmetric positive-definite pentadiagonal system, solved in O(F) per coordinate by
``scipy.linalg.solveh_banded``.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import solveh_banded


def still_track(
    values: np.ndarray, data: np.ndarray, still: np.ndarray, accel: float | np.ndarray, step: np.ndarray | None = None
) -> np.ndarray:
    """(F, D) the path minimising the module's objective.

    values: (F, D) the estimate p^; data: (F,) weight d_f >= 0 of the estimate in each frame (positive
    somewhere in every run of still frames, or the problem has no unique answer); still: (F - 1,) weight s_f of
    standing still between frames f and f + 1; accel: weight a of the second difference, or (F - 2,) one
    per second difference (frames f, f + 1, f + 2); step: (F - 1, D)
    optional, the step p_{f+1} - p_f that the still term asks for instead of 0 (a body carried by its planted
    feet moves opposite to their motion relative to it).
    """
    values = np.asarray(values, dtype=np.float64)
    num = len(values)
    if num < 3:
        return values.copy()
    # Upper banded storage for solveh_banded: row 2 the diagonal, row 1 the first, row 0 the second
    # super-diagonal (entry [r, j] is A[j - (2 - r), j]).
    bands = np.zeros((3, num))
    bands[2] = data
    bands[2, :-1] += still
    bands[2, 1:] += still
    bands[1, 1:] -= still
    # a * D2^T D2, D2's rows (1, -2, 1) on frames (i, i + 1, i + 2), row i weighted a_i.
    a = np.broadcast_to(np.asarray(accel, dtype=np.float64), (num - 2,))
    bands[2, :-2] += a
    bands[2, 1:-1] += 4.0 * a
    bands[2, 2:] += a
    bands[1, 1:-1] -= 2.0 * a
    bands[1, 2:] -= 2.0 * a
    bands[0, 2:] += a
    rhs = data[:, None] * values
    if step is not None:
        pull = still[:, None] * step
        rhs[1:] += pull
        rhs[:-1] -= pull
    return solveh_banded(bands, rhs, check_finite=False)
