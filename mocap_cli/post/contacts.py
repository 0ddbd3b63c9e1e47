"""Ground contacts: which joints rest on the floor in which frames.

Foot locking, the floor fit and the exported contact curves all start here. A joint is a contact candidate when
it is near the floor and still. "Still" is measured twice: in the 3D motion (whose depth is the least reliable
axis) and, where the detector saw the joint, in the image, where MediaPipe's heel and foot-index landmarks
barely move while a foot is planted. The per-frame evidence is a probability; a two-threshold hysteresis, a
minimum contact duration and the filling of short breaks turn it into contact intervals without flicker.
Heel (ankle joint) and ball (SMPL "foot" joint) are separate, so a heel strike, a flat foot and a toe-off are
told apart. Hands (wrists) and knees count only when they come as close to the floor as a supporting limb.

Thresholds are data (``presets/contact/<name>.toml``), in seconds and metres per second so they mean the same
at every frame rate.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import median_filter

from mocap_cli.capture.detect import Track2D
from mocap_cli.core.motion import Motion
from mocap_cli.core.preset_files import preset_dir
from mocap_cli.core.skeleton import ANKLE_HEIGHT, JOINT_INDEX, canonical_skeleton
from mocap_cli.errors import MocapError
from mocap_cli.solve.posing import TOE_HEIGHT

# The joints whose contacts are tracked, in the order of ``Motion.contacts``' columns.
CONTACT_JOINTS: tuple[str, ...] = (
    "left_ankle",
    "right_ankle",
    "left_foot",
    "right_foot",
    "left_wrist",
    "right_wrist",
    "left_knee",
    "right_knee",
)
FOOT_JOINTS: tuple[str, ...] = CONTACT_JOINTS[:4]
SUPPORT_JOINTS: tuple[str, ...] = CONTACT_JOINTS[4:]
HAND_JOINTS: tuple[str, ...] = CONTACT_JOINTS[4:6]
# Columns of each leg's foot joints (ankle, ball) in ``CONTACT_JOINTS``.
LEG_FEET: dict[str, tuple[int, int]] = {
    side: (CONTACT_JOINTS.index(f"{side}_ankle"), CONTACT_JOINTS.index(f"{side}_foot")) for side in ("left", "right")
}
# MediaPipe landmarks that show each contact joint in the image (their mean motion is the joint's image speed).
_LANDMARKS: dict[str, tuple[str, ...]] = {
    "left_ankle": ("left_heel", "left_ankle"),
    "right_ankle": ("right_heel", "right_ankle"),
    "left_foot": ("left_foot_index",),
    "right_foot": ("right_foot_index",),
    "left_wrist": ("left_wrist",),
    "right_wrist": ("right_wrist",),
    "left_knee": ("left_knee",),
    "right_knee": ("right_knee",),
}
# Height of each joint's centre above the floor when it rests on it, for the default 1.75 m skeleton: ankle
# and toe joints from the skeleton's foot geometry; a flat palm puts the wrist centre about 3 cm up, a
# kneeling knee's centre about 5 cm (half the knee's depth).
_REST_HEIGHT: dict[str, float] = {
    "left_ankle": ANKLE_HEIGHT,
    "right_ankle": ANKLE_HEIGHT,
    "left_foot": TOE_HEIGHT,
    "right_foot": TOE_HEIGHT,
    "left_wrist": 0.03,
    "right_wrist": 0.03,
    "left_knee": 0.05,
    "right_knee": 0.05,
}


@dataclass(frozen=True)
class ContactPreset:
    """Contact thresholds (``presets/contact/<name>.toml``); see the comments in ``default.toml``."""

    name: str
    height_full: float
    height_none: float
    speed_full: float
    speed_none: float
    image_speed_full: float
    image_speed_none: float
    on: float
    off: float
    min_seconds: float
    gap_seconds: float
    support_height: float
    blend_seconds: float
    still_seconds: float
    floor_band: float
    release_distance: float
    reach_slack: float
    hold_feet: float
    still_weight: float
    smooth_weight: float
    lock_height: float
    root_still: float
    root_smooth: float
    lift_depth: float
    leg_lift_cap: float
    root_lift: float
    root_lift_depth: float
    lift_seconds: float
    hold_speed_full: float
    hold_speed_none: float
    hold_still_seconds: float
    hold_image_speed_full: float
    hold_image_speed_none: float
    free_weight: float
    hold_ease_seconds: float
    trim_start_seconds: float
    trim_end_seconds: float
    release_rise: float
    release_image_speed: float
    release_seconds: float
    fold_lift_cap: float
    fold_full: float
    fold_none: float
    hidden_visibility: float
    seen_visibility: float
    hidden_prior: float
    present_visibility: float
    unseen_visibility: float
    knee_seen_visibility: float
    knee_unseen_visibility: float
    settled_seconds: float
    travel_full: float
    travel_none: float
    body_speed_full: float
    body_speed_none: float


def load_contact_preset(name: str = "default") -> ContactPreset:
    path = preset_dir("contact") / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in preset_dir("contact").glob("*.toml"))) or "none installed"
        raise MocapError(f"Unknown contact preset '{name}'; choose one of: {known}.")
    try:
        data = tomllib.loads(path.read_text())
        values = {f: float(data[f]) for f in ContactPreset.__dataclass_fields__ if f != "name"}
    except (tomllib.TOMLDecodeError, KeyError, TypeError, ValueError) as exc:
        raise MocapError(f"The contact preset {path} is incomplete or malformed ({exc}); fix or remove it.") from exc
    if not (0.0 <= values["off"] < values["on"] <= 1.0):
        raise MocapError(f"The contact preset {path} needs 0 <= off < on <= 1.")
    return ContactPreset(name=name, **values)


@dataclass(frozen=True)
class ImageEvidence:
    """The detector's view of each contact joint, on the motion's frames.

    speed: (F, K) image speed of the joint's landmarks in body heights per second (NaN where not seen);
    visibility: (F, K) MediaPipe visibility in [0, 1] (0 where not detected);
    raw_speed: (F, K) or None, the image speed without the median filter (it reacts in the frame a foot
    starts to move)."""

    speed: np.ndarray
    visibility: np.ndarray
    raw_speed: np.ndarray | None = None


def image_evidence(track: Track2D, num_frames: int, fps: float, window: int = 1) -> ImageEvidence:
    """Landmark stillness and visibility for ``CONTACT_JOINTS``, sampled at the motion's frame times
    (frame i at i / fps after the track's first frame), so resampled motions line up with the video."""
    times = track.frame_times - track.frame_times[0]
    dt = np.diff(times)
    height = np.nanmedian(track.boxes[:, 3] - track.boxes[:, 1]) if np.isfinite(track.boxes).any() else np.nan
    if not np.isfinite(height) or height <= 0 or len(times) < 2:
        nan = np.full((num_frames, len(CONTACT_JOINTS)), np.nan)
        return ImageEvidence(nan, np.zeros_like(nan))
    speed = np.full((len(times), len(CONTACT_JOINTS)), np.nan)
    vis = np.zeros((len(times), len(CONTACT_JOINTS)))
    for k, joint in enumerate(CONTACT_JOINTS):
        idx = [track.names.index(n) for n in _LANDMARKS[joint]]
        xy = track.landmarks[:, idx, :2].mean(axis=1)
        if window > 1:
            xy = median_filter(xy, size=(window, 1), mode="nearest")
        step = np.linalg.norm(np.diff(xy, axis=0), axis=-1) / np.maximum(dt, 1e-6) / height
        # Central estimate: the mean of the steps into and out of each frame.
        speed[1:-1, k] = 0.5 * (step[:-1] + step[1:])
        speed[0, k], speed[-1, k] = step[0], step[-1]
        vis[:, k] = np.where(track.detected, track.visibility[:, idx].min(axis=1), 0.0)
    new_t = np.arange(num_frames) / fps
    out_speed = np.full((num_frames, len(CONTACT_JOINTS)), np.nan)
    out_vis = np.zeros((num_frames, len(CONTACT_JOINTS)))
    for k in range(len(CONTACT_JOINTS)):
        ok = np.isfinite(speed[:, k]) & (vis[:, k] > 0)
        if ok.sum() >= 2:
            out_speed[:, k] = np.interp(new_t, times[ok], speed[ok, k])
        out_vis[:, k] = np.interp(new_t, times, vis[:, k])
    out_speed[out_vis <= 0] = np.nan
    return ImageEvidence(out_speed, out_vis)


def rest_heights(motion: Motion) -> np.ndarray:
    """(K,) height of each contact joint's centre above the floor when it rests on it, for this skeleton."""
    sk = motion.skeleton
    ankle = JOINT_INDEX["left_ankle"]
    scale = sk.bone_lengths()[ankle] / canonical_skeleton().bone_lengths()[ankle]
    return np.array([_REST_HEIGHT[n] * scale for n in CONTACT_JOINTS])


def still_window(preset: ContactPreset, fps: float) -> int:
    """The odd number of frames over which positions are median-filtered before speeds are taken."""
    return 2 * int(round(preset.still_seconds * fps / 2)) + 1


def _ramp(x: np.ndarray, full: float, none: float) -> np.ndarray:
    """1 at or below ``full``, 0 at or above ``none``, linear between (NaN stays NaN)."""
    return np.clip((none - x) / max(none - full, 1e-9), 0.0, 1.0)


def joint_speeds(joints: np.ndarray, fps: float, window: int = 1) -> np.ndarray:
    """(F, K) speed in m/s of joints (F, K, 3): central differences, one-sided at the ends, of the positions
    median-filtered over ``window`` frames (an estimate's feet jitter by centimetres per frame; a planted
    foot's median position barely moves)."""
    if len(joints) < 2:
        return np.zeros(joints.shape[:2])
    if window > 1:
        joints = median_filter(joints, size=(window, 1, 1), mode="nearest")
    v = np.gradient(joints, axis=0) * fps
    return np.linalg.norm(v, axis=-1)


def contact_probability(
    motion: Motion, preset: ContactPreset, floor: float = 0.0, evidence: ImageEvidence | None = None
) -> np.ndarray:
    """(F, K) per-frame probability that each of ``CONTACT_JOINTS`` rests on the floor at height ``floor``."""
    idx = [JOINT_INDEX[n] for n in CONTACT_JOINTS]
    joints = motion.joints[:, idx]
    height = joints[..., 1] - floor - rest_heights(motion)
    # A 3D estimate's feet drift up and down with its depth errors, but the lowest foot joint of a frame is
    # still the best candidate for carrying the weight: heights count from the floor or from that joint,
    # whichever is higher.
    feet = [CONTACT_JOINTS.index(n) for n in FOOT_JOINTS]
    lowest = height[:, feet].min(axis=1, keepdims=True)
    hands = [CONTACT_JOINTS.index(n) for n in HAND_JOINTS]
    # Hands count from the floor only: in floor work the feet can be well above it (a kneeling estimate's
    # feet float), and a hand raised to their height is not on the floor. Knees rest at the feet's level.
    from_floor = height[:, hands]
    height = np.minimum(height, height - lowest)
    height[:, hands] = from_floor
    p_height = _ramp(height, preset.height_full, preset.height_none)
    p = p_height * stillness(motion, preset, evidence)
    if evidence is not None:
        # A foot the detector barely sees stands at least with ``hidden_prior`` where it is near the floor, no
        # foot of the other leg is seen standing (the body's weight rests somewhere, and a hidden foot swinging
        # beside a seen standing one, the far foot behind the near leg in a side view, is not) and the motion
        # allows it (``settled``: not a hidden foot travelling with a walking body).
        trust = hidden_trust(evidence, preset)
        prior = (1 - trust) * settled(motion, preset)
        seen = trust * p
        left, right = list(LEG_FEET["left"]), list(LEG_FEET["right"])
        other = np.zeros_like(p)
        other[:, left] = seen[:, right].max(axis=1, keepdims=True)
        other[:, right] = seen[:, left].max(axis=1, keepdims=True)
        hidden = preset.hidden_prior * p_height * (1 - other)
        p = p + prior * np.maximum(hidden - p, 0.0)
    support = [CONTACT_JOINTS.index(n) for n in SUPPORT_JOINTS]
    p[:, support] *= height[:, support] < preset.support_height
    return p


def stillness(
    motion: Motion, preset: ContactPreset, evidence: ImageEvidence | None = None, strict: bool = False
) -> np.ndarray:
    """(F, K) how still each of ``CONTACT_JOINTS`` is, in [0, 1]: from its 3D speed, and where the detector saw
    it from its image speed. ``strict`` uses the ``hold_*`` thresholds: how firmly foot locking may hold it."""
    idx = [JOINT_INDEX[n] for n in CONTACT_JOINTS]
    joints = motion.joints[:, idx]
    full, none = (preset.hold_speed_full, preset.hold_speed_none) if strict else (preset.speed_full, preset.speed_none)
    window = 2 * round(preset.hold_still_seconds * motion.fps / 2) + 1 if strict else still_window(preset, motion.fps)
    p_still = _ramp(joint_speeds(joints, motion.fps, window), full, none)
    if evidence is not None:
        seen = np.isfinite(evidence.speed)
        ifull, inone = (
            (preset.hold_image_speed_full, preset.hold_image_speed_none)
            if strict
            else (preset.image_speed_full, preset.image_speed_none)
        )
        p_image = _ramp(np.nan_to_num(evidence.speed), ifull, inone)
        # Where the detector saw the joint its image stillness decides, in proportion to the landmark's
        # visibility: a 3D estimate's speed is dominated by its depth noise, the image's is not.
        w = np.where(seen, np.clip(evidence.visibility, 0.0, 1.0), 0.0)
        p_still = (1 - w) * p_still + w * p_image
        if strict:
            # A hidden foot (``hidden_trust``) that its contact calls planted is held as still where it may be
            # standing (``settled``).
            prior = (1 - hidden_trust(evidence, preset)) * settled(motion, preset)
            p_still = p_still + prior * (1 - p_still)
    return p_still


def hidden_trust(evidence: ImageEvidence, preset: ContactPreset) -> np.ndarray:
    """(F, K) in [0, 1]: how far each foot joint's evidence is trusted, by its landmarks' visibility: 1 at or
    above ``seen_visibility``, 0 from ``hidden_visibility`` down to ``present_visibility``, back to 1 at or below
    ``unseen_visibility``; 1 for hands and knees and where the detector did not report the joint.

    A foot the detector barely sees (a deep squat hides the feet behind the thighs) gets landmarks that wander
    by tens of pixels while it stands, and a 3D speed no better; most hidden feet stand (``hidden_prior``). A
    foot it does not see at all (out of frame, behind a table: visibility 0.1-0.2), or whose knee it does not
    see either, is not known to be standing anywhere: its evidence stays as it is."""
    seen = np.isfinite(evidence.speed)
    vis = evidence.visibility
    hidden = _ramp(vis, preset.hidden_visibility, preset.seen_visibility) * _ramp(
        -vis, -preset.present_visibility, -preset.unseen_visibility
    )
    # Hidden behind its own leg, the knee above it is seen; a whole leg unseen is not known to stand.
    for side, cols in LEG_FEET.items():
        knee = vis[:, CONTACT_JOINTS.index(f"{side}_knee")]
        hidden[:, list(cols)] *= _ramp(-knee, -preset.knee_seen_visibility, -preset.knee_unseen_visibility)[:, None]
    trust = np.where(seen, 1.0 - hidden, 1.0)
    trust[:, [CONTACT_JOINTS.index(n) for n in SUPPORT_JOINTS]] = 1.0
    return trust


def seen_contacts(motion: Motion, preset: ContactPreset, evidence: ImageEvidence | None) -> Motion:
    """``motion`` (with ``contacts``) keeping only the contacts of joints the detector saw: where a foot is
    hidden (``hidden_trust`` below 0.5) its contact is dropped (probability pushed below 0.5)."""
    if evidence is None or motion.contacts is None:
        return motion
    trust = hidden_trust(evidence, preset)
    return replace(motion, contacts=np.where(trust >= 0.5, motion.contacts, np.minimum(motion.contacts, 0.49)))


def settled(motion: Motion, preset: ContactPreset) -> np.ndarray:
    """(F, K) in [0, 1]: how surely each contact joint may be standing as far as the motion goes: the joint's
    horizontal travel over ``settled_seconds`` either side of the frame (median-filtered positions; 1 below
    ``travel_full`` metres, 0 above ``travel_none``) or, where the whole body stays put, the root's horizontal
    speed (1 below ``body_speed_full`` m/s, 0 above ``body_speed_none``), whichever is surer.

    A hidden foot is taken as standing only where this allows: a person walking with both feet out of frame
    has both feet hidden, and standing them both pinned the legs while the body walked on (the rendered walk
    with its foot landmarks hidden: MPJPE 79.6 mm without foot locking, 195.6 with)."""
    window = still_window(preset, motion.fps)
    idx = [JOINT_INDEX[n] for n in CONTACT_JOINTS]
    xz = median_filter(motion.joints[:, idx][..., [0, 2]], size=(window, 1, 1), mode="nearest")
    w = max(1, int(round(preset.settled_seconds * motion.fps)))
    padded = np.concatenate([np.repeat(xz[:1], w, axis=0), xz, np.repeat(xz[-1:], w, axis=0)])
    travel = np.linalg.norm(padded[2 * w :] - padded[: len(xz)], axis=-1)
    root = motion.joints[:, :1].copy()
    root[..., 1] = 0.0
    body = _ramp(joint_speeds(root, motion.fps, window)[:, 0], preset.body_speed_full, preset.body_speed_none)
    return np.maximum(_ramp(travel, preset.travel_full, preset.travel_none), body[:, None])


def hysteresis(p: np.ndarray, on: float, off: float, min_frames: int, max_gap: int) -> np.ndarray:
    """(F, K) bool contact intervals from probabilities (F, K): a contact starts above ``on`` and lasts
    while above ``off``; breaks of at most ``max_gap`` frames are bridged, then contacts shorter than
    ``min_frames`` are dropped."""
    state = np.zeros(p.shape, dtype=bool)
    for k in range(p.shape[1]):
        active = False
        for f in range(p.shape[0]):
            active = p[f, k] > off if active else p[f, k] >= on
            state[f, k] = active
        runs = contact_runs(state[:, k])
        for (_, e0), (s1, _) in zip(runs[:-1], runs[1:]):
            if s1 - e0 <= max_gap:
                state[e0:s1, k] = True
        for s, e in contact_runs(state[:, k]):
            if e - s < min_frames:
                state[s:e, k] = False
    return state


def trim_contact_edges(planted: np.ndarray, start_frames: int, end_frames: int) -> np.ndarray:
    """(F, K) bool contacts (F, K) with ``start_frames`` dropped from the start and ``end_frames`` from the end
    of every interval (an interval too short to keep one frame is kept whole).

    The evidence is smoothed over ``still_seconds``, so an interval reaches past the frames where the foot is
    truly still: into the landing, and more at toe-off, where the heel starts to rise while the median-filtered
    landmarks still stand. The two ends are trimmed separately because they are not equally late."""
    if start_frames <= 0 and end_frames <= 0:
        return planted
    out = planted.copy()
    for k in range(planted.shape[1]):
        for s, e in contact_runs(planted[:, k]):
            if e - s > start_frames + end_frames:
                out[s : s + start_frames, k] = False
                out[e - end_frames : e, k] = False
    return out


def release_moving_ends(
    planted: np.ndarray,
    heights: np.ndarray,
    raw_speed: np.ndarray | None,
    rise: float,
    image_speed: float,
    max_frames: int,
) -> np.ndarray:
    """(F, K) bool contacts (F, K) whose intervals lose their trailing frames in which the joint is already
    leaving, where the detector saw it (raw_speed (F, K), its unfiltered image speed in body heights per second,
    NaN where not seen: nothing is released there; clean CMU walking without a video lost true contacts to the
    height alone): more than ``rise`` metres above the interval's median height (heights (F, K)) or faster than
    ``image_speed`` in the image; at most ``max_frames`` (about the median filter's lag: a joint still rising
    long before the end was planted in a noisy estimate, not leaving) and never more than half the interval
    (a run's short contacts would vanish).

    The contact evidence is median-filtered (``still_seconds``), so it still reads "still" for a few frames
    after a foot lifts off (on jumping jacks and kicks most false contacts were an interval's last frames).
    Either sign releases: with hidden feet counted as standing (``hidden_trust``), the rendered clips' contact
    P/R went .885/.946 (both signs required) -> .902/.904 (either)."""
    out = planted.copy()
    for k in range(planted.shape[1]):
        for s, e in contact_runs(planted[:, k]):
            base = np.median(heights[s:e, k])
            f = e - 1
            while f > max(s + (e - s) // 2, e - 1 - max_frames):
                if raw_speed is None or not np.isfinite(raw_speed[f, k]):
                    break
                if not (heights[f, k] - base > rise or raw_speed[f, k] > image_speed):
                    break
                out[f, k] = False
                f -= 1
    return out


def contact_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) index pairs of the True runs of a 1-D bool array."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def detect_contacts(
    motion: Motion, preset: ContactPreset, floor: float = 0.0, evidence: ImageEvidence | None = None
) -> Motion:
    """A copy of ``motion`` with ``contacts`` set: the evidence probability, pushed to >= 0.5 inside the
    hysteresis intervals and below 0.5 outside, so ``contacts >= 0.5`` is the decision."""
    p = contact_probability(motion, preset, floor, evidence)
    planted = hysteresis(
        p,
        preset.on,
        preset.off,
        max(1, int(round(preset.min_seconds * motion.fps))),
        int(round(preset.gap_seconds * motion.fps)),
    )
    planted = trim_contact_edges(
        planted,
        int(round(preset.trim_start_seconds * motion.fps)),
        int(round(preset.trim_end_seconds * motion.fps)),
    )
    stored = np.where(planted, np.maximum(p, 0.5), np.minimum(p, 0.49))
    return replace(motion, contacts=stored, contact_joints=CONTACT_JOINTS)


def release_contacts(motion: Motion, preset: ContactPreset, evidence: ImageEvidence | None = None) -> Motion:
    """A copy of ``motion`` (with ``contacts``) whose contact intervals lose the last frames in which the
    joint is already leaving (``release_moving_ends`` on ``motion``'s joint heights and the unfiltered
    image speed), their probabilities pushed below 0.5. Foot locking holds by the contacts before this:
    released frames held as firmly as before gave less skate on the rendered clips (run_49_04: 6.5 vs 8.7
    mm/frame when the hold was released too)."""
    if motion.contacts is None or preset.release_rise <= 0:
        return motion
    idx = [JOINT_INDEX[n] for n in motion.contact_joints]
    planted = motion.contacts >= 0.5
    released = release_moving_ends(
        planted,
        motion.joints[:, idx, 1],
        evidence.raw_speed if evidence is not None else None,
        preset.release_rise,
        preset.release_image_speed,
        int(round(preset.release_seconds * motion.fps)),
    )
    return replace(motion, contacts=np.where(released, motion.contacts, np.minimum(motion.contacts, 0.49)))


def planted_share(motion: Motion) -> float | None:
    """Share of frames in which at least one foot joint is planted (None without contacts)."""
    if motion.contacts is None or not motion.num_frames:
        return None
    cols = [motion.contact_joints.index(n) for n in FOOT_JOINTS if n in motion.contact_joints]
    return float(np.mean(np.any(motion.contacts[:, cols] >= 0.5, axis=1))) if cols else None
