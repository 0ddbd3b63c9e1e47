"""Two readings of the body's depth, averaged: MediaPipe's own 3D landmarks and the MixSTE lifter's 3D from the
same 2D keypoints, the lifter's share fading where the body is not upright.

The default model's pose error is set by MediaPipe's depth; the lifter (the weights shipped with mocap, trained
on CMU motion capture, or the authors' once imported) reads depth from the 2D motion over 81 frames instead.
Their errors are largely independent, so their mean is better than either: both are placed in the camera
(``mediapipe.camera_joints``, ``LifterModel.lift``) as the canonical 24 joints, averaged with ``LIFTER_SHARE``
on the lifter's side, and turned into rotations by one IK (``posing.motion_from_camera_joints``), with the
camera's turn undone. Confidence and the IK's twist hints (hands, feet, head) are MediaPipe's.

Measured on the nine rendered clips (``benchmarks/accuracy.py``, light smoothing, foot locking): see the README's
model table and the CHANGELOG.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from mocap_cli import __version__
from mocap_cli.core.motion import Motion
from mocap_cli.core.skeleton import JOINT_INDEX
from mocap_cli.models.base import Clip, ModelSettings, Progress, Readiness
from mocap_cli.models.lifters.adapter import LifterModel
from mocap_cli.models.lifters.adapter import readiness as lifter_readiness
from mocap_cli.models.mediapipe import camera_joints
from mocap_cli.models.mediapipe import readiness as mediapipe_readiness
from mocap_cli.solve.camera import Pinhole
from mocap_cli.solve.posing import motion_from_camera_joints

LIFTER = "mixste"
LIFTER_SHARE = 0.5
# The lifter learned from motion capture of people on their feet; on the floor (all fours, lying) its pose is
# guesswork. Its share falls from LIFTER_SHARE with the trunk's tilt from the image's vertical in MediaPipe's
# pose: whole up to UPRIGHT_DEGREES, none from LYING_DEGREES, eased over UPRIGHT_EASE_SECONDS (a Gaussian's
# sigma). On the rendered clips no trunk leans past 50 degrees for long (40/65/0.17 s moved squat_14_06: accel
# 5.0 -> 6.1 mm/frame², MPJPE 82.2 -> 80.7); on the floor-work render (bird dogs on all fours) MediaPipe's pose
# alone rests the supporting hands where the truth's are (without this: 14.1 cm up, not 5.5).
UPRIGHT_DEGREES = 50.0
LYING_DEGREES = 75.0
UPRIGHT_EASE_SECONDS = 0.3


class FusedModel:
    def __init__(self, name: str, settings: ModelSettings) -> None:
        self.name = name
        self.settings = settings
        self.lifter = LifterModel(LIFTER, settings)

    def estimate(self, clip: Clip, progress: Progress | None = None) -> Motion:
        track = clip.track
        camera = Pinhole.from_fov(track.image_size[0], track.image_size[1], self.settings.fov_degrees)
        joints, conf, hints = camera_joints(clip, camera)
        lifted = self.lifter.lift(clip)
        # The pose is averaged about the pelvis; the body stays where MediaPipe's placement put it.
        pose = lifted.joints_cam - lifted.joints_cam[:, :1]
        share = LIFTER_SHARE * upright(joints, float(track.fps))
        joints = joints + share[:, None, None] * (pose - (joints - joints[:, :1]))
        if progress:
            progress(len(joints), len(joints))
        weights = self.lifter.weights
        provenance = {
            "model": self.name,
            "input": str(clip.video.path),
            "mocap_version": __version__,
            "fov_degrees": f"{self.settings.fov_degrees:g}",
            "lifter": LIFTER,
            "lifter_share": f"{LIFTER_SHARE:g}",
            "weights": weights.variant or "file",
            "weights_file": str(weights.path),
            "weights_sha256": weights.sha256,
        }
        return motion_from_camera_joints(
            joints,
            conf,
            float(track.fps),
            hints_cam=hints,
            provenance=provenance,
            camera=clip.camera_motion(camera),
            height=self.settings.height,
        )


def upright(joints: np.ndarray, fps: float) -> np.ndarray:
    """(F,) in [0, 1]: 1 where the trunk (pelvis to neck, camera-frame joints (F, 24, 3), y down) is within
    ``UPRIGHT_DEGREES`` of the image's vertical, 0 from ``LYING_DEGREES``, eased in time."""
    trunk = joints[:, JOINT_INDEX["neck"]] - joints[:, JOINT_INDEX["pelvis"]]
    cos = -trunk[:, 1] / np.maximum(np.linalg.norm(trunk, axis=-1), 1e-9)
    tilt = np.degrees(np.arccos(np.clip(np.nan_to_num(cos, nan=1.0), -1.0, 1.0)))
    weight = np.clip((LYING_DEGREES - tilt) / (LYING_DEGREES - UPRIGHT_DEGREES), 0.0, 1.0)
    return gaussian_filter1d(weight, sigma=max(UPRIGHT_EASE_SECONDS * fps, 1e-3), mode="nearest")


def readiness(name: str, settings: ModelSettings) -> Readiness:
    ready = mediapipe_readiness("mediapipe", settings)
    return lifter_readiness(LIFTER, settings) if ready.ready else ready
