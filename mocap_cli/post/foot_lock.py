"""Foot locking: planted feet stay planted, supporting hands stay put, nothing goes through the floor.

The post stage after smoothing (``apply_foot_lock``; ``--foot-lock auto|off``):
1. contacts from the motion and the detector's evidence (``post.contacts``), then the floor fitted to them
   (``post.floor``) and the contacts found again on that floor;
2. for every contact interval an anchor: the median position of the joint over the interval, on the floor;
   the foot's heading (ankle→ball) is held at its median over the interval; with heel and ball both down the
   foot is aimed from the ankle anchor at the ball anchor, with only the ball down the ankle turns about the
   ball anchor (the foot's pitch comes from the motion, its heading is held);
3. the pelvis is lowered, eased in and out, where a leg cannot reach its anchor;
4. analytic two-bone IK (``solve.two_bone``) moves hip-knee-ankle (shoulder-elbow-wrist for supporting hands)
   onto the targets, knees kept in their plane of bending; the upper body's local rotations are untouched;
5. the lock fades in and out over ``blend_seconds`` around each interval so nothing pops, and feet are kept
   above the floor in every frame; finally no joint may stay more than 2 cm under the floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocap_cli.capture.detect import Track2D
from mocap_cli.core.motion import Motion
from mocap_cli.core.rotations import (
    quat_apply, quat_between, quat_conj, quat_continuous, quat_from_rotvec, quat_mul, quat_normalize, quat_slerp,
)
from mocap_cli.core.skeleton import forward_kinematics
from mocap_cli.errors import MocapError
from mocap_cli.post.contacts import (
    CONTACT_JOINTS, FOOT_JOINTS, ContactPreset, contact_runs, detect_contacts, image_evidence, load_contact_preset,
    rest_heights,
)
from mocap_cli.post.floor import contact_floor, ease_peaks, lift_above_floor, shift_floor
from mocap_cli.settings import FOOT_LOCK_MODES
from mocap_cli.solve.two_bone import solve_two_bone

# After locking a foot joint may sit this far under the floor at most; any other joint twice as far
# (a joint centre lies a little inside the body's surface).
FOOT_TOLERANCE = 0.01
BODY_TOLERANCE = 0.02
# A leg that cannot reach its anchor gets the pelvis lowered by at most this much (metres).
MAX_PELVIS_DROP = 0.1
# How far (metres) a planted joint's anchor may sit below / above its rest height over the floor.
ANCHOR_BAND = (-0.01, 0.02)


@dataclass(frozen=True)
class Limb:
    root: str
    middle: str
    end: str
    ball: str | None  # the foot's ball joint, None for arms
    pole_sign: float  # +1: the middle joint bends towards the body's front (knee), -1: backwards (elbow)


LEGS = (Limb("left_hip", "left_knee", "left_ankle", "left_foot", 1.0),
        Limb("right_hip", "right_knee", "right_ankle", "right_foot", 1.0))
ARMS = (Limb("left_shoulder", "left_elbow", "left_wrist", None, -1.0),
        Limb("right_shoulder", "right_elbow", "right_wrist", None, -1.0))


def check_foot_lock_mode(mode: str) -> str:
    if mode not in FOOT_LOCK_MODES:
        raise MocapError(f"Unknown --foot-lock '{mode}'; use auto or off.")
    return mode


def apply_foot_lock(motion: Motion, track: Track2D | None = None, mode: str = "auto",
                    preset: ContactPreset | None = None) -> Motion:
    """The whole stage (module docstring). ``mode="off"`` returns ``motion`` itself, untouched."""
    if check_foot_lock_mode(mode) == "off" or motion.num_frames < 2:
        return motion
    preset = preset or load_contact_preset()
    evidence = image_evidence(track, motion.num_frames, motion.fps) if track is not None else None
    found = detect_contacts(motion, preset, 0.0, evidence)
    floor = contact_floor(found)
    if floor is not None:
        found = detect_contacts(shift_floor(found, floor), preset, 0.0, evidence)
    locked = lock_contacts(found, preset)
    locked = keep_above_floor(locked, max(1, int(round(preset.blend_seconds * motion.fps))))
    locked.provenance = {**motion.provenance, "foot_lock": f"auto ({preset.name})"}
    return locked


def keep_above_floor(motion: Motion, blend_frames: int) -> Motion:
    """Lift the body where a foot's sole is more than 1 cm, or any joint more than 2 cm, under the floor."""
    surface = np.zeros(motion.skeleton.num_joints)
    heights = rest_heights(motion)
    for name in FOOT_JOINTS:
        surface[motion.skeleton.index(name)] = heights[CONTACT_JOINTS.index(name)]
    feet = np.full(motion.skeleton.num_joints, -np.inf)
    feet[[motion.skeleton.index(n) for n in FOOT_JOINTS]] = surface[[motion.skeleton.index(n) for n in FOOT_JOINTS]]
    motion = lift_above_floor(motion, np.where(np.isfinite(feet), feet, -1e3), FOOT_TOLERANCE, blend_frames)
    return lift_above_floor(motion, np.zeros_like(surface), BODY_TOLERANCE, blend_frames)


def run_anchors(mask: np.ndarray, values: np.ndarray, blend_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame anchor (F, D) and lock weight (F,) for one joint's contact mask (F,) and values (F, D).

    Inside a contact interval the anchor is the interval's median value and the weight 1; for ``blend_frames``
    frames on either side the weight falls linearly to 0 (the nearer interval wins); elsewhere the weight is 0
    and the anchor is the value itself."""
    anchor = np.array(values, dtype=np.float64, copy=True)
    weight = np.zeros(len(mask))
    for start, end in contact_runs(mask):
        median = np.median(values[start:end], axis=0)
        lo, hi = max(0, start - blend_frames), min(len(mask), end + blend_frames)
        frames = np.arange(lo, hi)
        dist = np.maximum(start - frames, frames - (end - 1)).clip(min=0)
        x = 1.0 - dist / (blend_frames + 1)
        w = x * x * (3.0 - 2.0 * x)  # smoothstep: the lock eases in and out with no kink
        better = w > weight[lo:hi]
        weight[lo:hi] = np.where(better, w, weight[lo:hi])
        anchor[lo:hi] = np.where(better[:, None], median, anchor[lo:hi])
    return anchor, weight


def _on_floor(height: np.ndarray, rest: float) -> np.ndarray:
    """A planted joint's anchor height: its own median height when that is within ``ANCHOR_BAND`` of where the
    skeleton says it rests (joint definitions differ by a centimetre or two between models), else the band's
    nearest edge, so nothing planted floats or sinks."""
    return np.clip(height, rest + ANCHOR_BAND[0], rest + ANCHOR_BAND[1])


def _foot_targets(motion: Motion, joints: np.ndarray, glob: np.ndarray, leg: Limb, n: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ankle target (F, 3), ankle world rotation (F, 4), activity (F,) and lock weight (F,) of one leg
    (module docstring, 2)."""
    sk = motion.skeleton
    assert motion.contacts is not None and leg.ball is not None
    heights = rest_heights(motion)
    ankle, ball = sk.index(leg.end), sk.index(leg.ball)
    heel_down = motion.contacts[:, CONTACT_JOINTS.index(leg.end)] >= 0.5
    ball_down = motion.contacts[:, CONTACT_JOINTS.index(leg.ball)] >= 0.5
    a, b, q = joints[:, ankle], joints[:, ball], glob[:, ankle]
    a_anchor, wa = run_anchors(heel_down, a, n)
    a_anchor[:, 1] = _on_floor(a_anchor[:, 1], heights[CONTACT_JOINTS.index(leg.end)])
    b_anchor, wb = run_anchors(ball_down, b, n)
    b_anchor[:, 1] = _on_floor(b_anchor[:, 1], heights[CONTACT_JOINTS.index(leg.ball)])
    # Heading: the horizontal ankle->ball direction, held at its median over the foot's contact.
    fwd = (b - a) * np.array([1.0, 0.0, 1.0])
    fwd /= np.maximum(np.linalg.norm(fwd, axis=-1, keepdims=True), 1e-9)
    held, wh = run_anchors(heel_down | ball_down, fwd, n)
    yaw = np.arctan2(np.cross(fwd, held)[:, 1], np.sum(fwd * held, axis=-1))
    qh = quat_mul(quat_from_rotvec(np.array([0.0, 1.0, 0.0]) * (wh * yaw)[:, None]), q)
    offset = sk.offsets[ball]
    from_ball = b_anchor - quat_apply(qh, np.broadcast_to(offset, a.shape))
    target = a + wb[:, None] * (from_ball - a)
    target = target + wa[:, None] * (a_anchor - target)
    aimed = quat_mul(quat_between(quat_apply(qh, np.broadcast_to(offset, a.shape)), b_anchor - target), qh)
    rot = quat_slerp(qh, aimed, (wa * wb)[:, None])
    # Keep heel and ball above the floor in every frame.
    ball_y = target[:, 1] + quat_apply(rot, np.broadcast_to(offset, a.shape))[:, 1]
    lift = np.maximum.reduce([np.zeros(len(a)), heights[CONTACT_JOINTS.index(leg.ball)] - ball_y,
                              heights[CONTACT_JOINTS.index(leg.end)] - target[:, 1]])
    target[:, 1] += lift
    active = np.maximum.reduce([wa, wb, wh, (lift > 0).astype(np.float64)])
    return target, rot, active, np.maximum(wa, wb)


def _pelvis_drop(joints: np.ndarray, motion: Motion, targets: dict[str, np.ndarray], n: int) -> np.ndarray:
    """(F,) how far to lower the pelvis so every leg reaches its target (eased, capped)."""
    sk = motion.skeleton
    drop = np.zeros(motion.num_frames)
    for leg in LEGS:
        if leg.end not in targets:
            continue
        hip = joints[:, sk.index(leg.root)]
        reach = 0.999 * (np.linalg.norm(sk.offsets[sk.index(leg.middle)]) + np.linalg.norm(sk.offsets[sk.index(leg.end)]))
        d = targets[leg.end] - hip
        vertical = np.sqrt(np.maximum(reach**2 - d[:, 0] ** 2 - d[:, 2] ** 2, 0.0))
        drop = np.maximum(drop, np.where(d[:, 1] < 0, -d[:, 1] - vertical, 0.0))
    return np.minimum(ease_peaks(np.maximum(drop, 0.0), n), MAX_PELVIS_DROP)


def _travel_shift(shift_sum: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """(F, 3) horizontal root shift that carries the body with its planted feet: the weighted mean of the
    planted feet's corrections (F, 3) where a foot is locked, interpolated across the frames between."""
    shift = np.zeros_like(shift_sum)
    held = weight > 1e-6
    if not held.any():
        return shift
    t = np.arange(len(weight))
    for axis in (0, 2):
        shift[:, axis] = np.interp(t, t[held], shift_sum[held, axis] / weight[held])
    return shift


def lock_contacts(motion: Motion, preset: ContactPreset) -> Motion:
    """Hold planted feet and supporting hands (module docstring, 2-5). Needs ``motion.contacts``."""
    if motion.contacts is None:
        return motion
    sk = motion.skeleton
    n = max(1, int(round(preset.blend_seconds * motion.fps)))
    joints, glob = forward_kinematics(sk, motion.rotations, motion.root_translation)
    targets: dict[str, np.ndarray] = {}
    end_rotations: dict[str, np.ndarray] = {}
    active: dict[str, np.ndarray] = {}
    shift_sum, shift_weight = np.zeros((motion.num_frames, 3)), np.zeros(motion.num_frames)
    for leg in LEGS:
        targets[leg.end], end_rotations[leg.end], active[leg.end], lock = _foot_targets(motion, joints, glob, leg, n)
        shift_sum += lock[:, None] * (targets[leg.end] - joints[:, sk.index(leg.end)])
        shift_weight += lock
    for arm in ARMS:
        down = motion.contacts[:, CONTACT_JOINTS.index(arm.end)] >= 0.5
        if not down.any():
            continue
        w_pos = joints[:, sk.index(arm.end)]
        anchor, w = run_anchors(down, w_pos, n)
        anchor[:, 1] = _on_floor(anchor[:, 1], rest_heights(motion)[CONTACT_JOINTS.index(arm.end)])
        targets[arm.end] = w_pos + w[:, None] * (anchor - w_pos)
        end_rotations[arm.end] = glob[:, sk.index(arm.end)]
        active[arm.end] = w

    root = motion.root_translation + _travel_shift(shift_sum, shift_weight)
    joints, glob = forward_kinematics(sk, motion.rotations, root)
    drop = _pelvis_drop(joints, motion, targets, n)
    root[:, 1] -= drop
    joints, glob = forward_kinematics(sk, motion.rotations, root)
    rotations = motion.rotations.copy()
    forward = quat_apply(glob[:, 0], np.broadcast_to(np.array([0.0, 0.0, 1.0]), (motion.num_frames, 3)))
    for limb in LEGS + ARMS:
        if limb.end not in targets:
            continue
        # Where the pelvis was lowered the legs must bend even outside a lock, to keep the feet in place.
        f = np.flatnonzero((active[limb.end] > 0) | ((drop > 0) & (limb in LEGS)))
        if not len(f):
            continue
        r, m, e = sk.index(limb.root), sk.index(limb.middle), sk.index(limb.end)
        solved = solve_two_bone(joints[f, r], joints[f, m], joints[f, e], targets[limb.end][f],
                                glob[f, r], glob[f, m], limb.pole_sign * forward[f])
        parent = sk.parents[r]
        rotations[f, r] = quat_mul(quat_conj(glob[f, parent]), solved.upper)
        rotations[f, m] = quat_mul(quat_conj(solved.upper), solved.middle)
        rotations[f, e] = quat_mul(quat_conj(solved.middle), end_rotations[limb.end][f])
    rotations = quat_continuous(quat_normalize(rotations), axis=0)
    return motion.with_rotations(rotations, root)
