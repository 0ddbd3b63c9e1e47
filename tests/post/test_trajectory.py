"""The banded least-squares path solve (post/trajectory.py) against the dense normal equations, on a real
(CMU) foot path, and its behaviour at the extremes."""

from __future__ import annotations

import numpy as np

from helpers import real_motion
from mocap_cli.core.skeleton import JOINT_INDEX
from mocap_cli.post.trajectory import still_track


def _ankle_path() -> np.ndarray:
    return real_motion("walk_16_32", frames=90).joints[:, JOINT_INDEX["left_ankle"]][:, [0, 2]]


def test_banded_solve_matches_the_dense_normal_equations():
    path = _ankle_path()
    num = len(path)
    rng = np.random.default_rng(0)
    data, still, accel = rng.uniform(0.5, 2.0, num), rng.uniform(0.0, 500.0, num - 1), rng.uniform(0.0, 30.0, num - 2)
    step = rng.normal(0.0, 0.01, (num - 1, 2))
    d1 = np.diff(np.eye(num), axis=0)
    d2 = np.diff(np.eye(num), 2, axis=0)
    a = np.diag(data) + d1.T @ np.diag(still) @ d1 + d2.T @ np.diag(accel) @ d2
    b = data[:, None] * path + d1.T @ (still[:, None] * step)
    np.testing.assert_allclose(still_track(path, data, still, accel, step), np.linalg.solve(a, b), atol=1e-10)


def test_a_held_stretch_stands_still_and_the_rest_follows_the_estimate():
    path = _ankle_path()
    num = len(path)
    still = np.zeros(num - 1)
    still[20:40] = 1e7  # frames 20..40 held
    out = still_track(path, np.ones(num), still, 0.0)
    assert np.ptp(out[20:41], axis=0).max() < 1e-4
    np.testing.assert_allclose(out[:20], path[:20], atol=1e-12)
    np.testing.assert_allclose(out[41:], path[41:], atol=1e-12)
    # The held frames sit at the estimate's mean over them (the least-squares compromise).
    np.testing.assert_allclose(out[30], path[20:41].mean(axis=0), atol=1e-4)
