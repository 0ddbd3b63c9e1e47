"""Offline, zero-phase smoothing of a Motion's rotations and root path.

For file export we can look ahead, so the filter is non-causal: a short running median rejects outlier
frames, then a Savitzky–Golay fit (local quadratic) removes jitter while keeping peaks; this combination
was the most accurate of the smoothers compared in research/anchors.md §4 (both filters are scipy's).
Rotations are smoothed as sign-continuous quaternions and renormalised (for the small windows used this
equals smoothing on the rotation manifold to well below a degree). Strength comes from named presets in
``presets/smooth/``,
whose windows are in seconds so they mean the same at every frame rate.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter, maximum_filter1d, median_filter
from scipy.signal import savgol_filter

from mocap_cli.core.motion import Motion
from mocap_cli.core.preset_files import preset_dir
from mocap_cli.core.rotations import quat_continuous, quat_normalize
from mocap_cli.errors import MocapError


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
    n = round(seconds * fps)
    return n + 1 if n % 2 == 0 else n


def running_median(x: np.ndarray, window: int) -> np.ndarray:
    """Median of ``x (F, ...)`` over a centred window along axis 0; beyond the ends the first/last frame
    repeats (scipy's ``mode="nearest"``). Floating dtypes are kept, others become float64 (as ``np.median``);
    a NaN makes every window that holds it NaN."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float64)
    if window < 3 or len(x) < 3:
        return x.copy()
    size = (window,) + (1,) * (x.ndim - 1)
    out = median_filter(x, size=size, mode="nearest")
    missing = np.isnan(x)
    if np.any(missing):  # scipy's selection is undefined with NaNs; keep numpy's propagation
        out[maximum_filter(missing, size=size, mode="nearest")] = np.nan
    return out


def savgol(x: np.ndarray, window: int, polyorder: int) -> np.ndarray:
    """Savitzky–Golay smoothing of ``x (F, ...)`` along axis 0, zero phase. The first and last half-windows
    take the value of the polynomial fitted to the first/last full window (scipy's ``mode="interp"``), so
    the clip's ends are neither pinned nor bent towards a mirror image. The window shrinks to the clip's
    length (kept odd); too short a clip for the polynomial comes back unchanged."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) % 2 == 0:
        window = min(window, len(x) - 1)
    else:
        window = min(window, len(x))
    if window <= polyorder + 1 or window < 3:
        return x.copy()
    bad = ~np.isfinite(x)
    if not np.any(bad):
        return savgol_filter(x, window, polyorder, axis=0, mode="interp")
    # scipy's edge fit refuses non-finite values: filter with them zeroed, then make NaN every output
    # whose window held one (the interior's centred window, or the whole first/last window at the ends).
    out = savgol_filter(np.where(bad, 0.0, x), window, polyorder, axis=0, mode="interp")
    spread = maximum_filter1d(bad, window, axis=0, mode="constant", cval=False)
    half = window // 2
    spread[:half] = bad[:window].any(axis=0)
    spread[-half:] = bad[-window:].any(axis=0)
    out[spread] = np.nan
    return out


def smooth_signal(
    x: np.ndarray, fps: float, median_seconds: float, window_seconds: float, polyorder: int
) -> np.ndarray:
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
    root = smooth_signal(
        motion.root_translation, motion.fps, preset.median_seconds, preset.root_window_seconds, preset.polyorder
    )
    smoothed = motion.with_rotations(rotations, root)
    smoothed.provenance = {**motion.provenance, "smoothing": preset.name}
    return smoothed
