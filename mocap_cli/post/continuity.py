"""No snaps: joint rotations that stay continuous where the evidence is weak, and a held pose where the
person is lost at the start or end of a clip.

Detectors give a joint's twist from a few landmarks close together (the knuckle line of a hand is 1–5 cm long in
MediaPipe's world landmarks, the heel/toe/ankle triangle nearly degenerates when the foot points at the camera),
so a wrist or a foot can flip by 100–170° for a frame or two although nobody's wrist turns 3000°/s; the IK's
own twist rule can flip too where a limb straightens. We clean each bone's *world* orientation over time: a
running median over a short window (sign-continuous quaternions) tells where the joint really is, frames that
leave it by more than ``MAX_DEVIATION_DEGREES`` are replaced by slerping between the nearest kept frames, and
the turn rate is bounded by ``MAX_TURN_DEGREES_PER_SECOND``. The cleaned orientation is then re-aimed along the
original bone, so only the twist about the bone changes: joint positions (what the detector measured) are
untouched, and the rule is safe on good motion. Only the end points of the chains (hands, toes, head) may move,
where the tiny landmark groups that give their direction flip.

Frames before the first and after the last confident frame (the person not found yet, or lost) have no
evidence of their own: they hold the nearest confident pose and position instead of whatever the model or a
filter's edge fit extrapolates there.
"""

from __future__ import annotations

import numpy as np

from mocap_cli.core.hand_skeleton import body_joint_count
from mocap_cli.core.motion import Motion
from mocap_cli.core.rotations import (
    quat_apply,
    quat_between,
    quat_conj,
    quat_continuous,
    quat_mul,
    quat_normalize,
    quat_slerp,
)
from mocap_cli.core.skeleton import PARENTS, forward_kinematics
from mocap_cli.post.smoothing import running_median

MEDIAN_SECONDS = 0.3
MAX_DEVIATION_DEGREES = 60.0
PASSES = 3
# Faster than a filmed joint turns (a soccer kick's foot reaches ~1700°/s in the CMU captures): 80° a frame at 30 fps.
MAX_TURN_DEGREES_PER_SECOND = 2400.0
# A frame is confident when the median joint confidence reaches this (undetected frames have 0).
CONFIDENT = 0.5


def confident_frames(confidence: np.ndarray) -> np.ndarray:
    """(F,) True where the model saw the person well: median confidence (F, J) over the body's joints (the
    first 24: finger joints are unseen whenever the hands are, which says nothing of the body) ≥ ``CONFIDENT``."""
    return np.median(confidence[:, : len(PARENTS)], axis=1) >= CONFIDENT


def hold_lost_ends(motion: Motion) -> Motion:
    """Frames before the first and after the last confident frame take that frame's rotations and root
    position. A clip without any confident frame is returned unchanged."""
    ok = np.flatnonzero(confident_frames(motion.confidence))
    if len(ok) == 0 or (ok[0] == 0 and ok[-1] == motion.num_frames - 1):
        return motion
    first, last = int(ok[0]), int(ok[-1])
    rotations = motion.rotations.copy()
    root = motion.root_translation.copy()
    rotations[:first], root[:first] = rotations[first], root[first]
    rotations[last + 1 :], root[last + 1 :] = rotations[last], root[last]
    return motion.with_rotations(rotations, root)


def angle_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between rotations (..., 4) and (..., 4)."""
    dot = np.abs(np.sum(quat_normalize(a) * quat_normalize(b), axis=-1))
    return np.degrees(2.0 * np.arccos(np.clip(dot, 0.0, 1.0)))


def rotation_outliers(q: np.ndarray, window: int, max_degrees: float) -> np.ndarray:
    """(F,) True where rotations q (F, 4) leave their running median (``window`` frames) by more than
    ``max_degrees``."""
    q = quat_continuous(q, axis=0)
    reference = quat_normalize(running_median(q, window))
    return angle_between(q, reference) > max_degrees


def fill_from_neighbours(q: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """Replace rotations q (F, 4) at ``bad`` frames by slerping between the nearest good frames (held at the
    ends). All frames bad: unchanged."""
    good = np.flatnonzero(~bad)
    if len(good) == 0 or not bad.any():
        return q.copy()
    out = q.copy()
    for f in np.flatnonzero(bad):
        after = np.searchsorted(good, f)
        if after == 0:
            out[f] = q[good[0]]
        elif after == len(good):
            out[f] = q[good[-1]]
        else:
            a, b = good[after - 1], good[after]
            out[f] = quat_slerp(q[a], q[b], (f - a) / (b - a))
    return out


def despike(q: np.ndarray, window: int, max_degrees: float = MAX_DEVIATION_DEGREES) -> np.ndarray:
    """Rotations q (F, 4) with outlier frames replaced; dense flips bias the first median, so a few passes."""
    q = quat_continuous(q, axis=0)
    for _ in range(PASSES):
        bad = rotation_outliers(q, window, max_degrees)
        if not bad.any():
            break
        q = quat_continuous(fill_from_neighbours(q, bad), axis=0)
    return q


def _limited_pass(q: np.ndarray, max_radians: float) -> np.ndarray:
    """Follow q (F, 4) frame by frame, turning at most ``max_radians`` per frame towards it."""
    out = q.copy()
    for f in range(1, len(q)):
        angle = np.radians(angle_between(out[f - 1], q[f]))
        if angle > max_radians:
            out[f] = quat_slerp(out[f - 1], q[f], max_radians / angle)
    return out


def limit_rate(q: np.ndarray, max_radians: float) -> np.ndarray:
    """Rotations q (F, 4) turning at most ``max_radians`` per frame: a forward and a backward rate-limited pass,
    averaged so the result lags neither way, then bounded once more (where the passes disagree by nearly half
    a turn their midpoint can jump). Rotations within the limit come back unchanged."""
    q = quat_continuous(q, axis=0)
    if len(q) < 2 or not np.any(np.radians(angle_between(q[1:], q[:-1])) > max_radians):
        return q
    forward = _limited_pass(q, max_radians)
    backward = _limited_pass(q[::-1], max_radians)[::-1]
    return _limited_pass(quat_continuous(quat_slerp(forward, backward, 0.5), axis=0), max_radians)


def continuous_twists(
    motion: Motion, median_seconds: float = MEDIAN_SECONDS, max_degrees_per_second: float = MAX_TURN_DEGREES_PER_SECOND
) -> Motion:
    """Each bone's world orientation cleaned over time (spikes removed, turn rate bounded), then re-aimed
    along its original bone, so only the twist about the bone changes and every joint position stays
    exactly where it was. Joints at the ends of the chains (wrist → hand, ankle → toes, neck → head, and the
    leaves) are cleaned as a whole: their child is a fingertip-like end point measured from a few close
    landmarks, so it may move where its direction flips. Joints with several children (pelvis, chest) are fixed
    by their rigid part and left alone. Finger joints keep their rotations relative to the hand (the hand
    stage solves and limits them itself); the hand counts as a chain end, as without fingers."""
    if motion.num_frames < 3:
        return motion
    sk = motion.skeleton
    window = max(3, round(median_seconds * motion.fps) | 1)
    max_radians = np.radians(max_degrees_per_second / motion.fps)
    # At low frame rates real motion between frames is large: an outlier must also be beyond half of what
    # the rate bound allows in one frame (no change at 30 fps and above; off at 5 fps).
    outlier_degrees = max(MAX_DEVIATION_DEGREES, 0.5 * max_degrees_per_second / motion.fps)
    _, glob = forward_kinematics(sk, motion.rotations, motion.root_translation)
    body = body_joint_count(sk)
    cleaned = glob.copy()
    for j in range(body):
        children = [c for c in sk.children(j) if c < body]
        if len(children) > 1:
            continue
        q = limit_rate(despike(glob[:, j], window, outlier_degrees), max_radians)
        if children and [c for c in sk.children(children[0]) if c < body]:
            rest = np.broadcast_to(sk.offsets[children[0]], (motion.num_frames, 3))
            q = quat_mul(quat_between(quat_apply(q, rest), quat_apply(glob[:, j], rest)), q)
        cleaned[:, j] = q
    if np.abs(np.abs(np.sum(cleaned * glob, axis=-1)) - 1.0).max() < 1e-12:
        return motion
    local = motion.rotations.copy()
    for j, parent in enumerate(sk.parents[:body]):
        local[:, j] = cleaned[:, j] if parent < 0 else quat_mul(quat_conj(cleaned[:, parent]), cleaned[:, j])
    return motion.with_rotations(quat_continuous(quat_normalize(local), axis=0))


def make_continuous(motion: Motion) -> Motion:
    """The no-snap rule applied to a model's raw motion: held ends, then continuous twists."""
    return continuous_twists(hold_lost_ends(motion))
