"""IK: exact round trip on the skeleton's own poses, twist hints honoured, real motion reproduced."""

import numpy as np
import pytest

from conftest import require_shared
from mocap_cli.core.rotations import quat_apply, quat_from_rotvec
from mocap_cli.core.skeleton import JOINT_INDEX, canonical_skeleton, forward_kinematics
from mocap_cli.solve.ik import TWIST_HINTS, solve_ik


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fk_ik_round_trip_is_exact_on_the_skeleton(seed):
    rng = np.random.default_rng(seed)
    sk = canonical_skeleton().scaled(rng.uniform(0.8, 1.2))
    rotations = quat_from_rotvec(rng.normal(size=(300, 24, 3)) * 0.7)
    root = rng.normal(size=(300, 3))
    joints, _ = forward_kinematics(sk, rotations, root)
    local, root_ik = solve_ik(sk, joints)
    again, _ = forward_kinematics(sk, local, root_ik)
    assert np.abs(again - joints).max() < 1e-3  # 1 mm
    assert np.allclose(np.linalg.norm(local, axis=-1), 1.0)


def test_twist_hints_recover_the_true_rotations():
    rng = np.random.default_rng(3)
    sk = canonical_skeleton()
    rotations = quat_from_rotvec(rng.normal(size=(100, 24, 3)) * 0.5)
    joints, glob = forward_kinematics(sk, rotations, np.zeros((100, 3)))
    hints = {
        key: quat_apply(glob[:, JOINT_INDEX[h.joint]], np.broadcast_to(np.array(h.rest), (100, 3)))
        for key, h in TWIST_HINTS.items()
    }
    local, _ = solve_ik(sk, joints, hints)
    _, glob_ik = forward_kinematics(sk, local, np.zeros((100, 3)))
    for name in ("pelvis", "spine3", "neck", "head", "left_ankle", "right_wrist"):
        j = JOINT_INDEX[name]
        dot = np.abs(np.sum(glob_ik[:, j] * glob[:, j], axis=-1))
        # Hints fade out where they are almost parallel to the bone; elsewhere rotations are exact.
        assert np.median(dot) > 0.9999, name


def test_real_motion_is_reproduced_by_the_fitted_skeleton():
    """CMU motion (via the rendered clips' exact skeleton) through fitting + IK + FK."""
    gt = np.load(require_shared("data", "synthetic", "walk_16_32", "gt.npz"))
    joints = gt["joints3d_world"][:, :24]
    sk = canonical_skeleton().fitted_to(joints)
    local, root = solve_ik(sk, joints)
    again, _ = forward_kinematics(sk, local, root)
    err = np.linalg.norm(again - joints, axis=-1)
    legs = [JOINT_INDEX[n] for n in ("left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle")]
    assert err[:, legs].max() < 1e-3  # the hip line is matched exactly, the legs are rigid chains
    assert err.mean() < 0.015  # the rendered body's spine is not rigid: a few mm elsewhere


def test_global_rotation_of_a_turned_body():
    sk = canonical_skeleton()
    turn = quat_from_rotvec(np.array([[0.0, np.pi / 2, 0.0]]))  # face +X
    rotations = np.tile(np.array([0, 0, 0, 1.0]), (1, 24, 1))
    rotations[:, 0] = turn
    joints, _ = forward_kinematics(sk, rotations, np.array([[0.0, 1.0, 0.0]]))
    local, _ = solve_ik(sk, joints)
    assert np.abs(np.abs(np.sum(local[0, 0] * turn[0])) - 1) < 1e-9
    assert np.allclose(np.abs(local[0, 1:, 3]), 1.0, atol=1e-6)  # everything else stays at rest
