"""Smoothing on real motion: less jitter, no lost accuracy, unit quaternions without sign flips."""

import numpy as np
import pytest

from helpers import real_motion
from mocap_cli.core.rotations import quat_from_rotvec, quat_mul
from mocap_cli.errors import MocapError
from mocap_cli.post.smoothing import load_smoothing_preset, running_median, savgol, smooth_motion


def _accel(x: np.ndarray) -> float:
    return float(np.mean(np.linalg.norm(x[2:] - 2 * x[1:-1] + x[:-2], axis=-1)))


@pytest.fixture(scope="module")
def clean():
    return real_motion("jumpingjacks_14_06", frames=150)


def _noisy(motion, seed=0):
    rng = np.random.default_rng(seed)
    jitter = quat_from_rotvec(rng.normal(size=motion.rotations.shape[:2] + (3,)) * np.radians(4))
    rotations = quat_mul(motion.rotations, jitter)
    rotations *= np.where(rng.random(rotations.shape[:2] + (1,)) < 0.3, -1.0, 1.0)  # random sign flips
    root = motion.root_translation + rng.normal(size=motion.root_translation.shape) * 0.01
    return motion.with_rotations(rotations, root)


@pytest.mark.parametrize("preset", ["light", "strong"])
def test_smoothing_reduces_jitter_and_error(clean, preset):
    noisy = _noisy(clean)
    smooth = smooth_motion(noisy, load_smoothing_preset(preset))
    err_noisy = np.linalg.norm(noisy.joints - clean.joints, axis=-1).mean()
    err_smooth = np.linalg.norm(smooth.joints - clean.joints, axis=-1).mean()
    # The light default must not cost accuracy on fast moves; strong trades some for steadiness.
    assert err_smooth < (0.7 if preset == "light" else 1.0) * err_noisy
    assert _accel(smooth.joints) < 0.3 * _accel(noisy.joints)
    assert np.allclose(np.linalg.norm(smooth.rotations, axis=-1), 1.0)
    assert np.all(np.sum(smooth.rotations[1:] * smooth.rotations[:-1], axis=-1) > 0)  # no sign flips
    assert smooth.provenance["smoothing"] == preset


def test_none_preset_is_identity(clean):
    assert smooth_motion(clean, load_smoothing_preset("none")) is clean


def test_savgol_keeps_polynomials():
    t = np.linspace(-1, 1, 41)
    x = np.stack([3 * t**2 - t + 1, t], axis=1)
    assert np.allclose(savgol(x, 9, 2), x, atol=1e-12)


def test_unknown_preset_names_the_choices():
    with pytest.raises(MocapError, match="light"):
        load_smoothing_preset("wobbly")


def _polyfit_savgol(x: np.ndarray, window: int, order: int) -> np.ndarray:
    """Reference Savitzky–Golay: a least-squares polynomial per window (numpy.polyfit), evaluated at the
    window's centre; the first/last half-windows evaluate the first/last window's polynomial."""
    half, n = window // 2, len(x)
    out = np.empty_like(x)
    t = np.arange(window, dtype=np.float64)
    for i in range(n):
        start = min(max(i - half, 0), n - window)
        fit = np.polyfit(t, x[start : start + window], order)
        out[i] = np.vander([i - start], order + 1) @ fit
    return out


def _padded_median(x: np.ndarray, window: int) -> np.ndarray:
    half = window // 2
    padded = np.concatenate([np.repeat(x[:1], half, 0), x, np.repeat(x[-1:], half, 0)])
    return np.stack([np.median(padded[i : i + window], axis=0) for i in range(len(x))])


@pytest.mark.parametrize("window", [3, 5, 9, 15])
def test_savgol_and_median_match_reference_fits_on_real_motion(clean, window):
    x = clean.root_translation  # (F, 3), real CMU motion through IK
    np.testing.assert_allclose(savgol(x, window, 2), _polyfit_savgol(x, window, 2), atol=1e-9)
    if window > 5:
        np.testing.assert_allclose(savgol(x, window, 3), _polyfit_savgol(x, window, 3), atol=1e-9)
    q = clean.rotations.reshape(len(x), -1)
    np.testing.assert_allclose(running_median(q, window), _padded_median(q, window), atol=0)
    # Shorter clips than the window: the window shrinks to the clip (odd), or the clip comes back unchanged.
    np.testing.assert_allclose(savgol(x[:6], window, 2), _polyfit_savgol(x[:6], min(window, 5), 2), atol=1e-9)
    np.testing.assert_array_equal(savgol(x[:3], window, 2), x[:3])
    np.testing.assert_allclose(running_median(x[:4], window), _padded_median(x[:4], window), atol=0)


def test_nan_spreads_over_the_windows_that_hold_it(clean):
    x = clean.root_translation[:40].copy()
    x[20, 1] = np.nan
    x[1, 0] = np.nan
    med = running_median(x, 5)
    assert np.array_equal(np.isnan(med), np.isnan(_padded_median(x, 5)))
    np.testing.assert_allclose(med, _padded_median(x, 5), atol=0)
    smooth = savgol(x, 9, 2)
    expected = np.zeros(x.shape, dtype=bool)
    expected[16:25, 1] = True  # centred windows holding frame 20
    expected[:6, 0] = True  # frame 1: in the first window (whose polynomial gives frames 0-3) and 4-5's windows
    assert np.array_equal(np.isnan(smooth), expected)
    ok = ~expected
    np.testing.assert_allclose(smooth[ok], savgol(np.where(np.isnan(x), 0, x), 9, 2)[ok], atol=1e-12)
