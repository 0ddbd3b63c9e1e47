"""The map from MediaPipe's reading of a hand back to its finger pose (solve/finger_reading.py)."""

from __future__ import annotations

import numpy as np
import pytest

from mocap_cli.core.rotations import quat_from_rotvec, quat_to_rotvec
from mocap_cli.solve import hand_ik
from mocap_cli.solve.finger_reading import (
    FLEXION,
    NUM_INPUTS,
    NUM_OUTPUTS,
    THUMB_MIRROR,
    FingerReading,
    fit_finger_reading,
    load_finger_reading,
    quadratic_features,
    reading_inputs,
)

LIMITS = np.radians([hand_ik._KNUCKLE_FLEX, *hand_ik._JOINT_FLEX] * 4)
CAPS = np.radians(hand_ik._THUMB_SWING)
BIG = np.full(50, 150.0)  # hand heights (pixels), inside the fitted range
THUMB_AXIS = np.array([0.3, 0.1, 0.95]) / np.linalg.norm([0.3, 0.1, 0.95])


def _facing(n: int, seed: int, inside: float = 0.0) -> np.ndarray:
    """(n, 3) unit palm normals, from side-on (-1, 0, 0) to palm-on (0, 0, -1) as the renders' views, kept
    ``inside`` radians from both ends (the fitted range ends at the 95th percentile: > 0 stays inside it)."""
    a = np.random.default_rng(seed).uniform(-np.pi / 2 + inside, -inside, n)
    return np.stack([np.sin(a), np.zeros(n), -np.cos(a)], axis=1)


def _hands(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """True finger angles (n, 4, 4) radians, each joint anywhere from straight to a fist's bend, abduction ±10°,
    and thumb flexions (n, 3) radians about ``THUMB_AXIS``."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 4, 4))
    out[:, :, 0] = np.radians(85) * rng.uniform(0, 1, (n, 4))
    out[:, :, 1] = np.radians(rng.uniform(-10, 10, (n, 4)))
    out[:, :, 2] = np.radians(100) * rng.uniform(0, 1, (n, 4))
    out[:, :, 3] = np.radians(60) * rng.uniform(0, 1, (n, 4))
    return out, np.radians(rng.uniform(0, 45, (n, 3)))


def _misread(angles: np.ndarray, thumb: np.ndarray, facing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A reading that splits a knuckle's bend into the middle joint, reads strong curls short, worse palm-on than
    from the side, and reads the thumb half open, as MediaPipe's landmarks do (stop-22/27 notes): knuckle
    0.31-0.57 × (by the facing's x), middle joint + 0.5 × the knuckle, end joint 0.8 ×, thumb 0.5 ×. Returns the
    read angles and the read thumb rotations (n, 3, 4) of a left hand."""
    read = angles.copy()
    read[:, :, 0] = angles[:, :, 0] / (2.5 - 0.75 * facing[:, :1])
    read[:, :, 2] = angles[:, :, 2] * 0.7 + 0.5 * angles[:, :, 0]
    read[:, :, 3] = 0.8 * angles[:, :, 3]
    return read, quat_from_rotvec(0.5 * thumb[..., None] * THUMB_AXIS)


def _fit(angles, thumb, facing, ridge: float, shown_facing: np.ndarray | None = None) -> FingerReading:
    """The map fitted on hands misread at ``facing``; the fit is shown ``shown_facing`` (default: the same)."""
    read, read_thumb = _misread(angles, thumb, facing)
    inputs = reading_inputs(read, facing if shown_facing is None else shown_facing, read_thumb, "left")
    residuals = np.concatenate(
        [
            (angles[:, :, FLEXION] - read[:, :, FLEXION]).reshape(len(read), -1),
            (thumb[..., None] * THUMB_AXIS).reshape(len(read), -1) - inputs[:, 19:],
        ],
        axis=1,
    )
    return fit_finger_reading(inputs, residuals, LIMITS, CAPS, ridge, min_size=100.0)


def test_a_steady_misreading_is_learned_from_examples_and_undone_on_new_hands() -> None:
    reading = _fit(*_hands(600, 0), _facing(600, 0), ridge=1e-12)
    (new, new_thumb), facing = _hands(50, 1), _facing(50, 1, inside=0.2)
    read, read_thumb = _misread(new, new_thumb, facing)
    angles, thumb = reading.correct(read, facing, read_thumb, "left", BIG)
    assert np.degrees(np.abs(read[:, :, FLEXION] - new[:, :, FLEXION])).mean() > 10.0
    assert np.degrees(np.abs(angles[:, :, FLEXION] - new[:, :, FLEXION])).max() < 0.01
    assert np.degrees(np.abs(quat_to_rotvec(thumb) - new_thumb[..., None] * THUMB_AXIS)).max() < 0.01
    # Abduction is read as it is.
    assert np.array_equal(angles[:, :, 1], read[:, :, 1])
    # The right hand is the mirror image: its mirrored reading comes back as the mirrored truth.
    right_thumb = quat_from_rotvec(quat_to_rotvec(read_thumb) * THUMB_MIRROR)
    _, mirrored = reading.correct(read, facing, right_thumb, "right", BIG)
    assert np.allclose(quat_to_rotvec(mirrored) * THUMB_MIRROR, quat_to_rotvec(thumb), atol=1e-9)


def test_the_view_carries_information_the_angles_alone_do_not() -> None:
    (angles, thumb), facing = _hands(600, 0), _facing(600, 0)
    (new, new_thumb), new_facing = _hands(50, 1), _facing(50, 1, inside=0.2)
    read, read_thumb = _misread(new, new_thumb, new_facing)
    seeing = _fit(angles, thumb, facing, 1e-12)
    blind = _fit(angles, thumb, facing, 1e-12, shown_facing=0 * facing)  # every hand shown as facing nowhere
    seeing_err = np.abs(seeing.correct(read, new_facing, read_thumb, "left", BIG)[0] - new)[:, :, 0].mean()
    blind_err = np.abs(blind.correct(read, 0 * new_facing, read_thumb, "left", BIG)[0] - new)[:, :, 0].mean()
    assert np.degrees(blind_err) > 1.0 > 100 * np.degrees(seeing_err)


def test_hands_outside_the_fitted_views_and_sizes_keep_their_reading() -> None:
    """Fitted on palms from side-on to facing the camera (z <= 0) and hands of 100 px or more: a palm turned
    away from the camera, or a small hand, is read as it is; half-way along the ramps, half corrected."""
    (angles, thumb), facing = _hands(300, 0), _facing(300, 0)
    reading = _fit(angles, thumb, facing, 1e-12)
    assert reading.max_facing[1] == pytest.approx(np.quantile(facing[:, 2], 0.95)) and reading.min_size == 100.0
    (new, new_thumb), new_facing = _hands(50, 1), _facing(50, 1, inside=0.2)
    read, read_thumb = _misread(new, new_thumb, new_facing)
    away = new_facing * [1.0, 1.0, -1.0] + [0.0, 0.0, 0.5]  # palms turned away from the camera
    for faces, size, share in ((away, BIG, 0.0), (new_facing, BIG * 0 + 60.0, 0.0), (new_facing, BIG * 0 + 85.0, 0.5)):
        trust = reading.trust(faces, size)
        out, _ = reading.correct(read, faces, read_thumb, "left", size)
        if share == 0.0:
            assert np.all(trust == 0.0) and np.array_equal(out, read)
        else:
            assert np.allclose(trust, share)
    assert np.all(reading.trust(new_facing, BIG) == 1.0)
    assert reading.trust(new_facing[:1], np.array([np.nan]))[0] == 0.0


def test_corrected_angles_stay_in_the_anatomical_ranges() -> None:
    weights = np.zeros((quadratic_features(np.zeros((1, NUM_INPUTS))).shape[1], NUM_OUTPUTS))
    weights[0] = np.radians(400.0)  # a map that would bend every joint far past its range
    reading = FingerReading(weights, LIMITS, CAPS, np.ones(2), 100.0)
    (angles, thumb), facing = _hands(5, 2), _facing(5, 2)
    read, read_thumb = _misread(angles, thumb, facing)
    out, out_thumb = reading.correct(read, facing, read_thumb, "left", BIG[:5])
    assert np.allclose(out[:, :, FLEXION].reshape(5, -1), LIMITS[:, 1])
    assert np.allclose(np.linalg.norm(quat_to_rotvec(out_thumb), axis=-1), CAPS)
    empty = reading.correct(np.zeros((0, 4, 4)), np.zeros((0, 3)), np.zeros((0, 3, 4)), "left", np.zeros(0))
    assert empty[0].shape == (0, 4, 4) and empty[1].shape == (0, 3, 4)


def test_the_shipped_map_loads_with_the_readings_ranges() -> None:
    reading = load_finger_reading()
    assert reading.weights.shape == (1 + NUM_INPUTS + NUM_INPUTS * (NUM_INPUTS + 1) // 2, NUM_OUTPUTS)
    assert np.all(np.isfinite(reading.weights))
    assert np.allclose(reading.limits, LIMITS, atol=1e-6) and np.allclose(reading.thumb_caps, CAPS, atol=1e-6)
    assert reading.min_size >= 50.0 and np.all(reading.max_facing <= 0.5)


@pytest.mark.parametrize("ridge", [1e-3, 1e-1])
def test_the_penalty_shrinks_the_map_toward_the_reading(ridge: float) -> None:
    (angles, thumb), facing = _hands(200, 3), _facing(200, 3)
    small, large = _fit(angles, thumb, facing, ridge), _fit(angles, thumb, facing, ridge * 100)
    assert np.linalg.norm(large.weights[1:]) < np.linalg.norm(small.weights[1:])
