"""Foot locking: the body follows its planted feet, supporting hands stay put, feet stay out of the floor.

The post stage after smoothing (``apply_foot_lock``; ``--foot-lock auto|off``):
1. contacts from the motion and the detector's evidence (``post.contacts``), then the floor fitted to them
   (``post.floor``: moved only when the planted feet rest outside a band over it, and down to the planted
   hands and knees in floor work) and the contacts found again on that floor;
2. the root follows the planted feet horizontally (``root_follow``): each contact interval's anchor is the
   joint's median position, and the drift of the planted feet from their anchors beyond a dead band moves
   the whole body, so the legs keep the model's pose (what the estimate gets right) while the body stops
   sliding;
3. with ``hold_feet`` (off by default) each planted heel/ball is also held horizontally at its anchor with
   the foot's heading, and the corrections ease in and out with the moving joint over ``blend_seconds``;
   supporting hands are always held, over their whole contact; foot intervals whose joint strays farther than
   ``release_distance`` are not held (a wrong contact);
4. feet under the floor are lifted by their legs, by at most ``lift_cap``; analytic two-bone IK
   (``solve.two_bone``) moves hip-knee-ankle (shoulder-elbow-wrist) onto the targets, a near-straight knee
   keeping the bend plane of its last bent frame; the pelvis is lowered only where a leg would miss by more
   than ``reach_slack``; the upper body's local rotations are untouched;
5. finally no joint other than the feet may stay more than 2 cm under the floor (floor work): the body is
   lifted.

Why the legs are not pinned by default: on the rendered benchmark clips the estimate's foot errors are as
much in its legs as in its root, and pinning the feet moved those errors into the legs (PA-MPJPE and
acceleration error up); following with the root removes the common drift and leaves the pose alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from mocap_cli.capture.detect import Track2D
from mocap_cli.core.motion import Motion
from mocap_cli.core.rotations import (
    quat_apply,
    quat_between,
    quat_conj,
    quat_continuous,
    quat_from_rotvec,
    quat_mul,
    quat_normalize,
    quat_slerp,
)
from mocap_cli.core.skeleton import forward_kinematics
from mocap_cli.errors import MocapError
from mocap_cli.post.contacts import (
    CONTACT_JOINTS,
    FOOT_JOINTS,
    ContactPreset,
    contact_runs,
    detect_contacts,
    image_evidence,
    load_contact_preset,
    rest_heights,
    still_window,
)
from mocap_cli.post.floor import (
    ease_peaks,
    fitted_floor,
    lift_above_floor,
    shift_floor,
)
from mocap_cli.settings import FOOT_LOCK_MODES
from mocap_cli.solve.two_bone import solve_two_bone

# After locking a foot joint may sit this far under the floor at most; any other joint twice as far
# (a joint centre lies a little inside the body's surface).
FOOT_TOLERANCE = 0.01
BODY_TOLERANCE = 0.02
# A supporting hand is held however far the estimate's wrist strays over its contact (``release_distance`` is
# for feet): it counts only at the floor and still in the image, and in floor work the estimate's root and
# arms drift 10-30 cm while the hand rests (tests/post/test_floor_work.py).
SUPPORT_RELEASE = np.inf
# A leg that cannot reach its anchor gets the pelvis lowered by at most this much (metres).
MAX_PELVIS_DROP = 0.1
# A knee whose offset from the hip-ankle line is below this share of the thigh's length is "straight": its
# plane of bending is carried over from the last bent frame.
BENT_SIN = 0.15


@dataclass(frozen=True)
class Limb:
    root: str
    middle: str
    end: str
    ball: str | None  # the foot's ball joint, None for arms
    pole_sign: float  # +1: the middle joint bends towards the body's front (knee), -1: backwards (elbow)


LEGS = (
    Limb("left_hip", "left_knee", "left_ankle", "left_foot", 1.0),
    Limb("right_hip", "right_knee", "right_ankle", "right_foot", 1.0),
)
ARMS = (
    Limb("left_shoulder", "left_elbow", "left_wrist", None, -1.0),
    Limb("right_shoulder", "right_elbow", "right_wrist", None, -1.0),
)


def check_foot_lock_mode(mode: str) -> str:
    if mode not in FOOT_LOCK_MODES:
        raise MocapError(f"Unknown --foot-lock '{mode}'; use auto or off.")
    return mode


def apply_foot_lock(
    motion: Motion, track: Track2D | None = None, mode: str = "auto", preset: ContactPreset | None = None
) -> Motion:
    """The whole stage (module docstring). ``mode="off"`` returns ``motion`` itself, untouched."""
    if check_foot_lock_mode(mode) == "off" or motion.num_frames < 2:
        return motion
    preset = preset or load_contact_preset()
    evidence = (
        image_evidence(track, motion.num_frames, motion.fps, still_window(preset, float(track.fps)))
        if track is not None
        else None
    )
    found = detect_contacts(motion, preset, 0.0, evidence)
    floor = fitted_floor(found, preset.floor_band)
    if floor is not None:
        found = detect_contacts(shift_floor(found, floor), preset, 0.0, evidence)
    n = max(1, int(round(preset.blend_seconds * motion.fps)))
    locked = lock_contacts(found, preset)
    # No joint other than the feet (hands, knees, head in floor work) may stay more than 2 cm under the floor:
    # the body is lifted. Feet are only lifted by their legs (``lock_contacts``): lifting the whole body for
    # them moved the root away from the truth on every benchmark clip where feet dip (squat: 70 -> 141 mm).
    locked = lift_above_floor(locked, _body_surface(locked), BODY_TOLERANCE, n)
    locked.provenance = {**motion.provenance, "foot_lock": f"auto ({preset.name})"}
    return locked


def _body_surface(motion: Motion) -> np.ndarray:
    """(J,) how far each joint's centre may sit above the floor's surface when touching it: 0 for every joint
    but the feet, which are far below any floor here (they are handled by their legs)."""
    surface = np.zeros(motion.skeleton.num_joints)
    surface[[motion.skeleton.index(n) for n in FOOT_JOINTS]] = -1e3
    return surface


def run_anchors(
    mask: np.ndarray,
    values: np.ndarray,
    blend_frames: int,
    release: float = np.inf,
    settle: Callable[[np.ndarray], np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame anchor (F, D) and lock weight (F,) for one joint's contact mask (F,) and values (F, D);
    the joint's target is ``values + weight * (anchor - values)``.

    Inside a contact interval the anchor is the interval's median value (passed through ``settle``, e.g. onto
    the floor) and the weight 1. For ``blend_frames`` frames on either side the weight eases to 0 on a
    smoothstep (the nearer interval wins) and the anchor carries the correction of the interval's first or
    last frame along with the moving joint, so a foot leaving the floor is not pulled back towards where it
    stood. Elsewhere the weight is 0 and the anchor is the value itself. An interval whose values stray
    farther than ``release`` (horizontally, metres) from its median is not held: a foot moving that much was
    not planted."""
    anchor = np.array(values, dtype=np.float64, copy=True)
    weight = np.zeros(len(mask))
    for start, end in contact_runs(mask):
        median = np.median(values[start:end], axis=0)
        stray = values[start:end] - median
        if values.shape[-1] == 3:
            stray = stray[:, [0, 2]]
        if np.linalg.norm(stray, axis=-1).max() > release:
            continue
        if settle is not None:
            median = settle(median)
        lo, hi = max(0, start - blend_frames), min(len(mask), end + blend_frames)
        frames = np.arange(lo, hi)
        dist = np.maximum(start - frames, frames - (end - 1)).clip(min=0)
        x = 1.0 - dist / (blend_frames + 1)
        w = x * x * (3.0 - 2.0 * x)  # smoothstep: the lock eases in and out with no kink
        edge = np.where(frames < start, start, np.where(frames >= end, end - 1, frames))
        held = values[frames] + (median - values[edge])
        better = w > weight[lo:hi]
        weight[lo:hi] = np.where(better, w, weight[lo:hi])
        anchor[lo:hi] = np.where(better[:, None], held, anchor[lo:hi])
    return anchor, weight


def root_follow(motion: Motion, joints: np.ndarray, deadband: float = 0.0) -> np.ndarray:
    """(F, 3) horizontal root shift that carries the body with its planted feet.

    Each planted foot joint asks for the shift that brings it back to its contact interval's anchor (the
    interval's median position); a foot asks for the mean of its planted joints' requests, the body takes the
    mean of its planted feet's. Between contacts the shift is interpolated (held before the first and after
    the last), and shrunk by ``deadband`` metres (smaller requests are ignored). Unlike the leg holds, strayed contacts
    are followed too: on the rendered clips dropping them made the root path worse (70 -> 74 mm). A drift of the whole
    body, the estimate's commonest foot skate, is so removed without touching
    the legs' pose; only what differs between the feet is left to the leg IK."""
    assert motion.contacts is not None
    sk = motion.skeleton
    total, count = np.zeros((motion.num_frames, 3)), np.zeros(motion.num_frames)
    for leg in LEGS:
        foot_sum, foot_n = np.zeros((motion.num_frames, 3)), np.zeros(motion.num_frames)
        for name in (leg.end, leg.ball):
            down = motion.contacts[:, CONTACT_JOINTS.index(name)] >= 0.5
            pos = joints[:, sk.index(name)]
            for start, end in contact_runs(down):
                foot_sum[start:end] += np.median(pos[start:end], axis=0) - pos[start:end]
                foot_n[start:end] += 1
        held = foot_n > 0
        total[held] += foot_sum[held] / foot_n[held, None]
        count += held
    shift = np.zeros((motion.num_frames, 3))
    held = count > 0
    if held.any():
        t = np.arange(motion.num_frames)
        for axis in (0, 2):
            shift[:, axis] = np.interp(t, t[held], total[held, axis] / count[held])
        # A foot's centre rolls a little over heel, sole and ball while planted; that much is left alone.
        size = np.linalg.norm(shift, axis=-1, keepdims=True)
        shift *= np.clip(1.0 - deadband / np.maximum(size, 1e-12), 0.0, 1.0)
    return shift


def bend_poles(hip: np.ndarray, knee: np.ndarray, ankle: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """(F, 3) the direction each frame's knee bends towards: its offset from the hip-ankle line where the leg
    is clearly bent, else the last clearly bent frame's (the first one's before it; ``fallback`` (F, 3) when
    the leg is never bent), so a near-straight leg keeps the plane it had instead of jumping to another."""
    axis = ankle - hip
    axis = axis / np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-12)
    off = knee - hip
    off = off - np.sum(off * axis, axis=-1, keepdims=True) * axis
    upper = np.linalg.norm(knee - hip, axis=-1)
    bent = np.linalg.norm(off, axis=-1) > BENT_SIN * upper
    if not bent.any():
        return fallback
    idx = np.where(bent, np.arange(len(bent)), -1)
    idx = np.maximum.accumulate(idx)
    idx[idx < 0] = np.flatnonzero(bent)[0]
    return off[idx]


def _on_floor(rest: float, preset: ContactPreset) -> Callable[[np.ndarray], np.ndarray]:
    """Settles a planted joint's anchor (3,): its own height when that is within the contact band over where
    the skeleton says it rests (``rest`` - 1 cm to ``rest + preset.floor_band``: joint definitions differ
    between models), else the band's nearest edge, so nothing planted floats or sinks."""

    def settle(anchor: np.ndarray) -> np.ndarray:
        out = np.array(anchor, dtype=np.float64, copy=True)
        out[1] = np.clip(out[1], rest - FOOT_TOLERANCE, rest + preset.floor_band)
        return out

    return settle


def _foot_targets(
    motion: Motion, joints: np.ndarray, glob: np.ndarray, leg: Limb, n: int, preset: ContactPreset, hold: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ankle target (F, 3), ankle world rotation (F, 4), activity (F,) and lock weight (F,) of one leg
    (module docstring, 2)."""
    sk = motion.skeleton
    assert motion.contacts is not None and leg.ball is not None
    heights = rest_heights(motion)
    ankle, ball = sk.index(leg.end), sk.index(leg.ball)
    # Without ``hold`` only the floor lift below applies (the root has followed the planted feet already).
    heel_down = (motion.contacts[:, CONTACT_JOINTS.index(leg.end)] >= 0.5) & hold
    ball_down = (motion.contacts[:, CONTACT_JOINTS.index(leg.ball)] >= 0.5) & hold
    a, b, q = joints[:, ankle], joints[:, ball], glob[:, ankle]
    a_anchor, wa = run_anchors(
        heel_down, a, n, preset.release_distance, _on_floor(heights[CONTACT_JOINTS.index(leg.end)], preset)
    )
    b_anchor, wb = run_anchors(
        ball_down, b, n, preset.release_distance, _on_floor(heights[CONTACT_JOINTS.index(leg.ball)], preset)
    )
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
    # Held horizontally only: the estimate's foot heights carry its depth and leg-length errors, and holding
    # them pulled the legs (PA-MPJPE 66.8 -> 69.7 mm on the rendered clips); the floor lift below applies.
    target[:, 1] = a[:, 1]
    # Keep heel and ball above the floor in every frame.
    ball_y = target[:, 1] + quat_apply(rot, np.broadcast_to(offset, a.shape))[:, 1]
    # Lift heel and ball above the floor (their rest heights less the tolerance) by bending the leg, at most
    # ``lift_cap``: a foot that dips a little under the floor is the estimate's leg error; a deeper sink is the
    # legs' length or the root's height and is left to the model. Lightly smoothed so the lift has no kinks.
    deficit = np.maximum.reduce(
        [
            np.zeros(len(a)),
            heights[CONTACT_JOINTS.index(leg.ball)] - FOOT_TOLERANCE - ball_y,
            heights[CONTACT_JOINTS.index(leg.end)] - FOOT_TOLERANCE - target[:, 1],
        ]
    )
    lift = np.minimum(np.maximum(deficit, gaussian_filter1d(deficit, 1.0)), preset.lift_cap)
    target[:, 1] += lift
    active = np.maximum.reduce([wa, wb, wh, (lift > 0).astype(np.float64)])
    return target, rot, active, np.maximum(wa, wb)


def _pelvis_drop(
    joints: np.ndarray, motion: Motion, targets: dict[str, np.ndarray], n: int, slack: float
) -> np.ndarray:
    """(F,) how far to lower the pelvis so every leg reaches its target to within ``slack`` metres (eased,
    capped): a leg that misses by less keeps the pelvis where it is."""
    sk = motion.skeleton
    drop = np.zeros(motion.num_frames)
    for leg in LEGS:
        if leg.end not in targets:
            continue
        hip = joints[:, sk.index(leg.root)]
        reach = 0.999 * (
            np.linalg.norm(sk.offsets[sk.index(leg.middle)]) + np.linalg.norm(sk.offsets[sk.index(leg.end)])
        )
        d = targets[leg.end] - hip
        vertical = np.sqrt(np.maximum(reach**2 - d[:, 0] ** 2 - d[:, 2] ** 2, 0.0))
        drop = np.maximum(drop, np.where(d[:, 1] < 0, -d[:, 1] - vertical - slack, 0.0))
    return np.minimum(ease_peaks(np.maximum(drop, 0.0), n), MAX_PELVIS_DROP)


def lock_contacts(motion: Motion, preset: ContactPreset) -> Motion:
    """Hold planted feet and supporting hands (module docstring, 2-5). Needs ``motion.contacts``."""
    if motion.contacts is None:
        return motion
    sk = motion.skeleton
    n = max(1, int(round(preset.blend_seconds * motion.fps)))
    joints, glob = forward_kinematics(sk, motion.rotations, motion.root_translation)
    root = motion.root_translation + root_follow(motion, joints, preset.follow_deadband)
    hold = preset.hold_feet > 0
    joints, glob = forward_kinematics(sk, motion.rotations, root)
    targets: dict[str, np.ndarray] = {}
    end_rotations: dict[str, np.ndarray] = {}
    active: dict[str, np.ndarray] = {}
    for leg in LEGS:
        targets[leg.end], end_rotations[leg.end], active[leg.end], _ = _foot_targets(
            motion, joints, glob, leg, n, preset, hold
        )
    for arm in ARMS:
        down = motion.contacts[:, CONTACT_JOINTS.index(arm.end)] >= 0.5
        if not down.any():
            continue
        w_pos = joints[:, sk.index(arm.end)]
        anchor, w = run_anchors(
            down,
            w_pos,
            n,
            SUPPORT_RELEASE,
            _on_floor(rest_heights(motion)[CONTACT_JOINTS.index(arm.end)], preset),
        )
        targets[arm.end] = w_pos + w[:, None] * (anchor - w_pos)
        end_rotations[arm.end] = glob[:, sk.index(arm.end)]
        active[arm.end] = w

    drop = _pelvis_drop(joints, motion, targets, n, preset.reach_slack)
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
        pole = bend_poles(joints[:, r], joints[:, m], joints[:, e], limb.pole_sign * forward)
        solved = solve_two_bone(
            joints[f, r], joints[f, m], joints[f, e], targets[limb.end][f], glob[f, r], glob[f, m], pole[f]
        )
        parent = sk.parents[r]
        rotations[f, r] = quat_mul(quat_conj(glob[f, parent]), solved.upper)
        rotations[f, m] = quat_mul(quat_conj(solved.upper), solved.middle)
        rotations[f, e] = quat_mul(quat_conj(solved.middle), end_rotations[limb.end][f])
    rotations = quat_continuous(quat_normalize(rotations), axis=0)
    return motion.with_rotations(rotations, root)
