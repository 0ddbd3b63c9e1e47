"""Two readings of the body's depth, averaged: MediaPipe's own 3D landmarks and the MixSTE lifter's 3D from the
same 2D keypoints.

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

from mocap_cli import __version__
from mocap_cli.core.motion import Motion
from mocap_cli.models.base import Clip, ModelSettings, Progress, Readiness
from mocap_cli.models.lifters.adapter import LifterModel
from mocap_cli.models.lifters.adapter import readiness as lifter_readiness
from mocap_cli.models.mediapipe import camera_joints
from mocap_cli.models.mediapipe import readiness as mediapipe_readiness
from mocap_cli.solve.camera import Pinhole
from mocap_cli.solve.posing import motion_from_camera_joints

LIFTER = "mixste"
LIFTER_SHARE = 0.5


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
        joints = joints + LIFTER_SHARE * (pose - (joints - joints[:, :1]))
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
            joints, conf, float(track.fps), hints_cam=hints, provenance=provenance, camera=clip.camera_motion(camera)
        )


def readiness(name: str, settings: ModelSettings) -> Readiness:
    ready = mediapipe_readiness("mediapipe", settings)
    return lifter_readiness(LIFTER, settings) if ready.ready else ready
