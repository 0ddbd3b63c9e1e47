"""The floor, fitted from the contacts, and the rule that nothing goes through it.

Before this stage the floor is a lower quartile of the soles over all frames (``solve.posing.ground_motion``),
which sinks or lifts the body whenever the estimate's feet are noisy. Once contacts are known the floor is where
the planted joints actually rest (``contact_floor``).
"""

from __future__ import annotations

import numpy as np

from mocap_cli.core.motion import Motion
from mocap_cli.post.contacts import CONTACT_JOINTS, FOOT_JOINTS, SUPPORT_JOINTS, rest_heights


def contact_floor(motion: Motion, band: float) -> float | None:
    """Height of the floor under the planted foot joints, or None when nothing is planted.

    A planted joint rests between its rest height (``rest_heights``: our skeleton's joint centre over the
    sole) and ``band`` metres above it: joint definitions differ by a few centimetres between bodies and
    models, and a heel rolling onto the ball lifts the ankle. The floor moves only as far as the median planted
    sample is outside that band, so a motion whose feet already rest on the floor is not moved at all."""
    if motion.contacts is None:
        return None
    cols = [CONTACT_JOINTS.index(n) for n in FOOT_JOINTS]
    idx = [motion.skeleton.index(n) for n in FOOT_JOINTS]
    planted = motion.contacts[:, cols] >= 0.5
    if not planted.any():
        return None
    heights = motion.joints[:, idx, 1] - rest_heights(motion)[cols]
    return float(np.median(heights[planted] - np.clip(heights[planted], 0.0, band)))


def support_floor(motion: Motion) -> float | None:
    """Height of the floor under the planted hands and knees (floor work), or None when none is planted: the
    median of their planted samples' heights over their rest heights, as ``contact_floor`` does for the feet.
    (A model's feet are fitted to the floor before this stage; in floor work they may rest far above the
    hands, and the body was left under the floor.)"""
    if motion.contacts is None:
        return None
    cols = [CONTACT_JOINTS.index(n) for n in SUPPORT_JOINTS]
    idx = [motion.skeleton.index(n) for n in SUPPORT_JOINTS]
    planted = motion.contacts[:, cols] >= 0.5
    if not planted.any():
        return None
    heights = motion.joints[:, idx, 1] - rest_heights(motion)[cols]
    return float(np.median(heights[planted]))


def fitted_floor(motion: Motion, band: float) -> float | None:
    """The floor under the planted joints: the feet's (``contact_floor``), lowered to the supporting hands' and
    knees' (``support_floor``) where those rest lower; None when nothing is planted."""
    levels = [f for f in (contact_floor(motion, band), support_floor(motion)) if f is not None]
    return min(levels) if levels else None


def shift_floor(motion: Motion, floor: float) -> Motion:
    """The same motion moved down by ``floor`` so that floor is at height 0."""
    root = motion.root_translation - np.array([0.0, floor, 0.0])
    return motion.with_rotations(motion.rotations, root)


def clearance(motion: Motion, surface: np.ndarray) -> np.ndarray:
    """(F,) the lowest height of any joint above the floor, each joint measured at ``surface[j]`` below its
    centre (where its body surface is; 0 for joints that may touch with their centre)."""
    return (motion.joints[..., 1] - surface[None]).min(axis=1)


def lift_above_floor(motion: Motion, surface: np.ndarray, tolerance: float, blend_frames: int) -> Motion:
    """Raise the root in the frames where some joint's surface is more than ``tolerance`` below the floor,
    by just enough, easing in and out over ``blend_frames`` so nothing pops. surface: (J,) metres."""
    deficit = np.maximum(0.0, -tolerance - clearance(motion, surface))
    if not np.any(deficit > 0):
        return motion
    lift = ease_peaks(deficit, blend_frames)
    root = motion.root_translation + lift[:, None] * np.array([0.0, 1.0, 0.0])
    return motion.with_rotations(motion.rotations, root)


def ease_peaks(x: np.ndarray, frames: int) -> np.ndarray:
    """A curve >= x (F,) that rises and falls over about ``frames`` around each peak: a running max over
    +-frames, then a running mean of the same width (edges held), then the max with x."""
    if frames < 1 or len(x) < 2:
        return x
    peak = np.array([x[max(0, i - frames) : i + frames + 1].max() for i in range(len(x))])
    padded = np.pad(peak, frames, mode="edge")
    smooth = np.convolve(padded, np.ones(2 * frames + 1) / (2 * frames + 1), mode="valid")
    return np.maximum(smooth, x)
