"""Analytic two-bone IK (hip-knee-ankle, shoulder-elbow-wrist): move a limb's end onto a target.

Used to pin planted feet and supporting hands. The limb's root stays where it is; the middle joint stays in the
limb's current plane of bending and on the side it bends to now, so a knee never flips backwards and the
limb's twist is kept. The root joint's rotation maps the old (upper bone, bend normal) pair onto the new one,
and the middle joint only turns about its hinge axis.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocap_cli.core.rotations import (
    frame_from_vectors,
    quat_apply,
    quat_between,
    quat_from_matrix,
    quat_mul,
    quat_slerp,
)

# Below this sine of the bend angle the current bend plane is too unreliable to carry over.
_PLANE_MIN_SIN, _PLANE_FULL_SIN = 0.03, 0.15


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class TwoBoneResult:
    """upper, middle: (N, 4) world rotations replacing the limb's root and middle joints;
    middle_position, end_position: (N, 3) where the middle joint and the end now are (the end misses the
    target only when it is out of reach)."""

    upper: np.ndarray
    middle: np.ndarray
    middle_position: np.ndarray
    end_position: np.ndarray


def solve_two_bone(
    root: np.ndarray,
    middle: np.ndarray,
    end: np.ndarray,
    target: np.ndarray,
    upper_global: np.ndarray,
    middle_global: np.ndarray,
    pole: np.ndarray,
) -> TwoBoneResult:
    """Pose a two-bone chain so its end reaches ``target``.

    root, middle, end, target: (N, 3) current joint positions and the end's target; upper_global,
    middle_global: (N, 4) current world rotations of the root and middle joints; pole: (N, 3) the direction
    the middle joint bends towards when the chain is (nearly) straight (e.g. the body's forward for a knee).
    Bone lengths are taken from the current pose.
    """
    l1 = np.linalg.norm(middle - root, axis=-1)
    l2 = np.linalg.norm(end - middle, axis=-1)
    to_target = target - root
    dist = np.linalg.norm(to_target, axis=-1)
    reach = np.clip(dist, np.abs(l1 - l2) + 1e-6, l1 + l2 - 1e-6)
    axis = _unit(to_target)
    # Bend side: the current middle joint's offset from the root-target line, or the pole when straight.
    old_axis = _unit(end - root)
    bend = middle - root
    bend = bend - np.sum(bend * axis, axis=-1, keepdims=True) * axis
    sin_old = np.linalg.norm(np.cross(_unit(middle - root), _unit(end - middle)), axis=-1)
    pole_perp = pole - np.sum(pole * axis, axis=-1, keepdims=True) * axis
    w = np.clip((sin_old - _PLANE_MIN_SIN) / (_PLANE_FULL_SIN - _PLANE_MIN_SIN), 0.0, 1.0)[:, None]
    side = _unit(w * _unit(bend) + (1 - w) * _unit(pole_perp))
    cos_a = np.clip((l1**2 + reach**2 - l2**2) / (2 * l1 * reach), -1.0, 1.0)
    sin_a = np.sqrt(1.0 - cos_a**2)
    new_middle = root + l1[:, None] * (cos_a[:, None] * axis + sin_a[:, None] * side)
    new_end = root + reach[:, None] * axis

    old_upper, new_upper = middle - root, new_middle - root
    old_normal = np.cross(old_upper, old_axis)
    new_normal = np.cross(new_upper, axis)
    aligned = quat_from_matrix(
        frame_from_vectors(new_upper, new_normal) @ np.swapaxes(frame_from_vectors(old_upper, old_normal), -1, -2)
    )
    swing = quat_between(old_upper, new_upper)
    turn = quat_slerp(swing, aligned, w)
    upper = quat_mul(turn, upper_global)
    carried = quat_mul(turn, middle_global)
    lower_dir = quat_apply(turn, end - middle)
    middle_rot = quat_mul(quat_between(lower_dir, new_end - new_middle), carried)
    return TwoBoneResult(upper, middle_rot, new_middle, new_end)
