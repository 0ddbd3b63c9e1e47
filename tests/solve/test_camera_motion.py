"""The filming camera's rotation from the background: the orbiting synthetic clip dance_05_02 (camera turns
~100° in 5 s) against its ground-truth camera, a static clip stays still, and undoing the rotation puts the
body back in the world's axes."""

import numpy as np
import pytest

from conftest import require_shared
from mocap_cli.capture.video import iter_frames, probe
from mocap_cli.solve.camera import Pinhole
from mocap_cli.solve.camera_motion import CameraMotion, estimate_camera_motion
from mocap_cli.solve.posing import undo_camera_rotation


def gt_boxes(gt) -> np.ndarray:
    """Person boxes (F, 4) from the ground-truth 2D joints (what the detector's boxes approximate)."""
    p = gt["joints2d"]
    return np.concatenate([p.min(axis=1) - 15, p.max(axis=1) + 15], axis=1)


def yaw_degrees(rotations: np.ndarray) -> np.ndarray:
    """Heading (about the camera's vertical) of camera f's forward axis seen from camera 0, (F,)."""
    return np.degrees(np.arctan2(rotations[:, 0, 2], rotations[:, 2, 2]))


def clip_motion(name: str, true_lens: bool = False) -> tuple[CameraMotion, np.lib.npyio.NpzFile]:
    folder = require_shared("data", "synthetic", name)
    gt = np.load(folder / "gt.npz")
    info = probe(folder / "video.mp4")
    if true_lens:
        camera = Pinhole(float(gt["K"][0, 0]), float(gt["K"][0, 2]), float(gt["K"][1, 2]))
    else:
        camera = Pinhole.from_fov(info.width, info.height)  # the pipeline's assumed 60°
    return estimate_camera_motion(iter_frames(folder / "video.mp4", info=info), gt_boxes(gt), camera, 30.0), gt


@pytest.mark.parametrize("true_lens, tolerance", [(True, 0.05), (False, 0.15)])
def test_orbiting_camera_is_followed(true_lens, tolerance):
    """With the clip's own lens the turn is found within 5 %; with the assumed 60° field of view (the lens has
    54°) every angle comes out ~12 % small, which is the tolerance then."""
    motion, gt = clip_motion("dance_05_02", true_lens)
    truth = np.einsum("ij,fkj->fik", gt["R"][0], gt["R"])  # camera f axes → camera 0 axes
    ours, want = yaw_degrees(motion.rotations), yaw_degrees(truth)
    assert abs(want[-1]) > 90  # the clip really orbits
    assert np.abs(ours - want).max() < tolerance * abs(want[-1])
    assert not motion.panning[1:].all()  # it moves as well as turns: not mistaken for a pan


@pytest.mark.parametrize("name", ["walk_16_32", "kick_10_05"])
def test_static_camera_stays_still(name):
    motion, _ = clip_motion(name)
    assert not motion.moving


def test_undoing_the_true_rotation_restores_world_orientation():
    gt = np.load(require_shared("data", "synthetic", "dance_05_02", "gt.npz"))
    rot = np.einsum("ij,fkj->fik", gt["R"][0], gt["R"])
    cam = gt["joints3d_cam"][:, :24]
    body, _ = undo_camera_rotation(cam, {}, CameraMotion(rot, np.zeros(len(rot), dtype=bool)))
    world = gt["joints3d_world"][:, :24]
    expected = np.einsum("ij,fkj->fki", gt["R"][0], world - world[:, :1])
    assert np.abs((body - body[:, :1]) - expected).max() < 1e-6
    # Frame 0 is where it was; a pan (no travel) would give the exact path too.
    assert np.allclose(body[0], cam[0])
    panned = CameraMotion(rot, np.ones(len(rot), dtype=bool))
    body, _ = undo_camera_rotation(cam, {}, panned)
    assert np.abs(body - np.einsum("fij,fkj->fki", rot, cam)).max() < 1e-5


@pytest.mark.slow
def test_detector_tracks_the_background_on_the_way():
    """``detect`` tracks the background on the frames it decodes anyway; the result equals a separate pass."""
    from mocap_cli.capture.detect import detect
    from mocap_cli.solve.camera_motion import camera_motion_from_pairs

    path = require_shared("data", "synthetic", "dance_05_02", "video.mp4")
    info = probe(path)
    track = detect(iter_frames(path, info=info), info)
    camera = Pinhole.from_fov(info.width, info.height)
    inline = camera_motion_from_pairs(track.background, track.num_frames, camera)
    separate = estimate_camera_motion(iter_frames(path, info=info), track.boxes, camera, 30.0)
    assert inline.moving
    assert np.abs(inline.rotations - separate.rotations).max() < 1e-9


def heading_degrees(joints: np.ndarray, left: int, right: int) -> np.ndarray:
    """(F,) the body's heading about the vertical (Y up) from its hip line."""
    lateral = joints[:, left] - joints[:, right]
    return np.degrees(np.arctan2(lateral[:, 2], lateral[:, 0]))


@pytest.mark.slow
@pytest.mark.parametrize("model, spread", [("mediapipe", 15.0), ("mixste", 20.0)])
def test_dance_keeps_its_heading_in_the_world(tmp_path, model, spread):
    """dance_05_02, filmed by a camera orbiting 100° in 5 s: our body heading against the ground truth's stays
    steady (it drifted with the camera: spread 33°), and MPJPE after one rotation (and scale) for the clip drops
    from 138 mm towards raw MediaPipe's per-frame camera-frame 102 mm. The lifter (shipped weights) undoes the
    camera's turn too: without it, its MPJPE here was 130 mm; its own heading errors (the spread left) measured
    17°."""
    from mocap_cli.core.alignment import similarity_align
    from mocap_cli.core.skeleton import JOINT_INDEX
    from mocap_cli.pipeline import RunOptions, run_clip

    folder = require_shared("data", "synthetic", "dance_05_02")
    gt = np.load(folder / "gt.npz")
    motion = run_clip(folder / "video.mp4", RunOptions(exports=(tmp_path / "out.npz",), model=model)).motion
    truth = gt["joints3d_world"][:, :24]
    left, right = JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"]
    diff = heading_degrees(motion.joints, left, right) - heading_degrees(truth, left, right)
    diff = np.degrees(np.unwrap(np.radians(diff)))
    camera_yaw = yaw_degrees(np.einsum("ij,fkj->fik", gt["R"][0], gt["R"]))
    slope = np.polyfit(camera_yaw, diff, 1)[0]
    assert abs(slope) < 0.25  # the error no longer follows the camera (it did, slope ≈ 1)
    assert np.std(diff) < spread  # what is left is the model's own error (up to 33° in the pirouette)

    limbs = [
        JOINT_INDEX[f"{s}_{p}"]
        for s in ("left", "right")
        for p in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
    ]
    ours = motion.joints - motion.joints[:, [left, right]].mean(axis=1, keepdims=True)
    want = truth - truth[:, [left, right]].mean(axis=1, keepdims=True)
    # One rotation and one scale for the clip: a body's size is a guess from one camera (the lifter's dancer comes
    # out too big). Measured: mediapipe 99.3 mm, mixste 78.1 mm.
    rot, scale, shift = similarity_align(ours[:, limbs].reshape(-1, 3), want[:, limbs].reshape(-1, 3), scale=True)
    mpjpe = np.linalg.norm(scale * ours[:, limbs] @ rot.T + shift - want[:, limbs], axis=-1).mean()
    assert mpjpe < 0.110
