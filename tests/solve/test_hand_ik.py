"""Finger IK: exact on exact landmarks, depth rebuilt from 2D foreshortening, fades to rest where unseen, and
never touches the body."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import real_motion
from mocap_cli.capture.hands import HandTrack
from mocap_cli.core.hand_skeleton import (
    FINGER_JOINT_NAMES,
    HAND_JOINT_NAMES,
    with_fingers,
)
from mocap_cli.core.rotations import quat_apply, quat_from_rotvec, quat_identity, quat_to_rotvec
from mocap_cli.core.skeleton import JOINT_NAMES, canonical_skeleton
from mocap_cli.solve.hand_ik import (
    _CHAINS,
    _joint,
    add_fingers,
    bone_lengths,
    fill_and_fade,
    finger_rotations,
    fit_thumb_reading,
    lift_hand,
    load_thumb_reading,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hand_render import POSES, finger_pose, joint_angles, with_tips

SKELETON = with_fingers(canonical_skeleton())
REST = SKELETON.rest_positions()


def posed(pose: str) -> np.ndarray:
    """FK joints + fingertips (1, 64, 3) of the rest body with one of the test finger poses."""
    rot = np.tile(quat_identity(), (1, 54, 1))
    rot[0, 24:] = finger_pose(REST, pose)
    return with_tips(SKELETON, rot, SKELETON.offsets[:1])


def landmarks(joints: np.ndarray, side: str) -> np.ndarray:
    """MediaPipe's 21 landmarks (F, 21, 3) at our joints and fingertips."""
    out = np.zeros((joints.shape[0], 21, 3))
    out[:, 0] = joints[:, JOINT_NAMES.index(f"{side}_wrist")]
    for finger, lm in _CHAINS.items():
        for k in range(3):
            out[:, lm[k]] = joints[:, _joint(side, finger, k + 1)]
        out[:, lm[3]] = joints[:, 54 + FINGER_JOINT_NAMES.index(f"{side}_{finger}3") // 3]
    return out


@pytest.mark.parametrize("pose", POSES)
def test_exact_landmarks_give_the_pose_back(pose: str) -> None:
    """From exact landmarks, in any orientation and scale, the fingers' joint angles come back exactly
    (the thumb, posed by swings, within a few degrees: its twist is not observable from points)."""
    joints = posed(pose)
    rng = np.random.default_rng(3)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.linalg.det(q))
    for s, side in enumerate(("left", "right")):
        pts = landmarks(joints, side) @ q.T * 1.3 + 5.0
        rot = np.tile(quat_identity(), (1, 54, 1))
        rot[0, 24 + 15 * s : 39 + 15 * s] = finger_rotations(pts, REST, side)
        est = with_tips(SKELETON, rot, SKELETON.offsets[:1])
        err = np.abs(joint_angles(SKELETON, est) - joint_angles(SKELETON, joints))[0, 15 * s : 15 * s + 15]
        assert err[:12].max() < 1e-6, (pose, side, err)
        assert err[12:].max() < 5.0, (pose, side, err)


def test_thumb_read_off_the_rig_is_turned_back_onto_it() -> None:
    """Landmarks whose whole thumb sits turned on the palm (as MediaPipe reads the rig's, about 30 degrees): the
    fitted reading recovers the turn from relaxed hands, and with it every thumb joint angle of another pose
    comes back as without the turn, in both hands; without the reading the base joint is off by the turn."""
    rig = REST[_joint("left", "thumb", 2)] - REST[_joint("left", "thumb", 1)]
    # A turn of the base bone's direction (a swing: one direction cannot tell a twist about itself).
    turn_axis = np.cross(rig, [0.0, 1.0, 0.0])
    turn_axis /= np.linalg.norm(turn_axis)

    def read_as_mediapipe(joints: np.ndarray, side: str) -> np.ndarray:
        pts = landmarks(joints, side)
        mirror = np.array([-1.0, 1.0, 1.0]) if side == "right" else np.ones(3)
        # the right hand's mirror image of the turn: rotation vector -M v, M the x mirror
        turn = quat_from_rotvec(turn_axis * mirror * np.radians(30.0) * (-1 if side == "right" else 1))
        thumb = list(_CHAINS["thumb"])
        base = pts[0, thumb[0]]
        pts[0, thumb[1:]] = base + quat_apply(np.broadcast_to(turn, (3, 4)), pts[0, thumb[1:]] - base)
        return pts

    relaxed = posed("relaxed")
    reading = fit_thumb_reading(
        [read_as_mediapipe(relaxed, "left"), read_as_mediapipe(relaxed, "right")], REST, ["left", "right"]
    )
    assert np.degrees(np.arccos(reading @ rig / np.linalg.norm(rig))) == pytest.approx(30.0, abs=3.0)
    joints = posed("pinch")
    truth = joint_angles(SKELETON, joints)[0]
    for s, side in enumerate(("left", "right")):
        thumb = slice(15 * s + 12, 15 * s + 15)
        for use, worst in ((reading, 1.0), (None, 15.0)):
            rot = np.tile(quat_identity(), (1, 54, 1))
            rot[0, 24 + 15 * s : 39 + 15 * s] = finger_rotations(read_as_mediapipe(joints, side), REST, side, use)
            err = np.abs(joint_angles(SKELETON, with_tips(SKELETON, rot, SKELETON.offsets[:1]))[0] - truth)[thumb]
            assert (err.max() < worst) if use is not None else (err[0] > worst), (side, err)
    shipped = load_thumb_reading()
    assert shipped.shape == (3,) and np.linalg.norm(shipped) == pytest.approx(1.0, abs=1e-4)


def test_lifting_restores_depth_from_foreshortening() -> None:
    """A fist seen face-on with its depth squashed (as MediaPipe's metric landmarks do): the bent joints read
    as nearly straight from the squashed 3D, and come back from the 2D with the bone lengths."""
    joints = posed("fist")
    gt = landmarks(joints, "left")[0]
    # Camera below the T-posed (palm-down) hand, looking up at the palm: the fist curls toward it.
    cam = gt @ np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]).T
    image = cam[:, :2] * 800.0
    squashed = cam.copy()
    squashed[:, 2] = (cam[:, 2] - cam[0, 2]) * 0.1
    open_hand = landmarks(posed("open"), "left")[0]
    lengths = bone_lengths(open_hand[None] @ np.eye(3))
    lifted = lift_hand(image, squashed, lengths)

    def bends(p: np.ndarray) -> np.ndarray:
        parents = (0, 5, 6, 7)
        u = p[[5, 6, 7]] - p[list(parents[:3])]
        v = p[[6, 7, 8]] - p[[5, 6, 7]]
        return np.degrees(np.arccos(np.sum(u * v, -1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)))

    truth, flat, rebuilt = bends(cam), bends(squashed), bends(lifted)
    assert np.abs(flat - truth).mean() > 15.0  # squashing really hides the fist
    # The knuckle comes back from the 2D with the bone lengths. The end bones, and bones seen at > 80 % of their
    # length, keep the detector's own depth (lift_hand: on the rendered hands that depth beat the 2D-length
    # rule, which bent relaxed fingertips by 25-40 degrees), so this artificial 10x squash stays in them.
    assert abs(rebuilt[0] - truth[0]) < 5.0, (truth, rebuilt)
    assert np.abs(rebuilt - truth).mean() < np.abs(flat - truth).mean(), (truth, flat, rebuilt)


def test_unseen_frames_interpolate_then_fade_to_rest() -> None:
    f = 40
    rotvecs = np.zeros((f, 2, 3))
    rotvecs[:, :, 0] = 1.0
    seen = np.zeros(f, bool)
    seen[:10] = True
    seen[14:20] = True
    out, weight = fill_and_fade(rotvecs, seen, fade_frames=5)
    np.testing.assert_array_equal(out[seen], rotvecs[seen])
    assert np.all(weight[10:14] >= 0.6)  # a short gap stays posed
    np.testing.assert_allclose(weight[20:26], [0.8, 0.6, 0.4, 0.2, 0.0, 0.0], atol=1e-12)
    assert np.all(out[25:] == 0.0)  # long after the hand was last seen: the relaxed rest hand
    none, w = fill_and_fade(rotvecs, np.zeros(f, bool), 5)
    assert np.all(none == 0) and np.all(w == 0)


def test_add_fingers_keeps_the_body_bit_for_bit() -> None:
    body = real_motion("dance_05_02", frames=30)
    f = body.num_frames
    hands = HandTrack(
        landmarks=np.full((f, 2, 21, 3), np.nan, np.float32),
        world=np.full((f, 2, 21, 3), np.nan, np.float32),
        confidence=np.zeros((f, 2), np.float32),
        handedness=np.full((f, 2), np.nan, np.float32),
        size_px=np.full((f, 2), np.nan, np.float32),
    )
    gt = landmarks(posed("point"), "right")[0] @ np.array([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]]).T
    hands.world[5:25, 1] = gt - gt.mean(0)
    hands.landmarks[5:25, 1, :, :2] = gt[:, :2] * 900.0
    hands.confidence[5:25, 1] = 0.9
    hands.handedness[5:25, 1] = 0.9
    out = add_fingers(body, hands)
    assert out.skeleton.names == HAND_JOINT_NAMES and out.skeleton.offsets.shape == (54, 3)
    np.testing.assert_array_equal(out.rotations[:, :24], body.rotations)
    np.testing.assert_array_equal(out.joints[:, :24], body.joints)
    np.testing.assert_array_equal(out.skeleton.offsets[:24], body.skeleton.offsets)
    angle = np.degrees(np.linalg.norm(quat_to_rotvec(out.rotations[:, 24:]), axis=-1))
    assert angle[:, :15].max() < 1e-9  # the left hand is never seen: relaxed rest all along
    assert angle[15, 15 + 3 : 15 + 12].max() > 60.0  # right middle/pinky/ring curled while pointing
    assert angle[15, 15:18].max() < 30.0  # ... the index straight
    assert angle[0, 15:].max() < angle[15, 15:].max()  # before it is seen the hand is fading in from rest
    assert np.all(out.confidence[:5, 39:] == 0.0) and np.all(out.confidence[10, 39:] == pytest.approx(0.9))
