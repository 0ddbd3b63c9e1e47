"""Finger rotations from 21 hand landmarks per hand: the 30 finger joints of ``core.hand_skeleton``.

The body's wrist orientation stays the body model's; the fingers are posed *relative to the palm*, so a
good finger pose never fights the arm. Per frame and hand:

0. Depth (``lift_hand``): MediaPipe's metric landmarks flatten fingers that point along the view; their 2D
   foreshortening, with the hand's bone lengths, gives the depth back for the knuckle and middle bones that
   are clearly foreshortened; bones lying across the view and the short end bones keep MediaPipe's own depth
   (there the 2D length says little about depth). Where MediaPipe took the hand for the other one (palm for
   back: same 2D, mirrored depth), its depth is mirrored back (the pose knows the side); on the test render
   this halves the fist's error seen thumb-side on.
1. Palm: the least-squares rotation of the wrist and four knuckles onto the rest hand's carries every
   landmark into the wrist's rest frame (translation and scale drop out: only bone directions are used).
2. Four fingers: at the knuckle (joint 1) two angles, abduction about the palm normal, then flexion about the
   finger's own lateral axis (rest bone × palm normal, positive curls toward the palm); at the middle and end
   joints (2, 3) flexion only, about the same axis carried by the parent. Each angle is clamped to an
   anatomical range, so a noisy landmark cannot bend a finger backwards or sideways ("flips").
3. Thumb: the smallest rotation taking each rest bone onto the measured one, capped in angle (its axes are
   not the palm's). MediaPipe places the thumb's landmarks differently from our rig's thumb joints (on renders of
   the rig's relaxed hand its base bone reads about 30 degrees off the rig's, its bends between bones agree), so
   the measured thumb is first turned about its base by the constant rotation that takes MediaPipe's reading of
   the relaxed base bone (``mediapipe_thumb.json``, fitted by ``scripts/fit_hand_readings.py`` on renders the tests
   do not use) onto the rig's: a relaxed thumb in the video is a relaxed thumb on the rig.

4. Reading: MediaPipe's landmarks read strong curls short, put a knuckle's bend into the middle joint and read
   a tucked thumb open, so the angles and thumb rotations read (``finger_angles``) are mapped back to the pose
   that gives such a reading (``solve.finger_reading``, fitted on renders of random finger poses), then posed
   (``rotations_from_angles``).

Frames where a hand is not seen (confidence < ``MIN_CONFIDENCE``) take the rotations of the nearest seen
frames, linearly interpolated, and fade to the relaxed rest hand (identity) over ``FADE_SECONDS`` from the
last frame seen: a hand that disappears relaxes instead of freezing as a claw. The body's joints, rotations
and positions are left exactly as they were; temporal smoothing is the clip's preset, applied afterwards
with the rest of the motion.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mocap_cli.capture.hands import HandTrack
from mocap_cli.core.hand_skeleton import (
    FINGER_JOINT_NAMES,
    FINGERS,
    MIRROR_X,
    REST_HAND_SIZE,
    SIDES,
    finger_tip,
    with_fingers,
)
from mocap_cli.core.motion import Motion
from mocap_cli.core.rotations import (
    quat_apply,
    quat_between,
    quat_conj,
    quat_from_rotvec,
    quat_identity,
    quat_mul,
    quat_normalize,
    quat_to_rotvec,
)
from mocap_cli.core.skeleton import JOINT_NAMES, forward_kinematics
from mocap_cli.solve.finger_reading import FINGER_READING_FILE, load_finger_reading

MIN_CONFIDENCE = 0.5
FADE_SECONDS = 0.3
HAND_SCALE_RANGE = (0.7, 1.4)  # measured hand sizes outside this × the rest hand are treated as noise
LENGTH_QUANTILE = 0.8
# MediaPipe hand landmark indices of each finger's joints 1, 2, 3 and tip.
_CHAINS = {
    "thumb": (1, 2, 3, 4),
    "index": (5, 6, 7, 8),
    "middle": (9, 10, 11, 12),
    "ring": (13, 14, 15, 16),
    "pinky": (17, 18, 19, 20),
}
_WRIST, _INDEX_MCP, _PINKY_MCP = 0, 5, 17
LONG_FINGERS = tuple(f for f in FINGERS if f != "thumb")
# Anatomical ranges, degrees (flexion positive toward the palm): knuckle flexion and abduction, middle and end
# joint flexion; thumb: largest swing per joint.
_KNUCKLE_FLEX = (-30.0, 95.0)
_KNUCKLE_ABDUCT = (-25.0, 25.0)
_JOINT_FLEX = ((-5.0, 115.0), (-10.0, 90.0))
_THUMB_SWING = (70.0, 70.0, 90.0)
_BODY = len(JOINT_NAMES)
THUMB_READING_FILE = Path(__file__).with_name("mediapipe_thumb.json")


def finger_reading_files() -> tuple[Path, Path]:
    """The fitted data the hand stage reads (thumb base and finger reading): what a run's fingers depend on
    besides the video and the settings."""
    return THUMB_READING_FILE, FINGER_READING_FILE


def load_thumb_reading(path: Path = THUMB_READING_FILE) -> np.ndarray:
    """MediaPipe's reading (3,) of the rig's relaxed left thumb: the unit direction its base bone's landmarks give
    in the wrist's rest frame (``fit_thumb_reading``)."""
    return np.asarray(json.loads(path.read_text())["direction"], dtype=np.float64)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _palm_normal(rest: np.ndarray, side: str) -> np.ndarray:
    """Unit normal (3,) pointing out of the palm of the rest hand (positions (54, 3))."""
    w, i, p = (rest[JOINT_NAMES.index(f"{side}_wrist")], rest[_joint(side, "index", 1)], rest[_joint(side, "pinky", 1)])
    n = np.cross(i - w, p - w)
    return _unit(-n if side == "left" else n)


def _joint(side: str, finger: str, k: int) -> int:
    return _BODY + FINGER_JOINT_NAMES.index(f"{side}_{finger}{k}")


def _signed_angle(u: np.ndarray, v: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Angle (F,) from u to v (F, 3) about ``axis`` (3,), after projecting both onto the plane ⊥ axis."""
    u = u - (u @ axis)[:, None] * axis
    v = v - (v @ axis)[:, None] * axis
    return np.arctan2(np.cross(u, v) @ axis, np.sum(u * v, axis=-1))


def _rot(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    return quat_from_rotvec(axis[None] * angle[:, None])


def palm_alignment(points: np.ndarray, rest: np.ndarray, side: str) -> np.ndarray:
    """Rotations (F, 3, 3) carrying measured hand vectors (landmarks (F, 21, 3)) into the wrist's rest frame.

    The least-squares rotation of the five palm points (wrist, four knuckles), each set centred: the palm
    is the rigid part of the hand, and five points average out one badly placed landmark. (A frame from the
    wrist, index and pinky knuckles alone, or from the wrist-to-middle-knuckle line, gave the same finger
    errors on the test render within 0.3°: MediaPipe's wrist sits about 3 cm nearer the knuckles than the rig's,
    which moves no direction that matters.)"""
    wrist = rest[JOINT_NAMES.index(f"{side}_wrist")]
    model = np.stack([wrist] + [rest[_joint(side, f, 1)] for f in ("index", "middle", "ring", "pinky")])
    model = model - model.mean(0)
    meas = points[:, list(_PALM)]
    meas = meas - meas.mean(1, keepdims=True)
    cov = np.einsum("fki,kj->fij", meas, model)  # Σ meas_k model_k^T
    u, _, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(np.einsum("fij,fjk->fik", u, vt)))
    fix = np.ones((len(points), 3))
    fix[:, 2] = d
    # R maps measured → model: R = V diag(1, 1, d) U^T
    return np.einsum("fji,fj,fkj->fik", vt, fix, u)


def _rest_directions(rest: np.ndarray, side: str, finger: str) -> list[np.ndarray]:
    """Unit rest directions of one finger's three bones (joint 1→2, 2→3, 3→tip) in their parents' rest frames."""
    joints = [_joint(side, finger, k) for k in (1, 2, 3)]
    return [
        _unit(rest[joints[1]] - rest[joints[0]]),
        _unit(rest[joints[2]] - rest[joints[1]]),
        _unit(finger_tip(FINGER_JOINT_NAMES[joints[2] - _BODY])),
    ]


def flexion_axis(rest: np.ndarray, side: str, finger: str) -> np.ndarray:
    """Unit axis (3,) about which the finger's joints flex, the same in each of its joints' rest frames: its base
    bone's rest direction × the palm normal (positive curls toward the palm)."""
    return _unit(np.cross(_rest_directions(rest, side, finger)[0], _palm_normal(rest, side)))


def flexion_limits() -> np.ndarray:
    """(12, 2) radians: the anatomical range of each flexion angle ``finger_angles`` reads, the four fingers'
    (knuckle, middle, end) in ``LONG_FINGERS`` order."""
    return np.radians([_KNUCKLE_FLEX, *_JOINT_FLEX] * len(LONG_FINGERS))


def _in_rest_frame(points: np.ndarray, rest: np.ndarray, side: str) -> np.ndarray:
    """Landmarks (F, 21, 3) → the same hand in the wrist's rest frame, wrist at the origin."""
    to_rest = palm_alignment(points, rest, side)
    return np.einsum("fij,fkj->fki", to_rest, points - points[:, :1])


def palm_facing(points: np.ndarray, rest: np.ndarray, side: str) -> np.ndarray:
    """Unit normals (F, 3) out of the palm of hand landmarks (F, 21, 3) in camera axes (x right, y down, z away
    from the camera), the right hand's mirrored in x so both hands read alike: z ≈ -1 is a palm facing the
    camera, x ≈ ±1 a hand seen from its side."""
    normal = _palm_normal(rest, side)
    facing = np.einsum("fij,i->fj", palm_alignment(points, rest, side), normal)  # R^T n: rest frame → camera
    return facing * (MIRROR_X if side == "right" else 1.0)


def _thumb_as_rig(q: np.ndarray, rest: np.ndarray, side: str, reading: np.ndarray) -> np.ndarray:
    """Landmarks in the wrist's rest frame (F, 21, 3) with the thumb's (CMC to tip) turned about its base by the
    rotation taking MediaPipe's reading of the relaxed base bone (``reading`` (3,), left hand; mirrored for the
    right) onto the rig's: the thumb sits on the palm as the rig's does, its own bends as MediaPipe saw them."""
    lm = list(_CHAINS["thumb"])
    seen_as = reading * (MIRROR_X if side == "right" else 1.0)
    turn = quat_between(seen_as, _rest_directions(rest, side, "thumb")[0])
    out = q.copy()
    base = q[:, lm[:1]]
    out[:, lm[1:]] = base + quat_apply(np.broadcast_to(turn, (*q[:, lm[1:]].shape[:2], 4)), q[:, lm[1:]] - base)
    return out


def fit_thumb_reading(points: list[np.ndarray], rest: np.ndarray, sides: list[str]) -> np.ndarray:
    """MediaPipe's reading (3,) of a relaxed left thumb's base bone (CMC to MCP landmark) in the wrist's rest frame:
    the mean direction over landmarks of relaxed hands (each (F, 21, 3), lifted as ``add_fingers`` lifts them) of
    the given sides, the right hand mirrored."""
    base = _CHAINS["thumb"][:2]
    dirs = []
    for pts, side in zip(points, sides):
        q = _in_rest_frame(pts, rest, side)
        dirs.append(_unit(q[:, base[1]] - q[:, base[0]]) * (MIRROR_X if side == "right" else 1.0))
    return _unit(np.concatenate(dirs).mean(0))


def finger_angles(
    points: np.ndarray, rest: np.ndarray, side: str, thumb_reading: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """What one hand's landmarks (F, 21, 3), in any metric frame, say of its fingers against the rest positions
    (54, 3): angles (F, 4, 4) radians of the four fingers (``LONG_FINGERS`` order: knuckle flexion, knuckle
    abduction, middle and end joint flexion, each clamped to its anatomical range) and the thumb's local
    rotations (F, 3, 4). ``thumb_reading`` (``load_thumb_reading``) corrects MediaPipe's thumb landmarks to the
    rig's thumb; None takes every landmark as lying on the rig's own joints."""
    f = points.shape[0]
    q = _in_rest_frame(points, rest, side)  # (F, 21, 3) in the wrist's rest frame
    if thumb_reading is not None:
        q = _thumb_as_rig(q, rest, side, thumb_reading)
    normal = _palm_normal(rest, side)
    angles = np.zeros((f, 4, 4))
    thumb = np.zeros((f, 3, 4))
    for finger in FINGERS:
        lm = _CHAINS[finger]
        rest_dirs = _rest_directions(rest, side, finger)
        axis = flexion_axis(rest, side, finger)
        parent = quat_identity((f,))
        for k in range(3):
            d = _unit(quat_apply(quat_conj(parent), q[:, lm[k + 1]] - q[:, lm[k]]))
            r = rest_dirs[k]
            if finger == "thumb":
                local = thumb[:, k] = _capped_swing(r, d, np.radians(_THUMB_SWING[k]))
            elif k == 0:
                # Abduction (about the palm normal) first, read from the sideways component along the
                # flexion axis; then flexion about that axis, which handles knuckles bent past 90 degrees.
                lateral = max(float(np.linalg.norm(r - (r @ axis) * axis - (r @ normal) * normal)), 1e-6)
                abduct = np.arcsin(np.clip(-(d @ axis) / lateral, -1, 1))
                abduct = np.clip(abduct, *np.radians(_KNUCKLE_ABDUCT))
                spread = _rot(normal, abduct)
                flex = _signed_angle(quat_apply(spread, np.broadcast_to(r, d.shape)), d, axis)
                flex = np.clip(flex, *np.radians(_KNUCKLE_FLEX))
                angles[:, LONG_FINGERS.index(finger), :2] = np.stack([flex, abduct], axis=1)
                local = quat_mul(_rot(axis, flex), spread)
            else:
                flex = np.clip(_signed_angle(np.broadcast_to(r, d.shape), d, axis), *np.radians(_JOINT_FLEX[k - 1]))
                angles[:, LONG_FINGERS.index(finger), k + 1] = flex
                local = _rot(axis, flex)
            parent = quat_mul(parent, local)
    return angles, thumb


def rotations_from_angles(angles: np.ndarray, thumb: np.ndarray, rest: np.ndarray, side: str) -> np.ndarray:
    """Local rotations (F, 15, 4) of one hand's finger joints (``FINGER_JOINT_NAMES`` order for that side) from
    ``finger_angles``' two outputs."""
    normal = _palm_normal(rest, side)
    out = np.zeros((angles.shape[0], 15, 4))
    for fi, finger in enumerate(FINGERS):
        if finger == "thumb":
            out[:, 3 * fi : 3 * fi + 3] = thumb
            continue
        axis = flexion_axis(rest, side, finger)
        flex, abduct, middle, end = np.moveaxis(angles[:, LONG_FINGERS.index(finger)], -1, 0)
        out[:, 3 * fi] = quat_mul(_rot(axis, flex), _rot(normal, abduct))
        out[:, 3 * fi + 1] = _rot(axis, middle)
        out[:, 3 * fi + 2] = _rot(axis, end)
    return out


def finger_rotations(
    points: np.ndarray, rest: np.ndarray, side: str, thumb_reading: np.ndarray | None = None
) -> np.ndarray:
    """Local rotations (F, 15, 4) of one hand's finger joints (``FINGER_JOINT_NAMES`` order for that side)
    from hand landmarks (F, 21, 3), as ``finger_angles`` reads them."""
    return rotations_from_angles(*finger_angles(points, rest, side, thumb_reading), rest, side)


_PALM = (0, 5, 9, 13, 17)  # wrist and the four finger knuckles: the rigid part of the hand
_TIPS = (4, 8, 12, 16, 20)  # fingertips: the end bones lead into them
# A bone seen at more than this fraction of its length lies nearly across the view: its depth is MediaPipe's.
FORESHORTENED = 0.8
# Each landmark's parent landmark (the bone into it): chains run wrist → knuckle → ... → tip.
_LANDMARK_PARENT = (-1, 0, 1, 2, 3, 0, 5, 6, 7, 0, 9, 10, 11, 0, 13, 14, 15, 0, 17, 18, 19)


def bone_lengths(world: np.ndarray) -> np.ndarray:
    """Per bone into landmarks 1..20 (20,), metres: a high quantile over the seen frames of MediaPipe's
    metric bone lengths (world (N, 21, 3)). Its lengths are steady, but shrink a little when a finger points
    along the view; the quantile keeps the unforeshortened ones."""
    parents = list(_LANDMARK_PARENT[1:])
    lengths = np.linalg.norm(world[:, 1:] - world[:, parents], axis=-1)
    return np.nanquantile(lengths, LENGTH_QUANTILE, axis=0)


def _weak_perspective_palm(model: np.ndarray, image: np.ndarray) -> tuple[np.ndarray, float] | None:
    """Rotation candidates and scale of a planar-ish rigid palm seen under scaled orthographic projection.

    model (5, 3) palm points (metres), image (5, 2) pixels. Returns (R (2, 3, 3): the two mirror solutions,
    camera axes x right, y down, z away; s pixels per metre) or None when degenerate. The palm is fitted as
    a plane: the 2×2 map from its in-plane coordinates to the image is the top of s·R restricted to the plane,
    whose larger singular value is s; the out-of-plane components follow from orthonormality up to a sign."""
    centred = model - model.mean(0)
    _, _, vt = np.linalg.svd(centred)
    basis = vt[:2]  # (2, 3) in-plane axes
    normal = vt[2]
    xp = centred @ basis.T  # (5, 2)
    yp = image - image.mean(0)
    m, *_ = np.linalg.lstsq(xp, yp, rcond=None)  # yp ≈ xp @ m  → image = m.T @ plane coords
    m = m.T  # (2, 2)
    sig = np.linalg.svd(m, compute_uv=False)
    scale = float(sig[0])
    if not scale > 1e-6:
        return None
    a = m / scale  # rows: image x, y axes in plane coordinates (norm ≤ 1)
    c = np.sqrt(np.clip(1.0 - np.sum(a * a, axis=1), 0.0, 1.0))
    # Orthogonality of the two rows fixes the relative sign of their out-of-plane parts.
    if a[0] @ a[1] > 0:
        c[1] = -c[1]
    out = []
    for sign in (1.0, -1.0):
        r1 = a[0] @ basis + sign * c[0] * normal
        r2 = a[1] @ basis + sign * c[1] * normal
        r1 /= np.linalg.norm(r1)
        r2 -= (r2 @ r1) * r1
        r2 /= max(np.linalg.norm(r2), 1e-12)
        out.append(np.stack([r1, r2, np.cross(r1, r2)]))
    return np.stack(out), scale


def lift_hand(image: np.ndarray, world: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """3D hand points (21, 3) in camera axes (pixel units) from one frame's image landmarks (21, 2+),
    MediaPipe's metric landmarks (21, 3, camera axes) and the hand's bone lengths (20,) (``bone_lengths``).

    MediaPipe's metric landmarks keep good bone lengths but flatten fingers that point toward or away from
    the camera (a fist seen face-on reads as a half-open hand), while its 2D landmarks show the
    foreshortening. So depth is rebuilt from the 2D: the palm (wrist and four knuckles, MediaPipe's metric
    shape) is fitted as a rigid plane for its scale s and tilt (of the two mirror tilts, the one nearer
    MediaPipe's own), and each knuckle or middle finger bone of length L seen with 2D length l ≤
    ``FORESHORTENED`` · sL gets |depth| = sqrt((sL)² − l²), its sign from MediaPipe's direction. Longer-looking
    bones and the end bones take MediaPipe's depth step × s (on the test render the square root read the
    relaxed hand's end joints as bent 25-40°, truth 7°: near l = sL a small length error is a large depth)."""
    pts = np.zeros((21, 3))
    pts[:, :2] = image[:, :2]
    palm = list(_PALM)
    fit = _weak_perspective_palm(world[palm], image[palm, :2])
    if fit is None:
        return world.copy()
    rotations, scale = fit
    rot = rotations[int(np.argmax([np.trace(r) for r in rotations]))]
    pts[palm, 2] = (world[palm] - world[0]) @ rot[2] * scale
    for i in range(1, 21):
        parent = _LANDMARK_PARENT[i]
        if i in _PALM:
            continue
        bone = float(lengths[i - 1]) * scale
        flat = image[i, :2] - image[parent, :2]
        if i in _TIPS or float(flat @ flat) > (FORESHORTENED * bone) ** 2:
            # Depth from the bone's 2D length is ill-conditioned where the bone lies nearly across the view
            # (d depth / d length grows without bound) and for the short, often blurred end bones: MediaPipe's
            # own depth, in the palm's pixel scale, is the better reading there.
            pts[i, 2] = pts[parent, 2] + (world[i, 2] - world[parent, 2]) * scale
            continue
        depth = np.sqrt(max(bone * bone - float(flat @ flat), 0.0))
        sign = 1.0 if world[i, 2] - world[parent, 2] >= 0 else -1.0
        pts[i, 2] = pts[parent, 2] + sign * depth
    return pts


def _capped_swing(r: np.ndarray, d: np.ndarray, cap: float) -> np.ndarray:
    """Smallest rotation (F, 4) taking r (3,) onto each d (F, 3), its angle capped at ``cap`` radians."""
    swing = quat_to_rotvec(quat_between(np.broadcast_to(r, d.shape), d))
    angle = np.linalg.norm(swing, axis=-1, keepdims=True)
    return quat_from_rotvec(swing * np.minimum(1.0, cap / np.maximum(angle, 1e-12)))


def fill_and_fade(rotvecs: np.ndarray, seen: np.ndarray, fade_frames: float) -> tuple[np.ndarray, np.ndarray]:
    """Rotation vectors (F, J, 3) with unseen frames (``seen`` (F,) False) interpolated from the nearest seen
    frames and faded to zero with the distance to the nearest seen frame; returns them and the weight (F,)."""
    f = rotvecs.shape[0]
    idx = np.flatnonzero(seen)
    if idx.size == 0:
        return np.zeros_like(rotvecs), np.zeros(f)
    t = np.arange(f)
    flat = rotvecs.reshape(f, -1)
    filled = np.stack([np.interp(t, idx, flat[idx, c]) for c in range(flat.shape[1])], axis=1)
    nearest = np.abs(t[:, None] - idx[None]).min(axis=1)
    weight = np.clip(1.0 - nearest / max(fade_frames, 1e-9), 0.0, 1.0)
    weight[seen] = 1.0
    return (filled * weight[:, None]).reshape(rotvecs.shape), weight


def lift_track(hands: HandTrack, side: int, seen: np.ndarray) -> np.ndarray:
    """3D landmarks (N, 21, 3) of one hand (``side`` 0 left, 1 right) in the N frames where ``seen`` (F,) is True:
    MediaPipe's metric depth, mirrored back where it took the hand for the other one (palm for back: same 2D,
    depth mirrored), rebuilt from the 2D foreshortening with the hand's own bone lengths (``lift_hand``)."""
    world = hands.world[seen, side].astype(np.float64)
    world[hands.handedness[seen, side] < 0.5, :, 2] *= -1.0
    lengths = bone_lengths(world)
    return np.stack(
        [lift_hand(image.astype(np.float64), w, lengths) for image, w in zip(hands.landmarks[seen, side], world)]
    )


def measured_hand_scale(hands: HandTrack) -> float:
    """Subject hand size over the rest hand's: the median wrist-to-middle-knuckle length of MediaPipe's
    metric hand landmarks over confidently seen frames (1 when never seen), clamped to ``HAND_SCALE_RANGE``."""
    seen = hands.seen(MIN_CONFIDENCE)
    lengths = np.linalg.norm(hands.world[..., 9, :] - hands.world[..., 0, :], axis=-1)[seen]
    lengths = lengths[np.isfinite(lengths)]
    if lengths.size == 0:
        return 1.0
    return float(np.clip(np.median(lengths) / REST_HAND_SIZE, *HAND_SCALE_RANGE))


def add_fingers(motion: Motion, hands: HandTrack | None) -> Motion:
    """``motion`` on the 24-joint skeleton → the same motion with 30 finger joints appended (relaxed rest hand
    wherever ``hands`` is None or a hand is not seen). Body joints are returned unchanged, bit for bit."""
    if motion.skeleton.num_joints != _BODY:
        raise ValueError("add_fingers needs a motion on the 24-joint body skeleton")
    f = motion.num_frames
    scale = 1.0 if hands is None else measured_hand_scale(hands)
    skeleton = with_fingers(motion.skeleton, scale)
    rest = skeleton.rest_positions()
    fingers = np.tile(quat_identity(), (f, 30, 1))
    finger_conf = np.zeros((f, 30))
    if hands is not None:
        thumb_reading = load_thumb_reading()
        reading = load_finger_reading()
        if hands.num_frames != f:
            raise ValueError(f"hand track has {hands.num_frames} frames, motion {f}")
        for s, side in enumerate(SIDES):
            seen = hands.seen(MIN_CONFIDENCE)[:, s] & np.all(np.isfinite(hands.world[:, s]), axis=(1, 2))
            if not seen.any():
                continue
            local = np.tile(quat_identity(), (f, 15, 1))
            lifted = lift_track(hands, s, seen)
            angles, thumb = finger_angles(lifted, rest, side, thumb_reading)
            facing = palm_facing(lifted, rest, side)
            angles, thumb = reading.correct(angles, facing, thumb, side, hands.size_px[seen, s])
            local[seen] = rotations_from_angles(angles, thumb, rest, side)
            rotvecs, _ = fill_and_fade(quat_to_rotvec(local), seen, FADE_SECONDS * motion.fps)
            fingers[:, 15 * s : 15 * s + 15] = quat_from_rotvec(rotvecs)
            conf = np.where(seen, hands.confidence[:, s], 0.0)
            finger_conf[:, 15 * s : 15 * s + 15] = conf[:, None]
    rotations = np.concatenate([motion.rotations, quat_normalize(fingers)], axis=1)
    joints, _ = forward_kinematics(skeleton, rotations, motion.root_translation)
    joints[:, :_BODY] = motion.joints
    out = Motion(
        motion.fps,
        skeleton,
        rotations,
        motion.root_translation,
        joints,
        np.concatenate([motion.confidence, finger_conf], axis=1),
        dict(motion.provenance),
        motion.betas,
    )
    out.provenance["hands"] = "mediapipe" if hands is not None else "rest"
    return out


__all__ = [
    "FADE_SECONDS",
    "MIN_CONFIDENCE",
    "add_fingers",
    "fill_and_fade",
    "finger_angles",
    "finger_rotations",
    "fit_thumb_reading",
    "lift_track",
    "load_thumb_reading",
    "measured_hand_scale",
]
