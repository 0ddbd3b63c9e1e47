"""One floor for several people (``shared_world.on_one_floor``): each model reads the camera's pitch and roll
from its own person, so two people filmed by one camera came out with floors 8-10° apart; turned about the
camera to one up, each still projects where the camera saw them."""

import numpy as np

from conftest import require_shared
from mocap_cli.solve.camera_pose import solved_camera
from mocap_cli.solve.posing import motion_from_camera_joints
from mocap_cli.solve.shared_world import on_one_floor

UP = np.array([0.0, 1.0, 0.0])
SIZE = (640, 480)


def _person(clip: str, frames: int = 60):
    """A Motion from the exact camera-frame 3D of a rendered clip (the camera 8-10° above, as filmed)."""
    joints = np.load(require_shared("data", "synthetic", clip, "gt.npz"))["smpl24"][:frames].astype(np.float64)
    return motion_from_camera_joints(joints, np.ones(joints.shape[:2]), 30.0)


def _seen(motion):
    """Pixels (F, 24, 2) of the motion's joints through the camera it recorded, and the world's up in the
    camera's axes."""
    camera = solved_camera(motion.provenance, *SIZE)
    pixels, _ = camera.project(motion.joints[:, :24])
    return pixels, camera.pose.rotation.T @ UP


def test_two_people_share_one_up_and_are_seen_where_they_were():
    a, b = _person("run_49_04"), _person("squat_14_06")
    (pa, up_a), (pb, up_b) = _seen(a), _seen(b)
    assert np.degrees(np.arccos(up_a @ up_b)) > 5.0  # each model's own up: apart
    a2, b2 = on_one_floor([a, b], [60.0, 30.0])
    (pa2, up_a2), (pb2, up_b2) = _seen(a2), _seen(b2)
    np.testing.assert_allclose(up_a2, up_b2, atol=1e-7)  # the recorded poses keep 9 decimals
    # The common up is the seen-frames-weighted mean: nearer the runner's (seen twice as long).
    assert np.arccos(np.clip(up_a2 @ up_a, -1, 1)) < np.arccos(np.clip(up_a2 @ up_b, -1, 1))
    np.testing.assert_allclose(pa2, pa, atol=1e-6)
    np.testing.assert_allclose(pb2, pb, atol=1e-6)
    for m in (a2, b2):  # grounded again: the lowest joint just above the floor
        assert -0.01 < m.joints[..., 1].min() < 0.1
    assert a.provenance == _person("run_49_04").provenance  # the inputs are left as they were
