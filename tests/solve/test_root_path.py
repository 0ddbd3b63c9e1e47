"""The root path: depth filtered slowly on each frame's own viewing ray (real walking/standing paths from the
synthetic clips' ground truth), and bone lengths of a side the detector never saw well."""

import numpy as np
import pytest

from conftest import require_shared
from helpers import accuracy_benchmark
from mocap_cli.core.skeleton import JOINT_INDEX, canonical_skeleton
from mocap_cli.solve.camera import DEFAULT_FOV_DEGREES, Pinhole, solve_translation, steady_depth


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


def test_the_field_of_view_sets_the_travel_in_depth():
    """The rendered walk's exact joints and pixels placed through a pinhole camera: with the render's own field
    of view (``accuracy.py --fov truth``) the root path is the true one; with the assumed 60° every depth, and so
    the walk's 3.8 m towards the far end, comes out short by the ratio of the focal lengths (the walk's whole root
    path error on the benchmark: 141 mm, 48 with its true field of view)."""
    gt = np.load(require_shared("data", "synthetic", "walk_16_32", "gt.npz"))
    width, height = (int(v) for v in gt["image_size"])
    cam = gt["joints3d_cam"].astype(np.float64)
    uv = cam @ gt["K"].T
    pixels = uv[..., :2] / uv[..., 2:] - 0.5  # pixel centres at integers, as Pinhole's
    body = cam - cam[:, :1]
    weights = np.ones(cam.shape[:2])
    fov = accuracy_benchmark().true_fov(gt)
    assert abs(Pinhole.from_fov(width, height, fov).focal - gt["K"][0, 0]) < 1e-6
    root = solve_translation(body, pixels, weights, Pinhole.from_fov(width, height, fov))
    assert np.abs(root - cam[:, 0]).max() < 0.01
    assumed = solve_translation(body, pixels, weights, Pinhole.from_fov(width, height, DEFAULT_FOV_DEGREES))
    ratio = Pinhole.from_fov(width, height, DEFAULT_FOV_DEGREES).focal / gt["K"][0, 0]
    assert 0.85 < ratio < 0.9 and fov < 55
    np.testing.assert_allclose(np.ptp(assumed[:, 2], axis=0), ratio * np.ptp(cam[:, 0, 2]), rtol=0.01)


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
