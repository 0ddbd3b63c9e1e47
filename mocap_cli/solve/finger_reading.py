"""MediaPipe's reading of a hand's fingers, mapped back to the finger pose that produced it.

MediaPipe's hand landmarks put a finger's bend in the wrong joint and read strong curls short: on renders of
our body a knuckle bent 85-100 degrees reads 15-50 and the middle joint takes the rest, a fist reads as less
curled than an 80 % curl at every joint, and a tucked thumb reads open (stop-22/27 notes). Palm-on, with the
fingers curling toward the camera, it reads flatter still. The reading is not a per-joint function (the same
curled finger reads differently when its neighbours point) but it is a steady function of the whole hand's
reading and its view. So what ``hand_ik.finger_angles`` reads (flexion and abduction of the four fingers, the
thumb's three local rotations) and the palm's facing in the camera (``hand_ik.palm_facing``) go through a
small fitted map, quadratic features and ridge regression on the residual, that corrects the four fingers'
flexion angles (knuckle, middle, end) and the thumb's rotations. Abduction keeps its reading; every result is
clamped to the same anatomical ranges the reading uses. The map is fitted by ``scripts/fit_finger_reading.py``
on renders of random finger poses (``scripts/render_finger_poses.py``) that share no frame with the tests'.

The map is trusted only where it was fitted: the renders show hands from palm-on to thumb-side on, so where a
palm faces away from the camera or shows its little-finger side (``palm_facing``'s x or z beyond the fitted
range), or a hand is smaller in the image than the renders' smallest, the correction fades out over
``FACING_RAMP`` / ``SIZE_RAMP`` and the reading is kept as it is (``FingerReading.trust``).

The right hand is read in the left hand's convention (thumb rotation vectors mirrored as ``THUMB_MIRROR``;
finger angles and facings are already side-free), so both hands share one map.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mocap_cli.core.rotations import quat_from_rotvec, quat_to_rotvec

FINGER_READING_FILE = Path(__file__).with_name("mediapipe_fingers.json")
# Flexion (knuckle, middle, end) of each finger: entries (0, 2, 3) of the (knuckle flexion, abduction, middle,
# end) angles ``hand_ik.finger_angles`` gives per finger.
FLEXION = (0, 2, 3)
# A rotation vector of the right hand in the left hand's convention (mirror in x: v -> -M v, M = diag(-1, 1, 1)).
THUMB_MIRROR = np.array([1.0, -1.0, -1.0])
NUM_INPUTS = 16 + 3 + 9
NUM_OUTPUTS = 12 + 9
# The fitted range of facings ends at this quantile of the fitted hands' (a few read the palm mirrored).
FACING_QUANTILE = 0.95
# Beyond the fitted range of facings the correction fades out over this much of the facing's x or z ...
FACING_RAMP = 0.3
# ... and below the smallest fitted hand size over this share of it (hands SIZE_RAMP x smaller get none).
SIZE_RAMP = 0.3


def reading_inputs(angles: np.ndarray, facing: np.ndarray, thumb: np.ndarray, side: str) -> np.ndarray:
    """(N, 28) what the map reads of N hands: finger angles (N, 4, 4) radians, palm facings (N, 3) and thumb
    local rotations (N, 3, 4) of a ``side`` hand, as rotation vectors in the left hand's convention."""
    mirror = THUMB_MIRROR if side == "right" else 1.0
    rotvecs = quat_to_rotvec(thumb) * mirror
    return np.concatenate([angles.reshape(len(angles), -1), facing, rotvecs.reshape(len(angles), -1)], axis=1)


def quadratic_features(inputs: np.ndarray) -> np.ndarray:
    """(N, 1 + 28 + 406) features of ``reading_inputs``: a constant, the inputs and every product of two."""
    i, j = np.triu_indices(inputs.shape[1])
    return np.concatenate([np.ones((len(inputs), 1)), inputs, inputs[:, i] * inputs[:, j]], axis=1)


@dataclass(frozen=True)
class FingerReading:
    """The fitted map: ``weights`` (435, 21) from ``quadratic_features`` to the residuals (truth minus reading)
    of the fingers' flexion (12, radians, fingers × ``FLEXION``) and of the thumb's rotation vectors (9, left
    convention); ``limits`` (12, 2) radians for each flexion angle, ``thumb_caps`` (3,) radians, the largest
    rotation of each thumb joint; ``max_facing`` (2,) the largest x and z of the palm facings (``FACING_QUANTILE``)
    and ``min_size`` the smallest hand height (pixels) it was fitted on."""

    weights: np.ndarray
    limits: np.ndarray
    thumb_caps: np.ndarray
    max_facing: np.ndarray
    min_size: float

    def trust(self, facing: np.ndarray, size_px: np.ndarray) -> np.ndarray:
        """(N,) in [0, 1]: how much of the correction to apply to hands with palm facings (N, 3) and heights
        (N,) pixels: 1 inside the fitted range, fading to 0 outside it (module docstring)."""
        view = np.clip((self.max_facing + FACING_RAMP - facing[:, [0, 2]]) / FACING_RAMP, 0.0, 1.0).min(axis=1)
        size = np.clip((size_px - (1 - SIZE_RAMP) * self.min_size) / (SIZE_RAMP * self.min_size), 0.0, 1.0)
        return view * np.nan_to_num(size)

    def correct(
        self, angles: np.ndarray, facing: np.ndarray, thumb: np.ndarray, side: str, size_px: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``hand_ik.finger_angles``' angles (N, 4, 4) and thumb rotations (N, 3, 4) of a ``side`` hand, with its
        palm facings (N, 3) and heights (N,) pixels → the same two with the fingers' flexion and the thumb
        corrected as far as ``trust`` allows."""
        if len(angles) == 0:
            return angles.copy(), thumb.copy()
        inputs = reading_inputs(angles, facing, thumb, side)
        residual = (quadratic_features(inputs) @ self.weights) * self.trust(facing, size_px)[:, None]
        flex = angles[:, :, FLEXION].reshape(len(angles), -1) + residual[:, :12]
        out = angles.copy()
        out[:, :, FLEXION] = np.clip(flex, self.limits[:, 0], self.limits[:, 1]).reshape(len(angles), 4, 3)
        rotvecs = (inputs[:, 19:] + residual[:, 12:]).reshape(len(angles), 3, 3)
        norm = np.linalg.norm(rotvecs, axis=-1, keepdims=True)
        rotvecs *= np.minimum(1.0, self.thumb_caps[:, None] / np.maximum(norm, 1e-12))
        mirror = THUMB_MIRROR if side == "right" else 1.0
        return out, quat_from_rotvec(rotvecs * mirror)


def fit_finger_reading(
    inputs: np.ndarray,
    residuals: np.ndarray,
    limits: np.ndarray,
    thumb_caps: np.ndarray,
    ridge: float,
    min_size: float,
) -> FingerReading:
    """Least squares with an L2 penalty ``ridge`` (not on the constant) from N hands' ``reading_inputs``
    (N, 28) to their residuals (N, 21): true minus read flexion (12) and thumb rotation vectors (9); the hands
    were ``min_size`` pixels tall or more."""
    x = quadratic_features(inputs)
    penalty = ridge * len(x) * np.eye(x.shape[1])
    penalty[0, 0] = 0.0
    weights = np.linalg.solve(x.T @ x + penalty, x.T @ residuals)
    max_facing = np.quantile(inputs[:, [16, 18]], FACING_QUANTILE, axis=0)
    return FingerReading(
        weights, np.asarray(limits, dtype=np.float64), np.asarray(thumb_caps, dtype=np.float64), max_facing, min_size
    )


def load_finger_reading(path: Path = FINGER_READING_FILE) -> FingerReading:
    data = json.loads(path.read_text())
    arrays = (np.asarray(data[k], dtype=np.float64) for k in ("weights", "limits", "thumb_caps", "max_facing"))
    return FingerReading(*arrays, float(data["min_size"]))


def save_finger_reading(reading: FingerReading, path: Path, about: dict) -> None:
    """Write the map with ``about`` (its provenance and measured errors) as JSON."""
    data = dict(about)
    data["limits"] = np.round(reading.limits, 6).tolist()
    data["thumb_caps"] = np.round(reading.thumb_caps, 6).tolist()
    data["max_facing"] = np.round(reading.max_facing, 4).tolist()
    data["min_size"] = round(float(reading.min_size), 1)
    data["weights"] = [[float(f"{v:.8g}") for v in row] for row in reading.weights]
    path.write_text(json.dumps(data, indent=None, separators=(",", ":")) + "\n")
