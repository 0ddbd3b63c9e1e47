"""The canonical skeleton every model writes to: SMPL's 24-joint topology and joint order.

World frame everywhere in mocap: **Y up, metres, the body faces +Z in the rest pose, its left side is +X**
(right-handed; the same as SMPL and glTF). The rest pose is a T-pose: arms horizontal along ±X, legs
straight down, every local rotation identity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocap_cli.core.rotations import frame_from_vectors, quat_apply, quat_between, quat_mul

JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hand",
    "right_hand",
)
PARENTS: tuple[int, ...] = (
    -1,
    0,
    0,
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    9,
    9,
    12,
    13,
    14,
    16,
    17,
    18,
    19,
    20,
    21,
)
JOINT_INDEX: dict[str, int] = {n: i for i, n in enumerate(JOINT_NAMES)}

# Default adult proportions (stature 1.75 m), as offsets from the parent joint in the T-pose.
# Limb lengths follow the segment-length fractions of stature in D. A. Winter, "Biomechanics and Motor
# Control of Human Movement", 4th ed. (2009), Fig. 4.1 (after Drillis & Contini): upper arm 0.186 H,
# forearm 0.146 H, thigh 0.245 H, shank 0.246 H, ankle height 0.039 H. Trunk, shoulder and hip
# placements are our own estimates chosen to land the neck at ~0.87 H and the shoulders ~0.38 m apart.
# Subjects get their own lengths from the 3D estimate (see ``Skeleton.with_bone_lengths``).
_H = 1.75
_OFFSETS_RIGHT_HANDED_T_POSE: dict[str, tuple[float, float, float]] = {
    "pelvis": (0.0, 0.995, 0.0),  # root: its rest offset is the pelvis height above the floor
    "left_hip": (0.085, -0.065, 0.0),
    "right_hip": (-0.085, -0.065, 0.0),
    "spine1": (0.0, 0.11, -0.01),
    "left_knee": (0.0, -0.245 * _H, 0.0),
    "right_knee": (0.0, -0.245 * _H, 0.0),
    "spine2": (0.0, 0.13, 0.0),
    "left_ankle": (0.0, -0.246 * _H, 0.0),
    "right_ankle": (0.0, -0.246 * _H, 0.0),
    "spine3": (0.0, 0.055, 0.01),
    "left_foot": (0.0, -0.05, 0.12),
    "right_foot": (0.0, -0.05, 0.12),
    "neck": (0.0, 0.215, -0.02),
    "left_collar": (0.07, 0.145, -0.01),
    "right_collar": (-0.07, 0.145, -0.01),
    "head": (0.0, 0.09, 0.03),
    "left_shoulder": (0.12, 0.0, 0.0),
    "right_shoulder": (-0.12, 0.0, 0.0),
    "left_elbow": (0.186 * _H, 0.0, 0.0),
    "right_elbow": (-0.186 * _H, 0.0, 0.0),
    "left_wrist": (0.146 * _H, 0.0, 0.0),
    "right_wrist": (-0.146 * _H, 0.0, 0.0),
    "left_hand": (0.08, 0.0, 0.0),
    "right_hand": (-0.08, 0.0, 0.0),
}

ANKLE_HEIGHT = 0.039 * _H  # ankle joint above the sole in the default skeleton

# Where a leaf bone ends (BVH "End Site", glTF/FBX leaf tips), in the leaf joint's rest frame.
LEAF_TIPS: dict[str, tuple[float, float, float]] = {
    "head": (0.0, 0.16, 0.0),
    "left_foot": (0.0, 0.0, 0.06),
    "right_foot": (0.0, 0.0, 0.06),
    "left_hand": (0.09, 0.0, 0.0),
    "right_hand": (-0.09, 0.0, 0.0),
}

# Joints with several children, posed as one rigid piece from two bone vectors (from, to): the first is
# matched exactly, the second as closely as possible. IK and skeleton fitting use the same vectors.
# The pelvis trusts the hip line first (the legs hang from it); the chest trusts the neck bone first.
RIGID_GROUPS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "pelvis": (("right_hip", "left_hip"), ("pelvis", "spine1")),
    "spine3": (("spine3", "neck"), ("right_collar", "left_collar")),
}

# Bones whose lengths are averaged between the body's two sides when fitting a subject.
_MIRROR = {n: n.replace("left_", "right_") for n in JOINT_NAMES if n.startswith("left_")}


@dataclass(frozen=True)
class Skeleton:
    """Joint names, parent indices (-1 for the root) and rest offsets from the parent (metres).

    ``offsets[0]`` is the root joint's rest position in the world (pelvis height above the floor)."""

    names: tuple[str, ...]
    parents: tuple[int, ...]
    offsets: np.ndarray  # (J, 3)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.parents) or self.offsets.shape != (len(self.names), 3):
            raise ValueError("skeleton names, parents and offsets disagree in length")
        if any(p >= i for i, p in enumerate(self.parents)):
            raise ValueError("skeleton parents must come before their children")

    @property
    def num_joints(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        return self.names.index(name)

    def children(self, j: int) -> list[int]:
        return [c for c, p in enumerate(self.parents) if p == j]

    def rest_positions(self) -> np.ndarray:
        """World joint positions (J, 3) in the rest pose."""
        pos = np.zeros((self.num_joints, 3))
        for j, p in enumerate(self.parents):
            pos[j] = self.offsets[j] if p < 0 else pos[p] + self.offsets[j]
        return pos

    def bone_lengths(self) -> np.ndarray:
        return np.linalg.norm(self.offsets, axis=-1)

    def with_bone_lengths(self, lengths: np.ndarray) -> "Skeleton":
        """Same rest directions, new bone lengths (J,); the root's offset is left unchanged."""
        off = self.offsets.copy()
        norms = np.linalg.norm(off, axis=-1)
        for j, p in enumerate(self.parents):
            if p >= 0 and norms[j] > 0:
                off[j] *= lengths[j] / norms[j]
        # Keep the soles on the floor in the rest pose: the root's height follows the new leg length.
        if "left_ankle" in self.names:
            ankle = self.index("left_ankle")
            rel = Skeleton(self.names, self.parents, np.vstack([np.zeros(3), off[1:]])).rest_positions()
            ankle_height = ANKLE_HEIGHT * lengths[ankle] / max(norms[ankle], 1e-9)
            off[0] = (0.0, ankle_height - rel[ankle, 1], 0.0)
        return Skeleton(self.names, self.parents, off)

    def fitted_to(self, joints: np.ndarray, confidence: np.ndarray | None = None) -> "Skeleton":
        """Subject skeleton: bone lengths = median over frames of the measured lengths in ``joints``
        (F, J, 3), averaged between left and right sides; frames with low confidence are ignored."""
        lengths = self.bone_lengths().copy()
        measured = np.zeros(len(lengths), dtype=bool)
        for j, p in enumerate(self.parents):
            if p < 0:
                continue
            d = np.linalg.norm(joints[:, j] - joints[:, p], axis=-1)
            ok = np.isfinite(d)
            if confidence is not None:
                ok &= (confidence[:, j] > 0.5) & (confidence[:, p] > 0.5)
            if ok.sum() >= 1:
                lengths[j] = float(np.median(d[ok]))
                measured[j] = True
        for left, right in _MIRROR.items():
            if left in self.names and right in self.names:
                i, k = self.index(left), self.index(right)
                # A side never seen well (the far arm in a side view) takes the seen side's length, not a
                # blend with the default skeleton's.
                both = [n for n in (i, k) if measured[n]] or [i, k]
                lengths[i] = lengths[k] = float(np.mean(lengths[both]))
        fitted = self.with_bone_lengths(lengths)
        return fitted._with_rigid_geometry(joints, confidence)

    def _with_rigid_geometry(self, joints: np.ndarray, confidence: np.ndarray | None) -> "Skeleton":
        """For joints with several children (pelvis, chest) bone lengths are not enough: the angles between
        the child bones are the subject's too. Measure each child's offset in the frame IK uses for that
        joint (main bone + left-right line), take the median over frames, make it left/right symmetric,
        and express it in the rest frame."""
        off = self.offsets.copy()
        for parent, ((a0, a1), (b0, b1)) in RIGID_GROUPS.items():
            if not {parent, a0, a1, b0, b1} <= set(self.names):
                continue
            p = self.index(parent)
            used = [self.index(n) for n in (parent, a0, a1, b0, b1)]
            kids = self.children(p)
            ok = np.all(np.isfinite(joints[:, used]), axis=(1, 2))
            if confidence is not None:
                ok &= np.all(confidence[:, used] > 0.5, axis=1)
            if ok.sum() < 1:
                continue
            j = joints[ok]
            idx = self.index
            frames = frame_from_vectors(j[:, idx(a1)] - j[:, idx(a0)], j[:, idx(b1)] - j[:, idx(b0)])
            local = np.einsum("fij,fki->fkj", frames, j[:, kids] - j[:, p : p + 1])  # child offsets in frame
            local = np.median(local, axis=0)
            names = [self.names[k] for k in kids]
            rest = self.rest_positions()
            rest_frame = frame_from_vectors(rest[idx(a1)] - rest[idx(a0)], rest[idx(b1)] - rest[idx(b0)])
            # Mirror partners share their offset but for the sign of the lateral (world X) component.
            world = local @ rest_frame.T
            for a, kid in enumerate(names):
                if kid.startswith("left_") and kid.replace("left_", "right_") in names:
                    b = names.index(kid.replace("left_", "right_"))
                    avg = 0.5 * (world[a] + world[b] * np.array([-1.0, 1.0, 1.0]))
                    world[a], world[b] = avg, avg * np.array([-1.0, 1.0, 1.0])
                elif not kid.startswith("right_"):
                    world[a][0] = 0.0  # centre-line children stay on the body's midline
            for a, k in enumerate(kids):
                off[k] = world[a]
        return Skeleton(self.names, self.parents, off).with_bone_lengths(np.linalg.norm(off, axis=-1))

    def scaled(self, factor: float) -> "Skeleton":
        return Skeleton(self.names, self.parents, self.offsets * factor)


def canonical_skeleton() -> Skeleton:
    """The default adult skeleton in the T-pose (see the proportions note above)."""
    offsets = np.array([_OFFSETS_RIGHT_HANDED_T_POSE[n] for n in JOINT_NAMES], dtype=np.float64)
    return Skeleton(JOINT_NAMES, PARENTS, offsets)


def forward_kinematics(
    skeleton: Skeleton, rotations: np.ndarray, root_translation: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """World positions (F, J, 3) and world rotations (F, J, 4) from local rotations (F, J, 4, xyzw)
    and the root joint's world position (F, 3)."""
    num_frames, num_joints = rotations.shape[:2]
    pos = np.zeros((num_frames, num_joints, 3))
    glob = np.zeros((num_frames, num_joints, 4))
    for j, p in enumerate(skeleton.parents):
        if p < 0:
            glob[:, j] = rotations[:, j]
            pos[:, j] = root_translation
        else:
            glob[:, j] = quat_mul(glob[:, p], rotations[:, j])
            pos[:, j] = pos[:, p] + quat_apply(glob[:, p], np.broadcast_to(skeleton.offsets[j], (num_frames, 3)))
    return pos, glob


def canonical_name(skeleton: Skeleton, j: int) -> str | None:
    """The canonical joint name of joint ``j``: its own name, or for a renamed skeleton with the canonical
    topology (a rig preset keeps SMPL's joint order) the canonical name at that index; else None."""
    from mocap_cli.core.hand_skeleton import HAND_JOINT_NAMES, HAND_PARENTS

    name = skeleton.names[j]
    if name in JOINT_INDEX or name in HAND_JOINT_NAMES:
        return name
    if tuple(skeleton.parents) == PARENTS:
        return JOINT_NAMES[j]
    if tuple(skeleton.parents) == HAND_PARENTS:
        return HAND_JOINT_NAMES[j]
    return None


def leaf_tip(skeleton: Skeleton, j: int) -> np.ndarray | None:
    """Where leaf joint ``j``'s bone ends (offset from the joint, rest pose), or None if unknown.

    ``LEAF_TIPS`` holds the canonical T-pose tips; when the skeleton's bone into ``j`` points elsewhere than
    the canonical one (an A-pose rest, a SMPL body) the tip turns with it by the smallest rotation."""
    from mocap_cli.core.hand_skeleton import FINGER_JOINT_NAMES, finger_rest_offsets, finger_tip

    name = canonical_name(skeleton, j)
    own = skeleton.offsets[j]
    if name in FINGER_JOINT_NAMES:  # fingertips: the rest hand's, scaled like this finger's last bone
        ref = finger_rest_offsets()[FINGER_JOINT_NAMES.index(name)]
        tip = finger_tip(name)
        if tip is None:
            return None
        tip = tip * np.linalg.norm(own) / np.linalg.norm(ref)
    elif name in LEAF_TIPS:
        tip = np.asarray(LEAF_TIPS[name], dtype=np.float64)
        ref = np.asarray(_OFFSETS_RIGHT_HANDED_T_POSE[name], dtype=np.float64)
    else:
        return None
    if np.linalg.norm(own) < 1e-9 or skeleton.parents[j] < 0:
        return tip
    return quat_apply(quat_between(ref, own), tip)
