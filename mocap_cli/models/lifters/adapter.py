"""Keypoint lifters (MixSTE, Strided Transformer) as ``--model`` adapters: MediaPipe 2D track → Motion.

Steps, per clip:

1. MediaPipe's 33 image landmarks → Human3.6M-17 (``keypoints.lifter_input``): the detector's positions as
   they are, as the authors' demos feed them; only frames without a detection are interpolated over time.
   Visibility only weights the camera fit of step 3 (below ``VISIBILITY_THRESHOLD`` a joint is left out).
2. The authors' screen normalisation (``keypoints.normalize_screen``) and whole-clip lifting as the authors
   evaluate (``lifting.lift_clip``: flip averaging, batched windows, float16 autocast on CUDA) → root-relative
   camera-frame 3D (x right, y down, z forward, metres), scaled to the training bodies' mean size where the
   weights record it (``body_size``: 2D keypoints cannot tell a body's size).
3. The root path as in the default model: per frame, the camera translation that makes the lifted joints
   project onto the 2D keypoints through a pinhole camera of the assumed field of view
   (``camera.solve_translation``), its depth steadied (``camera.steady_depth``).
4. H36M-17 → the canonical 24 joints (``smpl_joints_from_h36m``, mapping documented there), then
   ``posing.motion_from_camera_joints``: y-down camera → Y-up world, gravity, skeleton fit, IK, floor.

Weights: ``--weights`` (a file or a registry variant name), else the model's installed variant (the
registry's default first). Configuration (window, width, depth, strides) is read from the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mocap_cli import __version__
from mocap_cli.capture.keypoints import H36M, MP, lifter_input, normalize_screen
from mocap_cli.core.motion import Motion
from mocap_cli.core.skeleton import JOINT_INDEX, JOINT_NAMES, canonical_skeleton
from mocap_cli.errors import MocapError
from mocap_cli.models.base import Clip, ModelSettings, Progress, Readiness
from mocap_cli.models.joints import LIMB_PARTS, mediapipe_extremities, mediapipe_twist_hints, trunk_and_limbs, unit
from mocap_cli.solve.body_size import at_body_size
from mocap_cli.solve.camera import Pinhole, interpolate_nans, solve_translation, steady_depth
from mocap_cli.solve.posing import motion_from_camera_joints
from mocap_cli.weights import cache as W

if TYPE_CHECKING:
    from mocap_cli.nets.mixste import MixSTE2
    from mocap_cli.nets.strided import StridedTransformer

LIFTERS = ("mixste", "strided")
# Below this MediaPipe visibility a keypoint is not used to place the body in the camera (it is still lifted).
VISIBILITY_THRESHOLD = 0.5
# The H36M head joint is the top of the head; the canonical head joint (as in the default model) sits at ear
# level. keypoints.mediapipe_to_h36m builds head = ears + (ears - shoulders) / 3, whose inverse is
# ears = shoulders + 3/4 (head - shoulders).
HEAD_FROM_SHOULDERS = 0.75
# Subject scale relative to the default skeleton, for the toe/knuckle bones H36M lacks; clamped because an
# untrained or failing lifter can give absurd limb lengths.
_SCALE_RANGE = (0.6, 1.4)


def resolve_lifter_weights(model: str, settings: ModelSettings) -> W.ChosenWeights:
    """``--weights``, else an installed 2D-keypoint variant of ``model`` (refine files excluded)."""
    return W.choose_weights(model, settings.weights, accept=lambda spec: spec.input == "keypoints2d")


def readiness(model: str, settings: ModelSettings) -> Readiness:
    try:
        found = resolve_lifter_weights(model, settings)
    except MocapError as exc:
        text = str(exc).rstrip(".")
        return Readiness(False, text[:1].lower() + text[1:])
    what = f"weights {found.variant}" if found.variant else "weights file"
    if found.variant and W.get_spec(found.variant).shipped:
        what += " (shipped with mocap, trained on CMU mocap)"
    return Readiness(True, f"{what}: {found.path}")


def load_lifter(model: str, path: Path) -> tuple[MixSTE2 | StridedTransformer, int]:
    """(network, window length) of a ``model`` checkpoint in the authors' layout (strict, weights_only)."""
    from mocap_cli.models.lifters.loading import load_mixste, load_strided

    if model == "mixste":
        net, config = load_mixste(path)
        return net, config.num_frame
    if model == "strided":
        net, config, _ = load_strided(path)  # the refine MLP needs ground-truth intrinsics: not used on videos
        return net, config.frames
    raise MocapError(f"Unknown lifter '{model}'; choose one of: {', '.join(LIFTERS)}.")


def smpl_joints_from_h36m(
    h36m: np.ndarray, h36m_conf: np.ndarray, mp_world: np.ndarray, mp_visibility: np.ndarray
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Lifted Human3.6M joints (F, 17, 3) → the canonical 24 joints (F, 24, 3), confidence (F, 24) and IK twist
    hints, in the lifter's camera frame.

    Mapping (H36M names as in ``keypoints.H36M_NAMES``; sides are the subject's own):

    * hips, knees, ankles, shoulders, elbows, wrists: the H36M joint of the same name.
    * pelvis, spine1-3, neck, collars: ``smpl_joints.trunk_and_limbs`` from the H36M hips and shoulders, the
      same rule as the default model (so both models build the same trunk from the same limb joints). The
      H36M pelvis, spine and thorax joints are not used: their definitions differ from SMPL's.
    * head: shoulder midpoint + 3/4 (H36M head − shoulder midpoint), the ear-level point the default model
      uses (the inverse of the head rule in ``keypoints.mediapipe_to_h36m``).
    * feet (toe joints) and hands (knuckle joints), which H36M lacks: extended from the lifted ankle / wrist
      along MediaPipe's own 3D direction ankle → toes and wrist → knuckles (``mp_world``, its world
      landmarks, which share the camera's axes), with the default skeleton's bone length scaled by the
      subject's shin length. Their confidence is the smaller of the ankle/wrist and those landmarks.
    * twist hints (head, neck, ankles, wrists) come from MediaPipe's landmarks
      (``smpl_joints.mediapipe_twist_hints``), as in the default model.
    """
    limbs = {f"{side}_{part}": h36m[:, H36M[f"{side}_{part}"]] for side in ("left", "right") for part in LIMB_PARTS}
    mid_sh = 0.5 * (limbs["left_shoulder"] + limbs["right_shoulder"])
    head = mid_sh + HEAD_FROM_SHOULDERS * (h36m[:, H36M["head"]] - mid_sh)
    joints = trunk_and_limbs(limbs, head)

    rest = canonical_skeleton()
    rest_lengths = rest.bone_lengths()
    shins = np.linalg.norm(
        h36m[:, [H36M["left_ankle"], H36M["right_ankle"]]] - h36m[:, [H36M["left_knee"], H36M["right_knee"]]], axis=-1
    )
    scale = float(np.clip(np.median(shins) / rest_lengths[JOINT_INDEX["left_ankle"]], *_SCALE_RANGE))
    tips = mediapipe_extremities(mp_world)
    for side in ("left", "right"):
        for tip, base in (("foot", "ankle"), ("hand", "wrist")):
            direction = unit(tips[f"{side}_{tip}"] - mp_world[:, MP[f"{side}_{base}"]])
            joints[f"{side}_{tip}"] = (
                joints[f"{side}_{base}"] + scale * rest_lengths[JOINT_INDEX[f"{side}_{tip}"]] * direction
            )
    out = np.stack([joints[n] for n in JOINT_NAMES], axis=1)

    c = {name: h36m_conf[:, i] for name, i in H36M.items()}
    v = mp_visibility
    shoulders = np.minimum(c["left_shoulder"], c["right_shoulder"])
    trunk = np.minimum(shoulders, np.minimum(c["left_hip"], c["right_hip"]))
    conf = {"pelvis": trunk, "spine1": trunk, "spine2": trunk, "spine3": trunk, "neck": shoulders,
            "head": np.minimum(shoulders, c["head"])}  # fmt: skip
    for side in ("left", "right"):
        for part in LIMB_PARTS:
            conf[f"{side}_{part}"] = c[f"{side}_{part}"]
        conf[f"{side}_collar"] = shoulders
        foot_marks = np.minimum(v[:, MP[f"{side}_heel"]], v[:, MP[f"{side}_foot_index"]])
        hand_marks = np.minimum(v[:, MP[f"{side}_index"]], v[:, MP[f"{side}_pinky"]])
        conf[f"{side}_foot"] = np.minimum(c[f"{side}_ankle"], foot_marks)
        conf[f"{side}_hand"] = np.minimum(c[f"{side}_wrist"], hand_marks)
    confidence = np.stack([conf[n] for n in JOINT_NAMES], axis=1)
    return out, confidence, mediapipe_twist_hints(mp_world)


@dataclass
class LiftedClip:
    """What the lifter adapter computes before IK (kept for inspection and tests)."""

    keypoints_2d: np.ndarray  # (F, 17, 2) H36M pixels as detected, detection gaps filled
    keypoints_conf: np.ndarray  # (F, 17) confidence (0 where not detected)
    pose_3d: np.ndarray  # (F, 17, 3) lifted, root-relative camera frame, metres
    translation: np.ndarray  # (F, 3) camera-frame offset placing pose_3d in the image
    joints_cam: np.ndarray  # (F, 24, 3) canonical joints, absolute camera frame
    confidence: np.ndarray  # (F, 24)
    hints_cam: dict[str, np.ndarray]


class LifterModel:
    """MixSTE or Strided Transformer on MediaPipe's 2D track (see the module docstring)."""

    def __init__(self, name: str, settings: ModelSettings, *, flip: bool = True) -> None:
        if name not in LIFTERS:
            raise MocapError(f"Unknown lifter '{name}'; choose one of: {', '.join(LIFTERS)}.")
        self.name = name
        self.settings = settings
        self.flip = flip
        self.weights = resolve_lifter_weights(name, settings)
        self.net, self.window = load_lifter(name, self.weights.path)
        from mocap_cli.models.lifters.loading import trained_body_size

        self.body_size = trained_body_size(self.weights.path)
        if not self.weights.sha256:
            self.weights = W.ChosenWeights(self.weights.path, self.weights.variant, W.sha256_of(self.weights.path))

    def lift(self, clip: Clip) -> LiftedClip:
        from mocap_cli.models.lifters.windows import lift_clip

        track = clip.track
        width, height = track.image_size
        detected = np.asarray(track.detected, dtype=bool)
        visibility = np.where(detected[:, None], np.nan_to_num(track.visibility), 0.0)
        kp, conf = lifter_input(track.landmarks, visibility, detected)

        device = self.settings.torch_device
        pose = lift_clip(
            self.net,
            normalize_screen(kp, width, height),
            flip=self.flip,
            batch_size=self.settings.batch_size,
            device=device,
            autocast=device.startswith("cuda"),
        ).astype(np.float64)
        if self.body_size is not None:
            pose = at_body_size(pose, self.body_size)

        camera = Pinhole.from_fov(width, height, self.settings.fov_degrees)
        weights = np.where(conf >= VISIBILITY_THRESHOLD, conf, 0.0)
        translation = steady_depth(interpolate_nans(solve_translation(pose, kp, weights, camera)), float(track.fps))

        world = interpolate_nans(track.world_landmarks)
        joints, joint_conf, hints = smpl_joints_from_h36m(pose, conf, world, visibility)
        return LiftedClip(kp, conf, pose, translation, joints + translation[:, None], joint_conf, hints)

    def estimate(self, clip: Clip, progress: Progress | None = None) -> Motion:
        lifted = self.lift(clip)
        if progress:
            progress(len(lifted.pose_3d), len(lifted.pose_3d))
        provenance = {
            "model": self.name,
            "input": str(clip.video.path),
            "mocap_version": __version__,
            "fov_degrees": f"{self.settings.fov_degrees:g}",
            "weights": self.weights.variant or "file",
            "weights_file": str(self.weights.path),
            "weights_sha256": self.weights.sha256,
            "window_frames": str(self.window),
            "flip_averaging": "on" if self.flip else "off",
            "keypoints": "mediapipe -> h36m-17",
        }
        width, height = clip.track.image_size
        return motion_from_camera_joints(
            lifted.joints_cam,
            lifted.confidence,
            float(clip.track.fps),
            hints_cam=lifted.hints_cam,
            provenance=provenance,
            camera=clip.camera_motion(Pinhole.from_fov(width, height, self.settings.fov_degrees)),
            height=self.settings.height,
        )
