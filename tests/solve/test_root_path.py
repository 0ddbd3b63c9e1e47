"""The root path: depth filtered slowly on each frame's own viewing ray (real walking/standing paths from the
synthetic clips' ground truth), and bone lengths of a side the detector never saw well."""

import numpy as np
import pytest

from conftest import require_shared
from mocap_cli.core.skeleton import JOINT_INDEX, canonical_skeleton
from mocap_cli.solve.camera import steady_depth


def camera_path(name: str) -> np.ndarray:
    return np.load(require_shared("data", "synthetic", name, "gt.npz"))["joints3d_cam"][:, 0].astype(np.float64)


@pytest.mark.parametrize("name", ["walk_16_32", "jumpingjacks_14_06", "turn_105_53"])
def test_depth_noise_is_removed_and_rays_are_kept(name):
    """Depth from the body's apparent size: the true path with a 3 % size error per frame (pose noise)."""
    truth = camera_path(name)
    rng = np.random.default_rng(0)
    noisy = truth * (1.0 + 0.03 * rng.standard_normal(len(truth)))[:, None]  # along each viewing ray
    steady = steady_depth(noisy, 30.0)
    before = np.linalg.norm(noisy - truth, axis=1).mean()
    after = np.linalg.norm(steady - truth, axis=1).mean()
    assert after < 0.5 * before
    rays = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    assert np.allclose(steady / np.linalg.norm(steady, axis=1, keepdims=True), rays, atol=1e-12)


def test_a_true_path_passes_unchanged():
    truth = camera_path("walk_16_32")  # walks 4.4 → 8.2 m from the camera
    error = np.linalg.norm(steady_depth(truth, 30.0) - truth, axis=1)
    assert error.mean() < 0.015 and error.max() < 0.05  # ≤ 5 cm at the clip's ends, 8 m away


def test_unseen_side_takes_the_seen_sides_length():
    """A side view: the far arm never reaches confidence 0.5, so only the near arm's length is evidence."""
    sk = canonical_skeleton()
    joints = np.repeat(sk.rest_positions()[None], 10, axis=0)
    joints[:, JOINT_INDEX["left_elbow"]] = joints[:, JOINT_INDEX["left_shoulder"]] + [0.24, 0.0, 0.0]
    joints[:, JOINT_INDEX["left_wrist"]] = joints[:, JOINT_INDEX["left_elbow"]] + [0.20, 0.0, 0.0]
    confidence = np.ones((10, 24))
    confidence[:, [JOINT_INDEX[n] for n in ("right_elbow", "right_wrist")]] = 0.1
    lengths = sk.fitted_to(joints, confidence).bone_lengths()
    for name, want in [("left_elbow", 0.24), ("right_elbow", 0.24), ("left_wrist", 0.20), ("right_wrist", 0.20)]:
        assert lengths[JOINT_INDEX[name]] == pytest.approx(want, abs=1e-9), name
