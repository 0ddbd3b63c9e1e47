"""The camera pose the models record (``solve.camera_pose``): it must map the Motion's world back to the camera the
joints came from, through gravity alignment and grounding, for both ways a Motion is built, and, for a camera that
turned and travelled (the orbiting clip dance_05_02), frame by frame."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import require_shared
from mocap_cli.core.motion import Motion
from mocap_cli.models.mesh.adapter import motion_from_mesh_sequence
from mocap_cli.models.mesh.crops import SquareBoxes, crop_cam_to_translation
from mocap_cli.models.mesh.inference import MeshSequence
from mocap_cli.pipeline import RunOptions, export_existing
from mocap_cli.post.resample import resample_motion
from mocap_cli.solve.camera import Pinhole
from mocap_cli.solve.camera_motion import CameraMotion
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
    windows = SquareBoxes(
        np.column_stack([np.linspace(300, 340, frames), np.full(frames, 240.0)]), np.full(frames, 300.0)
    )
    seq = MeshSequence(rotmats, np.zeros((frames, 10)), cam)
    focal = Pinhole.from_fov(640, 480).focal
    motion = motion_from_mesh_sequence(seq, windows, (640, 480), 30.0, focal=focal)
    pose = solved_camera(motion.provenance, 640, 480).pose
    expected = crop_cam_to_translation(cam, windows, (640, 480), focal)
    np.testing.assert_allclose(pose.to_camera(motion.root_translation), expected, atol=1e-9)


def orbit_clip() -> tuple[np.lib.npyio.NpzFile, np.ndarray, CameraMotion]:
    """dance_05_02's ground truth: camera-frame joints (F, 24, 3) and the true camera turn (camera f → camera 0;
    it travels as it turns, so not a pan) that ``undo_camera_rotation`` is given."""
    gt = np.load(require_shared("data", "synthetic", "dance_05_02", "gt.npz"))
    turns = np.einsum("ij,fkj->fik", gt["R"][0], gt["R"])
    return gt, gt["joints3d_cam"][:, :24].astype(np.float64), CameraMotion(turns, np.zeros(len(turns), dtype=bool))


def true_intrinsics(gt) -> Pinhole:
    k = gt["K"].astype(np.float64)
    return Pinhole(k[0, 0], k[0, 2], k[1, 2])


@pytest.mark.parametrize("pans", [0, 3])
def test_turning_camera_records_a_pose_per_frame_that_reprojects_the_joints(tmp_path, pans):
    """The world root path of an orbit is a guess (the camera's travel is unknown), but whatever it is, each
    frame's recorded pose must take the Motion's joints back to the camera-frame joints the posing got, and the
    clip's true lens must then land them on the rendered 2D joints: frame 0 and frame 149 (camera ~100° round)
    alike; also where steps count as pans (``pans``: every n-th), which place the root differently. The pose
    survives the .npz round trip."""
    gt, joints_cam, turning = orbit_clip()
    if pans:
        turning = CameraMotion(turning.rotations, np.arange(len(joints_cam)) % pans == 0)
    motion = motion_from_camera_joints(joints_cam, np.ones(joints_cam.shape[:2]), 30.0, camera=turning)
    path = tmp_path / "orbit.npz"
    motion.save_npz(path)
    loaded = Motion.load_npz(path)
    pose = CameraPose.from_json(loaded.provenance[PROVENANCE_KEY])
    assert pose.per_frame and pose.rotation.shape == (150, 3, 3) and pose.translation.shape == (150, 3)
    original = CameraPose.from_json(motion.provenance[PROVENANCE_KEY])
    np.testing.assert_allclose(pose.rotation, original.rotation, atol=0)
    np.testing.assert_allclose(pose.translation, original.translation, atol=0)
    assert np.allclose(np.einsum("fij,fkj->fik", pose.rotation, pose.rotation), np.eye(3), atol=1e-6)  # gt is float32
    back = pose.to_camera(motion.joints)
    error = np.linalg.norm(back - joints_cam, axis=-1)
    # What remains is our IK's fit of this body (3.7 cm at the head, the same without the camera turn); a wrong
    # pose for a frame would be off by metres.
    assert error.max() < 0.05 and error.mean() < 0.01, (error.max(), error.mean())
    # Frame by frame through ``at`` (what the preview does) gives the same points.
    np.testing.assert_allclose(pose.at(120).to_camera(motion.joints[120]), back[120], atol=1e-12)
    camera = SolvedCamera(true_intrinsics(gt), pose)
    pixels, depth = camera.project(motion.joints)
    assert np.all(depth > 0)
    drawn = np.linalg.norm(pixels - gt["joints2d"][:, :24], axis=-1)
    assert drawn.mean() < 2.0 and drawn[-1].mean() < 2.0, (drawn.mean(), drawn[-1].mean())
    # One pose for the whole clip cannot: the camera turned ~100° away from where frame 0 had it.
    first = SolvedCamera(true_intrinsics(gt), pose.at(0)).project(motion.joints[-1])[0]
    assert np.nanmean(np.linalg.norm(first - gt["joints2d"][-1, :24], axis=-1)) > 50.0


def test_still_camera_keeps_one_compact_pose():
    _, joints_cam, _ = orbit_clip()
    motion = motion_from_camera_joints(
        joints_cam, np.ones(joints_cam.shape[:2]), 30.0, camera=CameraMotion.still(len(joints_cam))
    )
    text = motion.provenance[PROVENANCE_KEY]
    pose = CameraPose.from_json(text)
    assert not pose.per_frame and pose.rotation.shape == (3, 3) and len(text) < 400
    assert pose.at(99) is pose


def test_old_single_pose_records_still_load():
    """The record as the first version with a camera pose wrote it (spaced JSON, one pose)."""
    old = (
        '{"rotation": [[1.0, 0.0, 0.0], [0.0, -0.98, 0.198997487], [0.0, -0.198997487, -0.98]], '
        '"translation": [0.1, 1.2, -3.0]}'
    )
    camera = solved_camera({PROVENANCE_KEY: old, "fov_degrees": "60"}, 640, 480)
    assert camera is not None and not camera.pose.per_frame
    np.testing.assert_allclose(camera.at(7).pose.translation, [0.1, 1.2, -3.0])


def test_per_frame_poses_follow_video_frames_through_resampling(tmp_path):
    """Poses are indexed by video frame: after ``--fps 60`` (here and in ``mocap export``) motion frame 2i is
    video frame i, and pose i still projects it onto the rendered joints of frame i."""
    gt, joints_cam, turning = orbit_clip()
    motion = motion_from_camera_joints(joints_cam, np.ones(joints_cam.shape[:2]), 30.0, camera=turning)
    source = tmp_path / "orbit.npz"
    motion.save_npz(source)
    target = tmp_path / "orbit60.npz"
    export_existing(source, RunOptions(exports=(target,), fps=60.0))
    for resampled in (resample_motion(motion, 60.0), Motion.load_npz(target)):
        assert resampled.num_frames == 2 * motion.num_frames - 1
        camera = solved_camera(resampled.provenance, 640, 480)
        assert camera is not None
        camera = SolvedCamera(true_intrinsics(gt), camera.pose)
        frames = range(0, motion.num_frames, 7)
        pixels = np.stack([camera.at(i).project(resampled.joints[2 * i])[0] for i in frames])
        error = np.linalg.norm(pixels - gt["joints2d"][list(frames), :24], axis=-1)
        assert error.mean() < 2.0, error.mean()


def test_pose_shapes_are_checked():
    with pytest.raises(ValueError):
        CameraPose(np.zeros((4, 3, 3)), np.zeros((3, 3)))
    with pytest.raises(ValueError):
        CameraPose(np.eye(3), np.zeros((1, 3)))
    pose = CameraPose(np.stack([np.eye(3)] * 2), np.zeros((2, 3)))
    with pytest.raises(ValueError):
        pose.to_camera(np.zeros((3, 24, 3)))
