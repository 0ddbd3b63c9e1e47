"""``--reference-pose none|t|a``: an extra first frame holding a bind pose, for tools that retarget by hand.

Some retargeting set-ups (MotionBuilder characterisation, older game engines, hand-made Blender constraints) ask
for a frame where the character stands in a known T- or A-pose. With ``t`` or ``a`` the exported BVH/GLB/FBX
gets one such frame **before** the animation: frame 0 is the reference pose, the animation follows from frame 1
on (file time 1/fps), unchanged otherwise. glTF keyframe times cannot be negative, so the reference cannot sit
before time 0 in every format; one frame of offset everywhere keeps the three formats alike.

- ``t``: every local rotation identity on mocap's T-pose skeleton (arms straight out along ±X), body facing +Z.
- ``a``: the T-pose with each whole arm swung down by the rig preset's ``arm_down_degrees`` when the preset has
  an A-pose rest (ue5: 45°), else by ``DEFAULT_A_DEGREES``.
With a rig preset whose rest matches (``t`` on blender/mixamo/unity/vrm, ``a`` on ue5), frame 0 is exactly the
rest pose of the exported rig. The reference frame stands at the first frame's floor position (after ``--root``)
with the skeleton's rest pelvis height, facing +Z. The .npz (the raw, re-exportable motion) never gets it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Literal, get_args

import numpy as np

from mocap_cli.core.motion import Motion
from mocap_cli.core.rotations import quat_conj, quat_identity, quat_mul
from mocap_cli.core.skeleton import forward_kinematics
from mocap_cli.errors import MocapError
from mocap_cli.export.rig_presets import RigPreset, rest_change

ReferencePose = Literal["none", "t", "a"]
REFERENCE_POSES: tuple[str, ...] = get_args(ReferencePose)
DEFAULT_A_DEGREES = 45.0


def check_reference_pose(choice: str) -> None:
    if choice not in REFERENCE_POSES:
        raise MocapError(f"Unknown reference pose '{choice}'; choose one of {', '.join(REFERENCE_POSES)}.")


def reference_rotations(motion: Motion, pose: str, preset: RigPreset) -> np.ndarray:
    """Local rotations (J, 4) of the reference pose on ``motion``'s canonical T-pose skeleton."""
    check_reference_pose(pose)
    sk = motion.skeleton
    if pose != "a":
        return quat_identity((sk.num_joints,))
    degrees = preset.arm_down_degrees if preset.rest_pose == "A" and preset.arm_down_degrees else DEFAULT_A_DEGREES
    change = rest_change(sk, replace(preset, rest_pose="A", arm_down_degrees=degrees))
    parent_change = np.stack([change[p] if p >= 0 else quat_identity() for p in sk.parents])
    return quat_mul(quat_conj(parent_change), change)  # local L_j = C_parent^-1 C_j poses T onto the A-pose


def with_reference_frame(motion: Motion, pose: str, preset: RigPreset) -> Motion:
    """``motion`` with the reference pose prepended as frame 0 (unchanged for ``none``); ``motion`` is on the
    canonical skeleton (before the rig preset)."""
    check_reference_pose(pose)
    if pose == "none":
        return motion
    local = reference_rotations(motion, pose, preset)[None]
    root = np.array([[motion.root_translation[0, 0], motion.skeleton.offsets[0, 1], motion.root_translation[0, 2]]])
    joints, _ = forward_kinematics(motion.skeleton, local, root)
    extra = {}
    contacts = getattr(motion, "contacts", None)  # ground contacts keep their frames aligned: none in frame 0
    if contacts is not None:
        extra["contacts"] = np.concatenate([np.zeros_like(contacts[:1]), contacts])
    provenance = {
        **motion.provenance,
        "reference_pose": pose.upper(),
        "reference_frame": "frame 0 is the reference pose; the animation starts at frame 1",
    }
    return replace(
        motion,
        rotations=np.concatenate([local, motion.rotations]),
        root_translation=np.concatenate([root, motion.root_translation]),
        joints=np.concatenate([joints, motion.joints]),
        confidence=np.concatenate([np.ones((1, motion.skeleton.num_joints)), motion.confidence]),
        provenance=provenance,
        **extra,
    )


__all__ = ["REFERENCE_POSES", "check_reference_pose", "reference_rotations", "with_reference_frame"]
