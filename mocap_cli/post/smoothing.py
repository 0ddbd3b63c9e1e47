"""Offline, zero-phase smoothing of a Motion's rotations and root path.

For file export we can look ahead, so the filter is non-causal: a short running median rejects outlier
frames, then a Savitzky–Golay fit (local quadratic) removes jitter while keeping peaks; this combination
was the most accurate of the smoothers compared in research/anchors.md §4. Rotations are smoothed as
sign-continuous quaternions and renormalised (for the small windows used this equals smoothing on the
rotation manifold to well below a degree). Strength comes from named presets in ``presets/smooth/``,
whose windows are in seconds so they mean the same at every frame rate.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mocap_cli.errors import MocapError
from mocap_cli.core.motion import Motion
from mocap_cli.core.preset_files import preset_dir
from mocap_cli.core.rotations import quat_continuous, quat_normalize


@dataclass(frozen=True)
class SmoothingPreset:
    name: str
    description: str
    median_seconds: float  # 0 disables the median stage
    window_seconds: float  # Savitzky–Golay window; 0 disables smoothing
    polyorder: int
    root_window_seconds: float


def load_smoothing_preset(name: str) -> SmoothingPreset:
    path = preset_dir("smooth") / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in preset_dir("smooth").glob("*.toml")))
        raise MocapError(f"Unknown smoothing preset '{name}'; choose one of: {known}.")
    data = tomllib.loads(path.read_text())
    return SmoothingPreset(
        name=name,
        description=str(data.get("description", "")),
        median_seconds=float(data.get("median_seconds", 0.0)),
        window_seconds=float(data.get("window_seconds", 0.0)),
        polyorder=int(data.get("polyorder", 2)),
        root_window_seconds=float(data.get("root_window_seconds", data.get("window_seconds", 0.0))),
    )


def _odd_frames(seconds: float, fps: float) -> int:
    n = int(round(seconds * fps))
    return n + 1 if n % 2 == 0 else n


def running_median(x: np.ndarray, window: int) -> np.ndarray:
    """Median over a centred window along axis 0 (edges use the available frames)."""
    if window < 3 or len(x) < 3:
        return x.copy()
    half = window // 2
    padded = np.concatenate([np.repeat(x[:1], half, 0), x, np.repeat(x[-1:], half, 0)], axis=0)
    stacked = np.stack([padded[i : i + len(x)] for i in range(window)], axis=0)
    return np.median(stacked, axis=0)


def savgol_coefficients(window: int, polyorder: int) -> np.ndarray:
    """Weights of the centre value of a least-squares polynomial fit over ``window`` samples."""
    half = window // 2
    t = np.arange(-half, half + 1, dtype=np.float64)
    basis = np.vander(t, polyorder + 1, increasing=True)
    return np.linalg.pinv(basis)[0]


def savgol(x: np.ndarray, window: int, polyorder: int) -> np.ndarray:
    """Savitzky–Golay smoothing along axis 0, zero phase. The first and last half-windows take the value
    of the polynomial fitted to the first/last full window (like scipy's ``mode="interp"``), so the
    clip's ends are neither pinned nor bent towards a mirror image."""
    if len(x) % 2 == 0:
        window = min(window, len(x) - 1)
    else:
        window = min(window, len(x))
    if window <= polyorder + 1 or window < 3:
        return np.array(x, dtype=np.float64, copy=True)
    half = window // 2
    coeffs = savgol_coefficients(window, polyorder)
    out = np.zeros((len(x) - 2 * half,) + x.shape[1:], dtype=np.float64)
    for i, c in enumerate(coeffs):
        out += c * x[i : i + len(out)]
    t = np.arange(window, dtype=np.float64)
    fit = np.linalg.pinv(np.vander(t, polyorder + 1, increasing=True))  # (order+1, window)
    flat = x.reshape(len(x), -1)
    head = np.vander(t[:half], polyorder + 1, increasing=True) @ (fit @ flat[:window])
    tail = np.vander(t[-half:], polyorder + 1, increasing=True) @ (fit @ flat[-window:])
    shape = (half,) + x.shape[1:]
    return np.concatenate([head.reshape(shape), out, tail.reshape(shape)], axis=0)


def smooth_signal(x: np.ndarray, fps: float, median_seconds: float, window_seconds: float, polyorder: int) -> np.ndarray:
    if median_seconds > 0:
        x = running_median(x, _odd_frames(median_seconds, fps))
    if window_seconds > 0:
        x = savgol(x, _odd_frames(window_seconds, fps), polyorder)
    return x


def smooth_quaternions(q: np.ndarray, fps: float, preset: SmoothingPreset) -> np.ndarray:
    """Smooth (F, ..., 4) quaternions over time; the result is unit-norm and sign-continuous."""
    q = quat_continuous(q, axis=0)
    out = smooth_signal(q, fps, preset.median_seconds, preset.window_seconds, preset.polyorder)
    return quat_continuous(quat_normalize(out), axis=0)


def smooth_motion(motion: Motion, preset: SmoothingPreset) -> Motion:
    if preset.window_seconds <= 0 and preset.median_seconds <= 0 or motion.num_frames < 3:
        return motion
    rotations = smooth_quaternions(motion.rotations, motion.fps, preset)
    root = smooth_signal(motion.root_translation, motion.fps, preset.median_seconds,
                         preset.root_window_seconds, preset.polyorder)
    smoothed = motion.with_rotations(rotations, root)
    smoothed.provenance = {**motion.provenance, "smoothing": preset.name}
    return smoothed
