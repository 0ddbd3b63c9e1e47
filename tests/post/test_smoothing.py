"""Smoothing on real motion: less jitter, no lost accuracy, unit quaternions without sign flips."""

import numpy as np
import pytest

from helpers import real_motion
from mocap_cli.errors import MocapError
from mocap_cli.core.rotations import quat_from_rotvec, quat_mul
from mocap_cli.post.smoothing import load_smoothing_preset, savgol, smooth_motion


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
