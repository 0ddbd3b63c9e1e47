"""Resampling a Motion in time: a new frame rate (``--fps``) or a variable-rate source onto a constant grid.

Rotations are interpolated by slerp, positions linearly; confidence takes the lower of the two neighbours.
"""

from __future__ import annotations

import numpy as np

from mocap_cli.core.motion import Motion
from mocap_cli.core.rotations import quat_continuous, quat_slerp
from mocap_cli.errors import MocapError

# The output frame rate may exceed the source's (interpolated frames) up to this many times its rate, or this
# absolute rate when that is higher (a 24 fps clip may still be exported at 120 or 240 fps for a game engine).
# Beyond it every extra frame is invented, and huge rates exhaust memory (1e9 fps: gigabytes per second).
FPS_PER_SOURCE_RATE = 4.0
FPS_ALWAYS_ALLOWED = 240.0


def max_output_fps(source_fps: float) -> float:
    """The highest rate a motion recorded at ``source_fps`` may be resampled to."""
    return max(FPS_PER_SOURCE_RATE * float(source_fps), FPS_ALWAYS_ALLOWED)


def resample_motion(motion: Motion, fps: float, source_times: np.ndarray | None = None) -> Motion:
    """Sample ``motion`` at ``fps`` from its first to its last frame time.

    ``source_times`` (F,) are the frames' real times in seconds (presentation timestamps of a
    variable-frame-rate video); by default frame i is at i / motion.fps. A rate that is not positive and
    finite, or above ``max_output_fps`` of the source, is refused before anything is allocated."""
    if not (np.isfinite(fps) and fps > 0):
        raise MocapError(f"Cannot resample to {fps:g} frames per second; give a positive frame rate.")
    if fps > max_output_fps(motion.fps):
        raise MocapError(
            f"--fps {fps:g} is too high for a {motion.fps:g} fps source; use at most "
            f"{max_output_fps(motion.fps):g} frames per second."
        )
    times = np.arange(motion.num_frames) / motion.fps if source_times is None else np.asarray(source_times, float)
    if (
        len(times) != motion.num_frames
        or not len(times)
        or not (np.all(np.isfinite(times)) and np.all(np.diff(times) >= 0))
    ):
        raise ValueError("resampling needs at least one frame and finite, ascending source_times (F,)")
    times = times - times[0]
    count = int(np.floor(times[-1] * fps + 1e-6)) + 1
    new_t = np.arange(count) / fps
    i1 = np.clip(np.searchsorted(times, new_t, side="right"), 1, max(motion.num_frames - 1, 1))
    i0 = i1 - 1
    if motion.num_frames == 1:
        i0 = i1 = np.zeros(count, dtype=int)
        alpha = np.zeros(count)
    else:
        span = np.maximum(times[i1] - times[i0], 1e-12)
        alpha = np.clip((new_t - times[i0]) / span, 0.0, 1.0)
    rot = quat_continuous(motion.rotations, axis=0)
    rotations = quat_slerp(rot[i0], rot[i1], alpha[:, None, None])
    root = motion.root_translation[i0] + alpha[:, None] * (motion.root_translation[i1] - motion.root_translation[i0])
    confidence = np.minimum(motion.confidence[i0], motion.confidence[i1])
    out = Motion.from_rotations(fps, motion.skeleton, rotations, root, confidence, motion.provenance, motion.betas)
    if motion.contacts is not None:
        out.contacts = motion.contacts[i0] + alpha[:, None] * (motion.contacts[i1] - motion.contacts[i0])
        out.contact_joints = motion.contact_joints
    return out


def is_constant_rate(times: np.ndarray, fps: float, tolerance: float = 0.25) -> bool:
    """True when every frame interval is within ``tolerance`` of a frame at ``fps``."""
    if len(times) < 2:
        return True
    return bool(np.all(np.abs(np.diff(times) * fps - 1.0) < tolerance))
