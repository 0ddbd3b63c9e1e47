"""Camera-frame 3D joints → a grounded ``Motion`` on the canonical skeleton.

Shared by every model that predicts joint positions (MediaPipe, the lifters): the performer's stated height
(``--height``, ``body_size``), camera → world axes, gravity alignment from the body's median up direction, the
subject's bone lengths, IK, and the floor.
"""

from __future__ import annotations

import numpy as np

from mocap_cli.core.motion import Motion
from mocap_cli.core.rotations import quat_mul
from mocap_cli.core.skeleton import ANKLE_HEIGHT, JOINT_INDEX, Skeleton, canonical_skeleton
from mocap_cli.solve.body_size import at_body_size, limb_size_for_height
from mocap_cli.solve.camera import CAMERA_TO_WORLD, floor_alignment, floor_height, gravity_alignment, rotate_points
from mocap_cli.solve.camera_motion import CameraMotion
from mocap_cli.solve.camera_pose import CameraPose, grounding_shift, record_camera_pose
from mocap_cli.solve.ik import solve_ik

# Height of the toe joint (SMPL "foot") above the sole in the default skeleton.
TOE_HEIGHT = 0.021


def camera_to_world(points: np.ndarray) -> np.ndarray:
    return points @ CAMERA_TO_WORLD.T


def body_up(joints: np.ndarray) -> np.ndarray:
    """(F, 3) direction from the mid-ankles to the neck in the frame of ``joints`` (F, 24, 3)."""
    ankles = 0.5 * (joints[:, JOINT_INDEX["left_ankle"]] + joints[:, JOINT_INDEX["right_ankle"]])
    return joints[:, JOINT_INDEX["neck"]] - ankles


def lowest_soles(joints: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """(F, 3) each frame's lowest sole point: of the ankles and balls of ``joints`` (F, 24, 3), world frame, Y up,
    the one whose sole (``ANKLE_HEIGHT`` / ``TOE_HEIGHT`` times ``scale`` below it) is lowest, at its sole."""
    feet = joints[:, [JOINT_INDEX[n] for n in ("left_ankle", "right_ankle", "left_foot", "right_foot")]].copy()
    feet[..., 1] -= scale * np.array([ANKLE_HEIGHT, ANKLE_HEIGHT, TOE_HEIGHT, TOE_HEIGHT])
    return feet[np.arange(len(feet)), np.argmin(feet[..., 1], axis=1)]


def world_tilt(joints: np.ndarray, fps: float) -> np.ndarray:
    """The quaternion that turns camera-derived world joints (F, 24, 3) upright: the body's median up onto +Y
    (``gravity_alignment``), then the floor under its soles level (``floor_alignment``)."""
    tilt = gravity_alignment(body_up(joints))
    return quat_mul(floor_alignment(lowest_soles(rotate_points(tilt, joints)), fps), tilt)


def ground_motion(motion: Motion) -> Motion:
    """Shift the root path so the floor (lowest sole contacts over the clip) is at height 0 and the clip
    starts above the world origin."""
    sk = motion.skeleton
    scale = (
        sk.bone_lengths()[JOINT_INDEX["left_ankle"]] / canonical_skeleton().bone_lengths()[JOINT_INDEX["left_ankle"]]
    )
    soles = lowest_soles(motion.joints, scale)[:, 1]
    shift = np.array([motion.root_translation[0, 0], floor_height(soles), motion.root_translation[0, 2]])
    return motion.with_rotations(motion.rotations, motion.root_translation - shift)


def undo_camera_rotation(
    joints_cam: np.ndarray, hints_cam: dict[str, np.ndarray], camera: CameraMotion
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Joints (F, J, 3) and hint vectors (F, 3) seen from a turning camera, expressed in the camera axes of
    frame 0. The body turns about its root (joint 0) with the camera's rotation. The root path follows the
    camera exactly where it only turned (panning); where it also moved (orbit, dolly; its travel is unknown),
    the root's camera-relative velocity is turned into frame 0's axes and summed, so a person the camera
    circles stays in place instead of tracing the camera's circle."""
    rot = camera.rotations
    root = joints_cam[:, 0]
    path = root_path_in_first_camera(root, camera)
    joints = np.einsum("fij,fkj->fki", rot, joints_cam - root[:, None]) + path[:, None]
    hints = {k: np.einsum("fij,fj->fi", rot, v) for k, v in hints_cam.items()}
    return joints, hints


def root_path_in_first_camera(root: np.ndarray, camera: CameraMotion) -> np.ndarray:
    """The root path (F, 3) in frame 0's camera axes that ``undo_camera_rotation`` puts the body on, from the
    camera-frame root (F, 3) (see there)."""
    rot = camera.rotations
    turned_root = np.einsum("fij,fj->fi", rot, root)
    steps = np.where(
        camera.panning[1:, None],
        turned_root[1:] - turned_root[:-1],
        np.einsum("fij,fj->fi", rot[1:], root[1:] - root[:-1]),
    )
    return turned_root[0] + np.concatenate([np.zeros((1, 3)), np.cumsum(steps, axis=0)])


def camera_origins(root: np.ndarray, camera: CameraMotion) -> np.ndarray:
    """Where each frame's camera sits (F, 3) in frame 0's camera axes, as ``undo_camera_rotation`` implies:
    it maps camera-frame points p_f to ``camera.rotations[f] @ p_f + origin[f]`` (zero for pure panning)."""
    return root_path_in_first_camera(root, camera) - np.einsum("fij,fj->fi", camera.rotations, root)


def motion_from_camera_joints(
    joints_cam: np.ndarray,
    confidence: np.ndarray,
    fps: float,
    *,
    hints_cam: dict[str, np.ndarray] | None = None,
    provenance: dict[str, str] | None = None,
    skeleton: Skeleton | None = None,
    camera: CameraMotion | None = None,
    height: float | None = None,
) -> Motion:
    """joints_cam: (F, 24, 3) absolute camera-frame positions (metres, OpenCV axes) in SMPL joint order;
    confidence (F, 24); hints_cam: IK twist hints (see ``ik.TWIST_HINTS``) as camera-frame vectors;
    camera: how the camera turned (``camera_motion``), so the world stays put while it pans or orbits;
    height: the performer's stature (metres), when known: the joints are scaled about the camera to that
    body's size (what the camera saw is unchanged; distance, travel and jumps follow)."""
    if height is not None:
        joints_cam = at_body_size(joints_cam, limb_size_for_height(height), JOINT_INDEX)
        provenance = {**(provenance or {}), "height_m": f"{height:g}"}
    turns = origins = None
    if camera is not None and camera.moving:
        turns, origins = camera.rotations, camera_origins(joints_cam[:, 0], camera)
        joints_cam, hints_cam = undo_camera_rotation(joints_cam, hints_cam or {}, camera)
    world = camera_to_world(joints_cam)
    hints = {k: camera_to_world(v) for k, v in (hints_cam or {}).items()}
    tilt = world_tilt(world, fps)
    world = rotate_points(tilt, world)
    hints = {k: rotate_points(tilt, v) for k, v in hints.items()}
    skeleton = skeleton or canonical_skeleton().fitted_to(world, confidence)
    rotations, root = solve_ik(skeleton, world, hints)
    motion = Motion.from_rotations(fps, skeleton, rotations, root, confidence, provenance)
    grounded = ground_motion(motion)
    shift = grounding_shift(root, grounded.root_translation)
    record_camera_pose(grounded.provenance, CameraPose.from_alignment(tilt, shift, turns, origins))
    return grounded


def tilt_rotations(rotations: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Apply a world rotation ``q`` to a motion's root joint orientation (F, J, 4)."""
    out = rotations.copy()
    out[:, 0] = quat_mul(np.broadcast_to(q, out[:, 0].shape), out[:, 0])
    return out
