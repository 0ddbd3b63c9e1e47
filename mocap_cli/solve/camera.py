"""From the camera to the world: pinhole intrinsics, the global root path, gravity and the floor.

Models see the person, not the world. We recover a world trajectory with a pinhole camera whose focal
length follows from an assumed field of view (``DEFAULT_FOV_DEGREES`` across the longer image side, a
typical phone/action camera; ``--fov`` overrides it). Camera frame: OpenCV's (x right, y down, z forward).
World frame: Y up, metres; the camera looks along world -Z, so a person facing the camera faces +Z.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocap_cli.core.rotations import quat_apply, quat_between, quat_identity
from mocap_cli.errors import MocapError

DEFAULT_FOV_DEGREES = 60.0
# Field of view (degrees across the longer image side): 0 or 180 put the camera at an infinite or zero focal
# length, which the camera solve cannot handle.
FOV_MIN_DEGREES = 1.0
FOV_MAX_DEGREES = 179.0
# Window of the depth filter (``steady_depth``): long enough to average out pose-driven size errors, short
# enough (with a local quadratic) to follow a person walking towards the camera.
DEPTH_SECONDS = 1.5
# The floor's slope from the soles (``floor_alignment``). Rendered clips (default model, frame-weighted; before:
# root path 67.2 mm, floor tilt 8.5°, median |lowest-ankle height - truth| 3.7 cm, contact P/R .900/.904, skate
# 1.98): noise 0.05 m per 0.5 s, prior slope 0.08: 66.5 mm, 7.5°, 1.3 cm, .900/.908, 1.99; noise 0.03 per 0.3 s
# with prior 0.18 (freer): 66.3, 9.1° (in-place clips tilted 3-6° further by noise), 1.1 cm; noise 0.05 per 1 s
# with prior 0.06 (stiffer): the 2-second run was not levelled (ankles 35 cm over the floor).
FLOOR_NOISE = 0.05
FLOOR_SAMPLE_S = 0.5
FLOOR_SLOPE = 0.08
FLOOR_BAND = 0.05
FLOOR_ITERATIONS = 5
FLOOR_MAX_DEGREES = 20.0
# Camera (x right, y down, z forward) → world (x right, y up, z towards the camera): a 180° turn about X.
CAMERA_TO_WORLD = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class Pinhole:
    focal: float  # pixels
    cx: float
    cy: float

    @classmethod
    def from_fov(cls, width: int, height: int, fov_degrees: float = DEFAULT_FOV_DEGREES) -> "Pinhole":
        if not FOV_MIN_DEGREES <= fov_degrees <= FOV_MAX_DEGREES:  # also refuses NaN
            raise MocapError(
                f"The field of view must be between {FOV_MIN_DEGREES:g} and {FOV_MAX_DEGREES:g} "
                f"degrees, not {fov_degrees:g}; pass --fov in that range."
            )
        if width < 1 or height < 1:
            raise MocapError(f"The video frames are {width}x{height} pixels; a camera needs at least one pixel.")
        focal = 0.5 * max(width, height) / np.tan(np.radians(fov_degrees) / 2.0)
        # Pixel centres at integer coordinates (OpenCV convention).
        return cls(float(focal), (width - 1) / 2.0, (height - 1) / 2.0)


def solve_translation(points: np.ndarray, pixels: np.ndarray, weights: np.ndarray, camera: Pinhole) -> np.ndarray:
    """Per-frame camera-frame translation t (F, 3) such that ``points + t`` projects onto ``pixels``.

    points: (F, K, 3) camera-oriented 3D points relative to the body (metres); pixels (F, K, 2);
    weights (F, K) ≥ 0. Linear least squares on the projection equations
    f (X + tx) = (u - cx)(Z + tz) and f (Y + ty) = (v - cy)(Z + tz). Frames without enough weighted
    points get NaN, and so do frames with non-finite input (LAPACK's least squares can spin forever on
    infinities, so they never reach it).
    """
    if not (np.isfinite(camera.focal) and camera.focal > 0):
        raise ValueError(f"camera focal length must be positive and finite, got {camera.focal}")
    num_frames = points.shape[0]
    du = pixels[..., 0] - camera.cx
    dv = pixels[..., 1] - camera.cy
    f = camera.focal
    zeros = np.zeros_like(du)
    a = np.concatenate(
        [
            np.stack([np.full_like(du, f), zeros, -du], axis=-1),
            np.stack([zeros, np.full_like(dv, f), -dv], axis=-1),
        ],
        axis=1,
    )  # (F, 2K, 3)
    b = np.concatenate([du * points[..., 2] - f * points[..., 0], dv * points[..., 2] - f * points[..., 1]], axis=1)
    w = np.sqrt(np.concatenate([weights, weights], axis=1))
    aw, bw = a * w[..., None], b * w
    out = np.full((num_frames, 3), np.nan)
    usable = np.all(np.isfinite(aw), axis=(1, 2)) & np.all(np.isfinite(bw), axis=1)
    enough = ((weights > 0).sum(axis=1) >= 3) & usable
    for i in np.flatnonzero(enough):
        sol, *_ = np.linalg.lstsq(aw[i], bw[i], rcond=None)
        out[i] = sol
    return out


def interpolate_nans(x: np.ndarray) -> np.ndarray:
    """Fill NaN rows of (F, ...) by linear interpolation over time (held at the ends)."""
    x = np.array(x, dtype=np.float64, copy=True)
    flat = x.reshape(len(x), -1)
    t = np.arange(len(x))
    for k in range(flat.shape[1]):
        ok = np.isfinite(flat[:, k])
        if ok.all():
            continue
        if not ok.any():
            flat[:, k] = 0.0
            continue
        flat[:, k] = np.interp(t, t[ok], flat[ok, k])
    return flat.reshape(x.shape)


def gravity_alignment(up_vectors: np.ndarray, max_degrees: float = 45.0) -> np.ndarray:
    """A quaternion that turns the median body "up" direction (world frame, (F, 3)) onto +Y.

    People stand upright most of the time, so their median up direction reveals the camera's pitch and
    roll. A larger correction than ``max_degrees`` is implausible for a filmed person and is skipped."""
    ok = np.all(np.isfinite(up_vectors), axis=-1)
    if ok.sum() < 1:
        return quat_identity()
    v = up_vectors[ok] / np.maximum(np.linalg.norm(up_vectors[ok], axis=-1, keepdims=True), 1e-9)
    median = np.median(v, axis=0)
    median /= max(np.linalg.norm(median), 1e-9)
    angle = np.degrees(np.arccos(np.clip(median[1], -1.0, 1.0)))
    if angle > max_degrees:
        return quat_identity()
    return quat_between(median, np.array([0.0, 1.0, 0.0]))


def floor_alignment(soles: np.ndarray, fps: float) -> np.ndarray:
    """A quaternion that levels the floor under the per-frame lowest sole points (F, 3), world frame, Y up.

    The body's median up (``gravity_alignment``) is not quite vertical: a runner leans into the run, a standing
    body's neck is ahead of its ankles, a crouch leans further; seen from a camera 10-15° above, the floor came
    out tilted as much (ground-truth 3D of the rendered run: 14°), so a travelling body climbed or sank along its
    path and the feet floated (run_49_04: ankles a median 36 cm over the floor instead of 15). Where the person
    travels, the soles show the floor's slope: a plane is fitted to their lower envelope (points more than
    ``FLOOR_BAND`` above it are feet in the air), each ``FLOOR_SAMPLE_S`` of soles counting as one
    measurement of ``FLOOR_NOISE`` metres against a prior of no change with a slope of ``FLOOR_SLOPE`` (one
    standard deviation): a body that stays in place (too little spread) keeps the body's up. A slope over
    ``FLOOR_MAX_DEGREES`` is stairs or a ramp, not a tilted view, and is left as it is."""
    p = soles[np.all(np.isfinite(soles), axis=1)]
    if len(p) < max(3.0, 2 * FLOOR_SAMPLE_S * fps):  # under two measurements: no slope to see
        return quat_identity()
    weight = 1.0 / (FLOOR_NOISE**2 * max(1.0, FLOOR_SAMPLE_S * fps))
    keep = np.ones(len(p), dtype=bool)
    slope = np.zeros(2)
    for _ in range(FLOOR_ITERATIONS):
        centre = p[keep].mean(axis=0)
        spread = (p - centre)[:, [0, 2]]
        rise = p[:, 1] - centre[1]
        normal_matrix = weight * spread[keep].T @ spread[keep] + np.eye(2) / FLOOR_SLOPE**2
        slope = np.linalg.solve(normal_matrix, weight * spread[keep].T @ rise[keep])
        keep = rise - spread @ slope < FLOOR_BAND
    if np.degrees(np.arctan(np.linalg.norm(slope))) > FLOOR_MAX_DEGREES:
        return quat_identity()
    return quat_between(np.array([-slope[0], 1.0, -slope[1]]), np.array([0.0, 1.0, 0.0]))


def rotate_points(q: np.ndarray, points: np.ndarray) -> np.ndarray:
    return quat_apply(np.broadcast_to(q, points.shape[:-1] + (4,)), points)


def floor_height(sole_heights: np.ndarray, percentile: float = 25.0) -> float:
    """Height of the floor from the per-frame lowest sole point (F,). Some foot is on the ground in most
    frames (even jumps spend most of their time in contact), so a lower quartile finds the floor while
    ignoring frames where a noisy estimate pushes a foot far below it."""
    ok = np.isfinite(sole_heights)
    return float(np.percentile(sole_heights[ok], percentile)) if ok.any() else 0.0


def steady_depth(translation: np.ndarray, fps: float, seconds: float = DEPTH_SECONDS) -> np.ndarray:
    """The body's camera-frame path (F, 3) with its depth smoothed over ``seconds`` and each frame kept on its
    own viewing ray.

    The image position of the body is measured to a few pixels, but its depth comes from the body's apparent
    size, which wavers with every pose error of the 3D model (a 2 % size error is 10 cm at 5 m): the root path
    wobbled mostly along the line of sight. So the depth gets a robust, slower filter (running median, then a
    local quadratic over ``seconds``), and x, y are rescaled so the root still projects where it was seen."""
    from mocap_cli.post.smoothing import smooth_signal

    depth = translation[:, 2]
    if len(depth) < 5 or not np.all(np.isfinite(depth)) or np.any(depth <= 0):
        return translation
    steady = smooth_signal(depth, fps, median_seconds=seconds / 3.0, window_seconds=seconds, polyorder=2)
    steady = np.maximum(steady, 0.1 * depth.min())
    return translation * (steady / depth)[:, None]
