"""Inverse kinematics: 3D joint positions (+ optional twist hints) → local joint rotations.

Every joint's world rotation is solved so that its rest bone (to its main child) points where the target
bone points ("swing"); the rotation about that bone ("twist") comes from a secondary direction:
  * another bone of the same rigid part (pelvis: the hip line; chest: the collar line), exact for rigid input;
  * a limb's bend plane (upper arm: the forearm; thigh: the shin), faded out as the limb straightens;
  * a twist *hint* measured from extra landmarks (head: ears/nose; neck: the ear line; feet: heel/toe;
    wrists: the knuckles), given in the world frame as in ``TWIST_HINTS``.
Without a usable secondary direction the joint takes the smallest swing from its parent's frame.
Because each joint's rotation maps its rest bone exactly onto the target bone, forward kinematics of the
result reproduces the input joints whenever the skeleton's bone lengths match them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocap_cli.core.rotations import (
    frame_from_vectors,
    quat_apply,
    quat_between,
    quat_conj,
    quat_continuous,
    quat_from_matrix,
    quat_mul,
    quat_normalize,
    quat_slerp,
)
from mocap_cli.core.skeleton import RIGID_GROUPS, Skeleton


@dataclass(frozen=True)
class TwistHint:
    """A secondary direction for one joint: ``rest`` is where it points in the rest T-pose (world)."""

    joint: str
    rest: tuple[float, float, float]
    doc: str


# Rest directions of the hints a detector may provide (world frame of the rest T-pose: Y up, +Z forward,
# +X the body's left). A hint array is (F, 3): the same vector measured on the posed body.
TWIST_HINTS: dict[str, TwistHint] = {
    "neck": TwistHint("neck", (1.0, 0.0, 0.0), "right ear -> left ear"),
    "head": TwistHint("head", (0.0, -0.1, 1.0), "mid-ears -> nose (head forward); uses the ear line too"),
    "head_lateral": TwistHint("head", (1.0, 0.0, 0.0), "right ear -> left ear"),
    "left_ankle": TwistHint("left_ankle", (-1.0, 0.0, 0.0), "(toe - heel) x (ankle - heel)"),
    "right_ankle": TwistHint("right_ankle", (-1.0, 0.0, 0.0), "(toe - heel) x (ankle - heel)"),
    "left_wrist": TwistHint("left_wrist", (0.0, 0.0, 1.0), "pinky knuckle -> index knuckle"),
    "right_wrist": TwistHint("right_wrist", (0.0, 0.0, 1.0), "pinky knuckle -> index knuckle"),
}

# Joints whose twist follows the bend plane of the limb below them: (joint, elbow/knee, rest bend direction).
_BEND_PLANES = {
    "left_shoulder": ("left_elbow", (0.0, 0.0, 1.0)),
    "right_shoulder": ("right_elbow", (0.0, 0.0, 1.0)),
    "left_hip": ("left_knee", (0.0, 0.0, -1.0)),
    "right_hip": ("right_knee", (0.0, 0.0, -1.0)),
}
# Below this sine of the bend angle the bend plane is too unreliable and the swing takes over.
_BEND_MIN_SIN, _BEND_FULL_SIN = 0.08, 0.3


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _align(rest_a: np.ndarray, rest_b: np.ndarray, tgt_a: np.ndarray, tgt_b: np.ndarray) -> np.ndarray:
    """Rotation (F, 4) mapping rest_a onto tgt_a exactly and rest_b as close as possible onto tgt_b."""
    f_rest = frame_from_vectors(np.broadcast_to(rest_a, tgt_a.shape), np.broadcast_to(rest_b, tgt_b.shape))
    f_tgt = frame_from_vectors(tgt_a, tgt_b)
    return quat_from_matrix(f_tgt @ np.swapaxes(f_rest, -1, -2))


def _swing(parent_global: np.ndarray, rest_dir: np.ndarray, tgt_dir: np.ndarray) -> np.ndarray:
    """The parent's frame turned by the smallest rotation that points the bone at the target."""
    carried = quat_apply(parent_global, np.broadcast_to(rest_dir, tgt_dir.shape))
    return quat_mul(quat_between(carried, tgt_dir), parent_global)


def _blend(swing: np.ndarray, twisted: np.ndarray, weight: np.ndarray) -> np.ndarray:
    # Both rotations map the rest bone onto the same target, so any slerp between them does too.
    return quat_slerp(swing, twisted, np.clip(weight, 0.0, 1.0)[:, None])


def solve_ik(
    skeleton: Skeleton,
    joints: np.ndarray,
    hints: dict[str, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Local rotations (F, J, 4) and root translation (F, 3) that pose ``skeleton`` like ``joints`` (F, J, 3).

    ``hints`` maps keys of ``TWIST_HINTS`` to (F, 3) world vectors; missing or non-finite hints fall back.
    """
    hints = hints or {}
    names = skeleton.names
    idx = {n: i for i, n in enumerate(names)}
    num_frames, num_joints = joints.shape[:2]
    glob = np.zeros((num_frames, num_joints, 4))
    glob[..., 3] = 1.0
    offsets = skeleton.offsets
    rest_pos = skeleton.rest_positions()

    def bone(a: str, b: str) -> np.ndarray:
        return joints[:, idx[b]] - joints[:, idx[a]]

    def rest(a: str, b: str) -> np.ndarray:
        return rest_pos[idx[b]] - rest_pos[idx[a]]

    def hint(key: str) -> tuple[np.ndarray, np.ndarray] | None:
        h = hints.get(key)
        if h is None:
            return None
        ok = np.all(np.isfinite(h), axis=-1) & (np.linalg.norm(np.nan_to_num(h), axis=-1) > 1e-6)
        return np.where(ok[:, None], np.nan_to_num(h), 0.0), ok.astype(np.float64)

    for j, name in enumerate(names):
        parent = skeleton.parents[j]
        parent_global = glob[:, parent] if parent >= 0 else np.broadcast_to(np.array([0, 0, 0, 1.0]), (num_frames, 4))
        children = skeleton.children(j)
        if name in RIGID_GROUPS and all(n in idx for pair in RIGID_GROUPS[name] for n in pair):
            (a0, a1), (b0, b1) = RIGID_GROUPS[name]
            glob[:, j] = _align(rest(a0, a1), rest(b0, b1), bone(a0, a1), bone(b0, b1))
            continue
        if not children:
            glob[:, j] = _leaf_rotation(name, parent_global, hint)
            continue
        child = children[0]
        rest_dir = offsets[child]
        tgt_dir = joints[:, child] - joints[:, j]
        swing = _swing(parent_global, rest_dir, tgt_dir)
        if name in ("spine1", "spine2") and {"left_hip", "right_hip", "left_collar", "right_collar"} <= idx.keys():
            # The spine's twist is spread between the hip line and the collar line.
            w = 0.33 if name == "spine1" else 0.67
            lateral = (1 - w) * _unit(bone("right_hip", "left_hip")) + w * _unit(bone("right_collar", "left_collar"))
            glob[:, j] = _align(rest_dir, np.array([1.0, 0, 0]), tgt_dir, lateral)
        elif name in _BEND_PLANES:
            lower, bend_rest = _BEND_PLANES[name]
            lower_child = skeleton.children(idx[lower])[0]
            bend = joints[:, lower_child] - joints[:, idx[lower]]
            sin = np.linalg.norm(np.cross(_unit(tgt_dir), _unit(bend)), axis=-1)
            twisted = _align(rest_dir, np.array(bend_rest), tgt_dir, bend)
            weight = (sin - _BEND_MIN_SIN) / (_BEND_FULL_SIN - _BEND_MIN_SIN)
            glob[:, j] = _blend(swing, twisted, weight)
        elif name in TWIST_HINTS and (h := hint(name)) is not None:
            vec, ok = h
            sin = np.linalg.norm(np.cross(_unit(tgt_dir), _unit(vec)), axis=-1)
            twisted = _align(rest_dir, np.array(TWIST_HINTS[name].rest), tgt_dir, np.where(ok[:, None], vec, 1.0))
            glob[:, j] = _blend(swing, twisted, ok * (sin - _BEND_MIN_SIN) / (_BEND_FULL_SIN - _BEND_MIN_SIN))
        else:
            glob[:, j] = swing

    local = np.empty_like(glob)
    for j, parent in enumerate(skeleton.parents):
        local[:, j] = glob[:, j] if parent < 0 else quat_mul(quat_conj(glob[:, parent]), glob[:, j])
    local = quat_continuous(quat_normalize(local), axis=0)
    return local, joints[:, 0].copy()


def _leaf_rotation(name: str, parent_global: np.ndarray, hint) -> np.ndarray:
    """A leaf joint has no child to aim at: it follows its parent unless landmarks give its frame."""
    if name == "head":
        fwd, lat = hint("head"), hint("head_lateral")
        if fwd is not None and lat is not None:
            ok = fwd[1] * lat[1]
            frame = _align(
                np.array(TWIST_HINTS["head_lateral"].rest),
                np.array(TWIST_HINTS["head"].rest),
                np.where(ok[:, None] > 0, lat[0], 1.0),
                np.where(ok[:, None] > 0, fwd[0], 1.0),
            )
            return np.where(ok[:, None] > 0, frame, parent_global)
    return parent_global.copy()
