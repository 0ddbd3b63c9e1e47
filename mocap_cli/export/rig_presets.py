"""Rig presets (``presets/rig/<name>.toml``): bone names, rest pose, units and axes of a target rig.

A preset turns a Motion on our canonical skeleton into one on the target rig's conventions:

- **names**: every one of the 24 joints gets the rig's bone name (same joint order and hierarchy); with
  fingers (``--hands auto``) the 30 finger joints get the names of the preset's ``[fingers]`` table, which may
  also rename ``left_hand``/``right_hand`` (the palm end) when the rig's middle-finger name was used for it;
- **rest pose**: ``T`` keeps our T-pose; ``A`` swings each arm (upper arm, forearm, hand) down by
  ``arm_down_degrees`` in the rest pose. The animation is re-expressed so the *posed* world skeleton is
  exactly the same (see ``rest_change`` and ``apply_rig_preset``);
- **unit** (``m``/``cm``) and **up_axis** (``Y``/``Z``) are not applied to the Motion (it stays in metres,
  Y up, so forward kinematics and checks keep one frame); the exporters apply them
  (``ExportOptions.unit_scale``/``up_axis``). glTF is metres and Y up by its specification, so a ``cm`` preset
  still writes metres to .glb; BVH is always Y up.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from mocap_cli.body.mesh import SkinnedMesh
from mocap_cli.body.skinning import skin
from mocap_cli.core.hand_skeleton import (
    FINGER_JOINT_NAMES,
    HAND_JOINT_NAMES,
    HAND_PARENTS,
    has_fingers,
)
from mocap_cli.core.motion import Motion
from mocap_cli.core.preset_files import preset_dir
from mocap_cli.core.rotations import (
    quat_apply,
    quat_between,
    quat_conj,
    quat_identity,
    quat_mul,
)
from mocap_cli.core.skeleton import JOINT_NAMES, PARENTS, Skeleton
from mocap_cli.errors import MocapError

DEFAULT_RIG = "blender"
_ARMS = (("left_shoulder", "left_elbow", 1.0), ("right_shoulder", "right_elbow", -1.0))


@dataclass(frozen=True)
class RigPreset:
    name: str
    description: str
    bones: dict[str, str]  # canonical joint name -> rig bone name
    rest_pose: Literal["T", "A"]
    arm_down_degrees: float  # A-pose: upper arms this far below horizontal (0 for T)
    unit: Literal["m", "cm"]
    up_axis: Literal["Y", "Z"]
    forward: str
    armature_name: str
    formats: str
    fingers: dict[str, str] = field(default_factory=dict)  # finger joint (and palm override) -> bone name

    @property
    def unit_scale(self) -> float:
        """File units per metre."""
        return 100.0 if self.unit == "cm" else 1.0


def rig_preset_names() -> list[str]:
    return sorted(p.stem for p in preset_dir("rig").glob("*.toml"))


def load_rig_preset(name: str) -> RigPreset:
    """Read ``presets/rig/<name>.toml``; a MocapError names the choices when it does not exist or is malformed."""
    path = preset_dir("rig") / f"{name}.toml"
    choices = ", ".join(rig_preset_names())
    if not name or "/" in name or "\\" in name or not path.is_file():
        raise MocapError(f"Unknown rig preset '{name}'; choose one of {choices}.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        bones = {str(k): str(v) for k, v in data["bones"].items()}
        preset = RigPreset(
            name=name,
            description=str(data.get("description", "")),
            bones=bones,
            rest_pose=str(data.get("rest_pose", "T")).upper(),  # type: ignore[arg-type]
            arm_down_degrees=float(data.get("arm_down_degrees", 0.0)),
            unit=str(data.get("unit", "m")),  # type: ignore[arg-type]
            up_axis=str(data.get("up_axis", "Y")).upper(),  # type: ignore[arg-type]
            forward=str(data.get("forward", "+Z")),
            armature_name=str(data.get("armature_name", "Armature")),
            formats=str(data.get("formats", "")),
            fingers={str(k): str(v) for k, v in data.get("fingers", {}).items()},
        )
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MocapError(f"Rig preset file {path} is malformed ({exc}); fix it or pick one of {choices}.") from exc
    problems = []
    if set(bones) != set(JOINT_NAMES):
        problems.append("its [bones] table must name all 24 joints")
    if len(set(bones.values())) != len(bones) or any(not v.strip() for v in bones.values()):
        problems.append("bone names must be unique and non-empty")
    if preset.fingers:
        names = finger_bone_names(preset)
        if not set(FINGER_JOINT_NAMES) <= set(preset.fingers) or set(preset.fingers) - set(HAND_JOINT_NAMES):
            problems.append("its [fingers] table must name the 30 finger joints (and may rename left_hand, right_hand)")
        elif len(set(names)) != len(names) or any(not v.strip() for v in names):
            problems.append("bone names with fingers must be unique and non-empty")
    if preset.rest_pose not in ("T", "A"):
        problems.append("rest_pose must be T or A")
    if preset.unit not in ("m", "cm"):
        problems.append("unit must be m or cm")
    if preset.up_axis not in ("Y", "Z"):
        problems.append("up_axis must be Y or Z")
    if problems:
        raise MocapError(f"Rig preset file {path} is invalid: {'; '.join(problems)}.")
    return preset


def finger_bone_names(preset: RigPreset) -> list[str]:
    """The preset's bone names for the 54-joint skeleton with fingers (``HAND_JOINT_NAMES`` order): its
    [bones] with its [fingers] table's overrides, our own names for fingers it does not name."""
    return [preset.fingers.get(n, preset.bones.get(n, n)) for n in HAND_JOINT_NAMES]


def _check_topology(skeleton: Skeleton) -> None:
    if tuple(skeleton.names) == HAND_JOINT_NAMES and tuple(skeleton.parents) == HAND_PARENTS:
        return
    if tuple(skeleton.names) != JOINT_NAMES or tuple(skeleton.parents) != PARENTS:
        raise MocapError(
            f"Rig presets need a motion on mocap's own 24-joint skeleton, but this one starts with "
            f"'{skeleton.names[0]}'; re-export from the .npz that `mocap run` wrote."
        )


def rest_change(skeleton: Skeleton, preset: RigPreset) -> np.ndarray:
    """Per joint (J, 4) the world rotation C_j that turns joint j's rest frame from our T-pose into the
    preset's rest: identity everywhere but on each arm (shoulder, elbow, wrist, hand) for an A-pose, where
    C is the smallest rotation taking the upper arm's rest direction onto ``arm_down_degrees`` below the
    horizontal on its side (about the body's forward axis for a T-pose arm)."""
    change = quat_identity((skeleton.num_joints,))
    if preset.rest_pose != "A" or preset.arm_down_degrees == 0.0:
        return change
    angle = np.radians(preset.arm_down_degrees)
    for shoulder, elbow, side in _ARMS:
        s, e = skeleton.index(shoulder), skeleton.index(elbow)
        target = np.array([side * np.cos(angle), -np.sin(angle), 0.0])
        q = quat_between(skeleton.offsets[e], target)
        for j in _subtree(skeleton, s):
            change[j] = q
    return change


def _subtree(skeleton: Skeleton, j: int) -> list[int]:
    out = [j]
    for c in skeleton.children(j):
        out.extend(_subtree(skeleton, c))
    return out


def _parent_change(skeleton: Skeleton, change: np.ndarray) -> np.ndarray:
    return np.stack([change[p] if p >= 0 else quat_identity() for p in skeleton.parents])


def apply_rig_preset(motion: Motion, preset: RigPreset) -> Motion:
    """``motion`` (canonical skeleton, T-pose rest) on the preset's rig: renamed bones and, for an A-pose
    preset, the A-pose rest with the same posed world skeleton.

    Derivation: with rest changes C_j (``rest_change``), the new rest offsets are o'_j = C_parent(j) o_j and
    every joint's new world rotation is G'_j = G_j C_j^-1 (so G'_j o'_c = G_j o_c for each child c: posed
    positions are unchanged). Locals follow from G'_j = G'_parent L'_j: L'_j = C_parent(j) L_j C_j^-1."""
    _check_topology(motion.skeleton)
    sk = motion.skeleton
    change = rest_change(sk, preset)
    parent_change = _parent_change(sk, change)
    offsets = quat_apply(parent_change, sk.offsets)
    names = tuple(finger_bone_names(preset)) if has_fingers(sk) else tuple(preset.bones[n] for n in sk.names)
    skeleton = Skeleton(names, sk.parents, offsets)
    rotations = quat_mul(quat_mul(parent_change[None], motion.rotations), quat_conj(change)[None])
    out = Motion.from_rotations(
        motion.fps, skeleton, rotations, motion.root_translation, motion.confidence, motion.provenance, motion.betas
    )
    out.provenance["rig_preset"] = preset.name
    out.contacts, out.contact_joints = motion.contacts, motion.contact_joints
    return out


def repose_mesh(mesh: SkinnedMesh, skeleton: Skeleton, preset: RigPreset) -> SkinnedMesh:
    """A mesh bound to ``skeleton`` (canonical, T-pose rest) moved into the preset's rest pose by skinning
    it with the local rotations that pose the T-pose skeleton as the preset's rest (C_parent^-1 C_j)."""
    change = rest_change(skeleton, preset)
    if np.allclose(change, quat_identity((skeleton.num_joints,))):
        return mesh
    local = quat_mul(quat_conj(_parent_change(skeleton, change)), change)
    vertices = skin(mesh, skeleton, local[None], skeleton.offsets[:1])[0]
    return replace(mesh, vertices=vertices)


__all__ = [
    "DEFAULT_RIG",
    "RigPreset",
    "apply_rig_preset",
    "finger_bone_names",
    "load_rig_preset",
    "repose_mesh",
    "rest_change",
    "rig_preset_names",
]
