"""The camera pose the models record (``solve.camera_pose``): it must map the Motion's world back to the camera the
joints came from, through gravity alignment and grounding, for both ways a Motion is built."""

from __future__ import annotations

import numpy as np
from conftest import require_shared

from mocap_cli.models.mesh.adapter import motion_from_mesh_sequence
from mocap_cli.models.mesh.crops import SquareBoxes, crop_cam_to_translation
from mocap_cli.models.mesh.inference import MeshSequence
from mocap_cli.solve.camera import Pinhole
from mocap_cli.solve.camera_pose import (
    PROVENANCE_KEY,
    CameraPose,
    SolvedCamera,
    solved_camera,
)
from mocap_cli.solve.posing import motion_from_camera_joints


def test_posed_motion_projects_onto_the_rendered_joints():
    """Ground-truth camera-frame joints of a rendered clip (its camera tilted 10° down) → our world → back through
    the recorded pose and the clip's true intrinsics: the rendered 2D joints."""
    gt = np.load(require_shared("data", "synthetic", "jump_13_11", "gt.npz"))
    joints_cam = gt["joints3d_cam"][:, :24].astype(np.float64)
    motion = motion_from_camera_joints(joints_cam, np.ones(joints_cam.shape[:2]), 30.0)
    pose = CameraPose.from_json(motion.provenance[PROVENANCE_KEY])
    assert np.allclose(pose.rotation @ pose.rotation.T, np.eye(3), atol=1e-7)  # stored to 9 decimals
    back = pose.to_camera(motion.joints)
    # IK on a fitted skeleton reproduces the joints to millimetres; a wrong pose would be off by metres.
    assert np.abs(back - joints_cam).max() < 0.03 and np.linalg.norm(back - joints_cam, axis=-1).mean() < 0.01
    k = gt["K"].astype(np.float64)
    camera = SolvedCamera(Pinhole(k[0, 0], k[0, 2], k[1, 2]), pose)
    pixels, depth = camera.project(motion.joints)
    assert np.all(depth > 0)
    assert np.linalg.norm(pixels - gt["joints2d"][:, :24], axis=-1).mean() < 2.0
    # The gravity alignment recovered the render camera's pitch: its view axis points 10° below the horizon.
    looking_down = np.degrees(np.arcsin(-pose.rotation[1, 2]))
    assert abs(looking_down - 10.0) < 3.0, looking_down


def test_mesh_motion_records_the_camera_of_its_root_path():
    rng = np.random.default_rng(0)
    frames = 20
    upright = np.diag([1.0, -1.0, -1.0])  # facing the camera, in the networks' y-down camera frame
    tilt = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(0.2), -np.sin(0.2)], [0.0, np.sin(0.2), np.cos(0.2)]])
    rotmats = np.tile(np.eye(3), (frames, 24, 1, 1))
    rotmats[:, 0] = tilt @ upright
    cam = np.column_stack([np.full(frames, 0.9), rng.normal(0, 0.05, frames), rng.normal(0, 0.05, frames)])
    windows = SquareBoxes(np.column_stack([np.linspace(300, 340, frames), np.full(frames, 240.0)]),
                          np.full(frames, 300.0))
    seq = MeshSequence(rotmats, np.zeros((frames, 10)), cam)
    focal = Pinhole.from_fov(640, 480).focal
    motion = motion_from_mesh_sequence(seq, windows, (640, 480), 30.0, focal=focal)
    pose = solved_camera(motion.provenance, 640, 480).pose
    expected = crop_cam_to_translation(cam, windows, (640, 480), focal)
    np.testing.assert_allclose(pose.to_camera(motion.root_translation), expected, atol=1e-9)
