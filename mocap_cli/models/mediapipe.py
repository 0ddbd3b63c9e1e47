"""The default model: MediaPipe's own 3D world landmarks, turned into joint rotations by IK.

Needs nothing downloaded (the pose model ships inside the mediapipe wheel). World landmarks are metric but
hip-centred, so the global path comes from the 2D image track: per frame, the translation that makes the
3D landmarks project onto the detected 2D landmarks through a pinhole camera (``camera.solve_translation``),
with its depth smoothed more slowly than its image position (``camera.steady_depth``). A turning camera is
measured from the background and undone (``camera_motion``).
"""

from __future__ import annotations

import numpy as np

from mocap_cli import __version__
from mocap_cli.capture.keypoints import MP
from mocap_cli.core.motion import Motion
from mocap_cli.core.skeleton import JOINT_NAMES
from mocap_cli.models.base import Clip, ModelSettings, Progress, Readiness
from mocap_cli.models.joints import LIMB_PARTS, mediapipe_extremities, mediapipe_twist_hints, trunk_and_limbs
from mocap_cli.solve.camera import Pinhole, interpolate_nans, solve_translation, steady_depth
from mocap_cli.solve.posing import motion_from_camera_joints

# Body landmarks used to place the body in the camera (face points are too close together to help).
_BODY = list(range(11, 33))


def smpl_joints_from_mediapipe(
    points: np.ndarray, visibility: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """MediaPipe's 33 landmarks (F, 33, 3) → the canonical 24 joints (F, 24, 3), their confidence (F, 24)
    and IK twist hints (F, 3 each), all in the landmarks' own frame (camera axes: y down).

    Joint definitions: hips/knees/ankles/shoulders/elbows/wrists are the landmarks; the trunk joints follow
    ``smpl_joints.trunk_and_limbs``; the head is the ear midpoint; "foot" (toes joint) is 3/4 of the way from
    heel to toe tip; "hand" the knuckle midpoint (``smpl_joints.mediapipe_extremities``)."""
    p = points
    limbs = {f"{side}_{part}": p[:, MP[f"{side}_{part}"]] for side in ("left", "right") for part in LIMB_PARTS}
    ears = 0.5 * (p[:, MP["left_ear"]] + p[:, MP["right_ear"]])
    joints = trunk_and_limbs(limbs, ears) | mediapipe_extremities(p)
    out = np.stack([joints[n] for n in JOINT_NAMES], axis=1)

    v = visibility
    source = {
        "pelvis": ("left_hip", "right_hip"),
        "spine1": ("left_hip", "right_hip", "left_shoulder", "right_shoulder"),
        "spine2": ("left_hip", "right_hip", "left_shoulder", "right_shoulder"),
        "spine3": ("left_shoulder", "right_shoulder"),
        "neck": ("left_shoulder", "right_shoulder"),
        "head": ("left_ear", "right_ear"),
    }
    for side in ("left", "right"):
        for part in LIMB_PARTS:
            source[f"{side}_{part}"] = (f"{side}_{part}",)
        source[f"{side}_foot"] = (f"{side}_heel", f"{side}_foot_index")
        source[f"{side}_collar"] = ("left_shoulder", "right_shoulder")
        source[f"{side}_hand"] = (f"{side}_index", f"{side}_pinky")
    conf = np.stack([np.min(v[:, [MP[s] for s in source[n]]], axis=1) for n in JOINT_NAMES], axis=1)
    return out, conf, mediapipe_twist_hints(p)


def camera_joints(clip: Clip, camera: Pinhole) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """MediaPipe's 3D landmarks placed in the camera (module docstring) as the canonical joints: absolute
    camera-frame positions (F, 24, 3), their confidence (F, 24, 0 where not detected) and the IK twist hints."""
    track = clip.track
    # MediaPipe's world landmarks use the image's axes (x right, y down, z away from the camera).
    world = interpolate_nans(track.world_landmarks)
    weights = np.where(track.detected[:, None], np.clip(track.visibility[:, _BODY], 0.0, 1.0), 0.0)
    weights = np.where(weights > 0.5, weights, 0.0)
    pixels = np.nan_to_num(track.landmarks[:, _BODY, :2])
    offset = interpolate_nans(solve_translation(world[:, _BODY], pixels, weights, camera))
    offset = steady_depth(offset, float(track.fps))
    joints, conf, hints = smpl_joints_from_mediapipe(world + offset[:, None], np.nan_to_num(track.visibility))
    return joints, np.where(track.detected[:, None], conf, 0.0), hints


class MediaPipeModel:
    def __init__(self, name: str, settings: ModelSettings) -> None:
        self.name = name
        self.settings = settings

    def estimate(self, clip: Clip, progress: Progress | None = None) -> Motion:
        track = clip.track
        camera = Pinhole.from_fov(track.image_size[0], track.image_size[1], self.settings.fov_degrees)
        joints, conf, hints = camera_joints(clip, camera)
        turning = clip.camera_motion(camera)
        if progress:
            progress(len(joints), len(joints))
        provenance = {
            "model": self.name,
            "input": str(clip.video.path),
            "mocap_version": __version__,
            "fov_degrees": f"{self.settings.fov_degrees:g}",
        }
        return motion_from_camera_joints(
            joints,
            conf,
            float(track.fps),
            hints_cam=hints,
            provenance=provenance,
            camera=turning,
            height=self.settings.height,
        )


def readiness(name: str, settings: ModelSettings) -> Readiness:
    try:
        import mediapipe  # noqa: F401
    except ImportError:
        return Readiness(False, "the mediapipe package is missing: pip install mediapipe==0.10.21")
    return Readiness(True, "bundled with mediapipe (no download)")
