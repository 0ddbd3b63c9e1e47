"""Foot locking: planted feet stand still, supporting hands stay put, nothing sinks through the floor.

The post stage after smoothing (``apply_foot_lock``; ``--foot-lock auto|off``):
1. contacts from the motion and the detector's evidence (``post.contacts``), then the floor fitted to them
   (``post.floor``: moved only when the planted feet rest outside a band over it, and down to the planted
   hands and knees in floor work) and the contacts found again on that floor;
2. how firmly each joint is held: its contact weight times its stillness (stricter than the contact
   decision, so a heel that starts to rise is let go), eased in time;
3. each foot joint's horizontal correction is one banded least-squares solve (``post.trajectory.still_track``):
   small, making the joint still as firmly as it is held, with its second differences penalised, so a hold
   eases in and out with the evidence instead of switching (the earlier pins moved the estimate's foot errors
   into the legs in a frame: PA-MPJPE 66.7 -> 70.9 mm, accel 9.9 -> 12.6 on the rendered clips); free motion
   keeps its own path; a foot joint more than ``lift_depth`` under the floor is lifted (at most
   ``leg_lift_cap``);
4. analytic two-bone IK (``solve.two_bone``) puts the ankle on its new path, a near-straight knee keeping the
   bend plane of its last bent frame, and the foot turns so its ankle->ball bone points at the ball's new
   place (pitch and heading); the pelvis is lowered only where a leg or held arm would miss by more than
   ``reach_slack``;
   supporting hands are held at their contact's anchor the same way; the upper body's local rotations are
   untouched;
5. finally no joint other than the feet may stay more than 2 cm under the floor (floor work): the body is
   lifted.

The root's horizontal path can also be carried by the planted feet and smoothed (``root_path``); on the
rendered clips that raised the acceleration error (the estimate's pelvis path is better than the feet's
odometry), so the default preset leaves it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import gaussian_filter1d

from mocap_cli.capture.detect import Track2D
from mocap_cli.core.motion import Motion
from mocap_cli.core.rotations import (
    quat_apply,
    quat_between,
    quat_conj,
    quat_continuous,
    quat_mul,
    quat_normalize,
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
    release_contacts,
    rest_heights,
    seen_contacts,
    still_window,
    stillness,
)
from mocap_cli.post.floor import (
    ease_peaks,
    fitted_floor,
    lift_above_floor,
    shift_floor,
)
from mocap_cli.post.trajectory import still_track
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
    if evidence is not None and preset.release_rise > 0:
        evidence = replace(evidence, raw_speed=image_evidence(track, motion.num_frames, motion.fps).speed)
    found = detect_contacts(motion, preset, 0.0, evidence)
    # The floor is fitted to the contacts the detector saw: a hidden foot is taken as standing wherever the
    # model put it (a lifter's straight legs put squat_14_06's hidden feet 20 cm low; fitted to them, its
    # planted feet floated 12.8 cm over the floor, 1.5 cm without them).
    floor = fitted_floor(seen_contacts(found, preset, evidence), preset.floor_band)
    if floor is not None:
        found = detect_contacts(shift_floor(found, floor), preset, 0.0, evidence)
    n = max(1, int(round(preset.blend_seconds * motion.fps)))
    # How firmly each joint is held: its contact, and (stricter than the contact decision, which counts a
    # heel that starts to rise as planted) its stillness.
    hold = _contact_weight(found.contacts, preset) * stillness(found, preset, evidence, strict=True)
    fold = leg_fold(found, track, preset) if track is not None and preset.fold_lift_cap > preset.leg_lift_cap else None
    locked = lock_contacts(found, preset, hold, fold)
    # The reported contacts end where the foot visibly lifts off; the hold above used them before that.
    locked = replace(locked, contacts=release_contacts(found, preset, evidence).contacts)
    # No joint other than the feet (hands, knees, head in floor work) may stay more than 2 cm under the floor:
    # the body is lifted. Feet are lifted by their legs (``lock_contacts``, up to ``leg_lift_cap``) and by the
    # body only for what is left (``root_lift`` below): lifting the body for every dip moved the root away from
    # the truth on every benchmark clip where feet dip (squat: 70 -> 141 mm).
    locked = lift_above_floor(locked, _body_surface(locked), BODY_TOLERANCE, n)
    if preset.root_lift:
        # What the legs did not lift (``leg_lift_cap``): the body is lifted until no foot joint is more than
        # ``lift_depth`` under its rest height.
        surface = np.full(locked.skeleton.num_joints, -1e3)
        feet = [locked.skeleton.index(name) for name in FOOT_JOINTS]
        surface[feet] = rest_heights(locked)[[CONTACT_JOINTS.index(name) for name in FOOT_JOINTS]]
        locked = lift_above_floor(
            locked, surface, preset.root_lift_depth, max(1, round(preset.lift_seconds * motion.fps))
        )
    locked.provenance = {**motion.provenance, "foot_lock": f"auto ({preset.name})"}
    return locked


def leg_fold(motion: Motion, track: Track2D, preset: ContactPreset) -> np.ndarray:
    """(F,) in [0, 1]: how surely the image shows the legs folded farther than the estimate has them.

    The hip-to-heel height in the image (over the person's standing height there) against the pelvis-to-
    lowest-foot height in the estimate (over its standing height): where the image's is the smaller by more
    than ``fold_full`` (``fold_none``: not at all), the person crouches lower than the estimate's legs allow,
    so a foot under the floor is lifted by folding its leg, not by lifting the body (squat_14_06 at the
    bottom: 0.10 in the image, 0.40 in the estimate, whose pelvis height was right). Where the image agrees,
    a foot under the floor means the body is too low (run_49_04's root bobs 30 cm): ``root_lift``."""
    sk = motion.skeleton
    n = track.names
    times = track.frame_times - track.frame_times[0]
    hip = 0.5 * (track.landmarks[:, n.index("left_hip"), 1] + track.landmarks[:, n.index("right_hip"), 1])
    heel = np.maximum(track.landmarks[:, n.index("left_heel"), 1], track.landmarks[:, n.index("right_heel"), 1])
    box = track.boxes[:, 3] - track.boxes[:, 1]
    ok = track.detected & np.isfinite(hip) & np.isfinite(heel) & np.isfinite(box)
    if ok.sum() < 2:
        return np.zeros(motion.num_frames)
    image = (heel - hip)[ok] / np.percentile(box[ok], 90)
    image = np.interp(np.arange(motion.num_frames) / motion.fps, times[ok], image)
    feet = motion.joints[:, [sk.index(name) for name in FOOT_JOINTS], 1].min(axis=1)
    standing = np.max(motion.joints[:, sk.index("head"), 1] - feet)
    estimate = (motion.joints[:, 0, 1] - feet) / max(standing, 1e-6)
    excess = estimate - image
    return np.clip((excess - preset.fold_none) / max(preset.fold_full - preset.fold_none, 1e-9), 0.0, 1.0)


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


def root_path(motion: Motion, joints: np.ndarray, preset: ContactPreset, hold: np.ndarray) -> np.ndarray:
    """(F, 3) the root's new path: horizontally smooth and carried by the planted feet (``still_track``: near
    the estimate, each step opposite to the planted joints' steps relative to the root, weighted by how
    firmly they are planted), so the feet need little leg IK to stand still; its height is unchanged."""
    assert motion.contacts is not None
    sk = motion.skeleton
    root = motion.root_translation
    if preset.root_still <= 0 and preset.root_smooth <= 0:
        return root.copy()
    rate = motion.fps / 30.0
    weight_sum = np.zeros(motion.num_frames - 1)
    step_sum = np.zeros((motion.num_frames - 1, 2))
    for name in FOOT_JOINTS:
        w = hold[:, CONTACT_JOINTS.index(name)]
        w = np.minimum(w[1:], w[:-1])
        rel = joints[:, sk.index(name)][:, [0, 2]] - root[:, [0, 2]]
        weight_sum += w
        step_sum -= w[:, None] * np.diff(rel, axis=0)
    step = step_sum / np.maximum(weight_sum, 1e-9)[:, None]
    out = root.copy()
    out[:, [0, 2]] = still_track(
        root[:, [0, 2]],
        np.ones(motion.num_frames),
        preset.root_still * rate**2 * np.minimum(weight_sum, 1.0),
        preset.root_smooth * rate**4,
        step,
    )
    return out


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


def _contact_weight(c: np.ndarray, preset: ContactPreset) -> np.ndarray:
    """(F,) how firmly a joint is held from its contact probability (F,): 0 at or below ``off``, 1 at or above
    ``on``, a smoothstep between, so a contact's hold eases in and out with the evidence."""
    x = np.clip((c - preset.off) / max(preset.on - preset.off, 1e-9), 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _joint_path(
    values: np.ndarray, hold: np.ndarray, settled_y: np.ndarray, preset: ContactPreset, fps: float
) -> np.ndarray:
    """(F, 3) one foot joint's new world path (module docstring, 3): horizontally still where held,
    vertically pulled onto ``settled_y`` (F,) as firmly as it is held; ``hold`` (F,) in [0, 1]."""
    # Weights per frame, so that they mean the same at every frame rate: stillness compares positions one
    # frame apart, smoothness two.
    rate = fps / 30.0
    still = preset.still_weight * rate**2 * np.minimum(hold[1:], hold[:-1])
    # Where the estimate does not move at all (a held pose where the person was lost) the path does not either.
    frozen = np.all(np.abs(np.diff(values, axis=0)) < 1e-9, axis=-1)
    still = np.where(frozen, max(preset.still_weight, 1.0) * 1e3, still)
    data = 1.0 + preset.free_weight * (1.0 - hold) ** 2
    accel = preset.smooth_weight * rate**4
    # The solve is for the correction d = p - p^: still where held (its steps cancel the estimate's) and
    # smooth everywhere, so a hold eases in and out; where nothing is held d = 0 and free motion keeps its
    # own path (smoothing the path itself near holds moved a fast swing next to one by 11 cm).
    out = np.empty_like(values)
    step = -np.diff(values[:, [0, 2]], axis=0)
    out[:, [0, 2]] = values[:, [0, 2]] + still_track(np.zeros((len(values), 2)), data, still, accel, step)
    target_y = values[:, 1] + hold * (settled_y - values[:, 1])
    # Heights are not held still: a planted heel rises as the foot rolls onto its ball, and a near-straight
    # leg turns a centimetre of ankle height into several of knee. Only the pull onto the floor is smoothed.
    out[:, 1] = (
        values[:, 1] + still_track((target_y - values[:, 1])[:, None], data, np.where(frozen, still, 0.0), accel)[:, 0]
    )
    return out


def _foot_targets(
    motion: Motion,
    joints: np.ndarray,
    glob: np.ndarray,
    leg: Limb,
    preset: ContactPreset,
    hold: np.ndarray,
    enabled: bool,
    cap: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ankle target (F, 3), ankle world rotation (F, 4), activity (F,) and lock weight (F,) of one leg
    (module docstring, 3); ``cap`` (F,) how far the leg may lift its foot in each frame."""
    sk = motion.skeleton
    assert motion.contacts is not None and leg.ball is not None
    heights = rest_heights(motion)
    ankle, ball = sk.index(leg.end), sk.index(leg.ball)
    ka, kb = CONTACT_JOINTS.index(leg.end), CONTACT_JOINTS.index(leg.ball)
    a, b, q = joints[:, ankle], joints[:, ball], glob[:, ankle]
    wa = hold[:, ka] * enabled
    wb = hold[:, kb] * enabled
    ya = np.clip(a[:, 1], heights[ka] - FOOT_TOLERANCE, heights[ka] + preset.floor_band)
    yb = np.clip(b[:, 1], heights[kb] - FOOT_TOLERANCE, heights[kb] + preset.floor_band)
    if not preset.lock_height:
        ya, yb = a[:, 1], b[:, 1]
    a_new = _joint_path(a, wa, ya, preset, motion.fps)
    b_new = _joint_path(b, wb, yb, preset, motion.fps)
    bone = b - a
    # The foot turns so that its ankle->ball bone points at the ball's new place (pitch and heading).
    length = np.linalg.norm(bone, axis=-1)
    point = (b_new - a_new) / np.maximum(np.linalg.norm(b_new - a_new, axis=-1, keepdims=True), 1e-9)
    # A foot joint more than ``lift_depth`` below its rest height is lifted by its leg, at most ``cap`` (F,)
    # (``leg_lift_cap``, more where the legs should fold), eased in and out so nothing pops; the ball's lift
    # pitches the foot (its height is then set exactly: pointing at a target puts the ball short of it when
    # the estimate's ankle-ball distance is not the bone's).
    n = max(1, round(preset.lift_seconds * motion.fps))
    lift_a = ease_peaks(np.minimum(np.maximum(0.0, heights[ka] - preset.lift_depth - a_new[:, 1]), cap), n)
    a_new[:, 1] += lift_a
    ball_y = a_new[:, 1] + length * point[:, 1]
    lift_b = ease_peaks(np.minimum(np.maximum(0.0, heights[kb] - preset.lift_depth - ball_y), cap - lift_a), n)
    rise = np.clip((ball_y + lift_b - a_new[:, 1]) / np.maximum(length, 1e-9), -1.0, 1.0)
    flat = point * np.array([1.0, 0.0, 1.0])
    flat /= np.maximum(np.linalg.norm(flat, axis=-1, keepdims=True), 1e-9)
    level = flat * np.sqrt(1.0 - rise**2)[:, None] + rise[:, None] * np.array([0.0, 1.0, 0.0])
    aim = np.where((lift_b > 0)[:, None], level, point)
    rot = quat_mul(quat_between(bone, aim), q)
    active = np.maximum(wa, wb)
    moved = np.linalg.norm(a_new - a, axis=-1) + np.linalg.norm(b_new - b, axis=-1)
    active = np.maximum(active, ((moved > 1e-5) | (lift_b > 0)).astype(np.float64))
    return a_new, rot, active, np.maximum(wa, wb)


def _pelvis_drop(
    joints: np.ndarray, motion: Motion, targets: dict[str, np.ndarray], n: int, slack: float
) -> np.ndarray:
    """(F,) how far to lower the pelvis so every leg and held arm reaches its target to within ``slack`` metres
    (eased, capped): a limb that misses by less keeps the pelvis where it is. Arms count because the root is
    the estimate's (``root_still`` 0): in floor work it drifts away from the held hands, and an arm out of
    reach left its wrist short of the anchor, 4 cm off it and 9 cm over the floor (tests/post/test_floor_work.py)."""
    sk = motion.skeleton
    drop = np.zeros(motion.num_frames)
    for leg in LEGS + ARMS:
        if leg.end not in targets:
            continue
        hip = joints[:, sk.index(leg.root)]
        reach = 0.999 * (
            np.linalg.norm(sk.offsets[sk.index(leg.middle)]) + np.linalg.norm(sk.offsets[sk.index(leg.end)])
        )
        d = targets[leg.end] - hip
        # Lowered by h, the hip is |d + h y| from the target: the smallest h that brings it within reach + slack.
        # A limb already within it (a straight leg raised level: its own ankle) asks for nothing.
        vertical = np.sqrt(np.maximum((reach + slack) ** 2 - d[:, 0] ** 2 - d[:, 2] ** 2, 0.0))
        short = (d[:, 1] < 0) & (np.linalg.norm(d, axis=-1) > reach + slack)
        drop = np.maximum(drop, np.where(short, -d[:, 1] - vertical, 0.0))
    return np.minimum(ease_peaks(np.maximum(drop, 0.0), n), MAX_PELVIS_DROP)


def lock_contacts(
    motion: Motion, preset: ContactPreset, hold: np.ndarray | None = None, fold: np.ndarray | None = None
) -> Motion:
    """Hold planted feet and supporting hands (module docstring, 2-5). Needs ``motion.contacts``; ``hold``
    (F, K) how firmly to hold each of ``CONTACT_JOINTS`` in [0, 1], by default from the contacts; ``fold``
    (F,) in [0, 1] where the legs should fold (``leg_fold``), by default nowhere."""
    if motion.contacts is None:
        return motion
    if hold is None:
        hold = _contact_weight(motion.contacts, preset)
    # Eased in time, so a hold never switches on or off within a frame or two (a pop in the leg).
    if preset.hold_ease_seconds > 0:
        hold = np.minimum(hold, gaussian_filter1d(hold, preset.hold_ease_seconds * motion.fps, axis=0, mode="nearest"))
    sk = motion.skeleton
    n = max(1, int(round(preset.blend_seconds * motion.fps)))
    joints, glob = forward_kinematics(sk, motion.rotations, motion.root_translation)
    root = root_path(motion, joints, preset, hold)
    joints, glob = forward_kinematics(sk, motion.rotations, root)
    # How far the legs may lift a foot: ``leg_lift_cap``, up to ``fold_lift_cap`` where the legs should fold.
    cap = preset.leg_lift_cap + (0.0 if fold is None else fold) * (preset.fold_lift_cap - preset.leg_lift_cap)
    cap = np.broadcast_to(cap, (motion.num_frames,))
    targets: dict[str, np.ndarray] = {}
    end_rotations: dict[str, np.ndarray] = {}
    active: dict[str, np.ndarray] = {}
    for leg in LEGS:
        targets[leg.end], end_rotations[leg.end], active[leg.end], _ = _foot_targets(
            motion, joints, glob, leg, preset, hold, preset.hold_feet > 0, cap
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
