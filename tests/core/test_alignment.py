"""Similarity alignment (``core.alignment``), the measure behind the project's MPJPE and PA-MPJPE numbers."""

from __future__ import annotations

import numpy as np

from mocap_cli.core.alignment import procrustes_errors, similarity_align
from mocap_cli.core.rotations import quat_to_matrix


def test_recovers_a_known_rotation_scale_and_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(17, 3))
    q = rng.normal(size=4)
    rot = quat_to_matrix(q / np.linalg.norm(q))
    b = 1.3 * a @ rot.T + np.array([0.5, -2.0, 3.0])
    r, s, t = similarity_align(a, b, scale=True)
    assert np.allclose(r, rot, atol=1e-9) and abs(s - 1.3) < 1e-9 and np.allclose(t, [0.5, -2.0, 3.0], atol=1e-9)
    r1, s1, _ = similarity_align(a, b)  # rotation only: the scale stays 1
    assert s1 == 1.0 and np.allclose(r1, rot, atol=1e-9)


def test_per_frame_errors_ignore_pose_placement_but_not_mirroring():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=(4, 12, 3))
    moved = 0.8 * truth[..., [1, 2, 0]] + 5.0  # a proper rotation (cyclic axes), a scale and a shift
    assert procrustes_errors(moved, truth).max() < 1e-9
    mirrored = truth * np.array([-1.0, 1.0, 1.0])  # no rotation turns a body into its mirror image
    assert procrustes_errors(mirrored, truth).mean() > 0.1
