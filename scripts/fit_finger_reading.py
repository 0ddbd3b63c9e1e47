"""Fit MediaPipe's reading of a hand's fingers → mocap_cli/solve/mediapipe_fingers.json.

usage: python scripts/fit_finger_reading.py DATA.npz [DATA.npz ...] [--out mocap_cli/solve/mediapipe_fingers.json]

DATA: renders of random finger poses and what our hand stage read from them (``scripts/render_finger_poses.py``;
the shipped map: ``--poses 800 --seed 1`` and ``--seed 2``, saved as poses800_seed1.npz and poses800_seed2.npz).
The last ``HELD_OUT`` of each file's poses are left out of the fit and report the error (before the anatomical
clamps); the ridge penalty is the one of ``RIDGES`` with the lowest held-out error. Then the map is refitted on
every pose with that penalty and written with its provenance and errors.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mocap_cli.core.hand_skeleton import with_fingers
from mocap_cli.core.skeleton import canonical_skeleton
from mocap_cli.solve import hand_ik
from mocap_cli.solve.finger_reading import (
    FINGER_READING_FILE,
    FLEXION,
    THUMB_MIRROR,
    fit_finger_reading,
    quadratic_features,
    reading_inputs,
    save_finger_reading,
)

HELD_OUT = 0.2
SIZE_QUANTILE = 0.05
RIDGES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


def _load(paths: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Seen hands' ``reading_inputs`` (N, 28), residuals (N, 21) (true minus read flexion, radians, and thumb
    rotation vectors, left convention), whether each is held out, and the smallest hand size the hand stage
    measured (``HandTrack.size_px``, its ``SIZE_QUANTILE``)."""
    rest = with_fingers(canonical_skeleton()).rest_positions()
    inputs, residuals, held, sizes = [], [], [], []
    for path in paths:
        data = np.load(path)
        n = len(data["read"])
        out = np.arange(n) >= int(round((1 - HELD_OUT) * n))
        sizes.append(data["size_px"][np.isfinite(data["read"][:, :, 0, 0])])
        for s, side in enumerate(("left", "right")):
            seen = np.isfinite(data["read"][:, s, 0, 0])
            read = np.radians(data["read"][seen, s])
            x = reading_inputs(read, data["facing"][seen, s], data["read_thumb"][seen, s], side)
            truth_thumb = np.radians(data["truth_thumb"][seen, s])[:, :, None] * hand_ik.flexion_axis(
                rest, side, "thumb"
            )
            truth_thumb *= THUMB_MIRROR if side == "right" else 1.0
            flex = np.radians(data["truth"][seen, s][:, :, FLEXION]) - read[:, :, FLEXION]
            thumb = truth_thumb.reshape(len(x), -1) - x[:, 19:]
            inputs.append(x)
            residuals.append(np.concatenate([flex.reshape(len(x), -1), thumb], axis=1))
            held.append(out[seen])
    return (
        np.concatenate(inputs),
        np.concatenate(residuals),
        np.concatenate(held),
        float(np.quantile(np.concatenate(sizes), SIZE_QUANTILE)),
    )


def _errors(residuals: np.ndarray) -> tuple[float, float]:
    """Mean |error| degrees of the fingers' flexion angles, and mean angle of the thumb joints' rotation error."""
    thumb = np.linalg.norm(residuals[:, 12:].reshape(len(residuals), 3, 3), axis=-1)
    return float(np.degrees(np.abs(residuals[:, :12])).mean()), float(np.degrees(thumb).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("data", type=Path, nargs="+")
    ap.add_argument("--out", type=Path, default=FINGER_READING_FILE)
    args = ap.parse_args()
    inputs, residuals, held, min_size = _load(args.data)
    limits = hand_ik.flexion_limits()
    caps = np.radians(hand_ik._THUMB_SWING)
    before = _errors(residuals[held])
    scores = {}
    for ridge in RIDGES:
        fitted = fit_finger_reading(inputs[~held], residuals[~held], limits, caps, ridge, min_size)
        scores[ridge] = _errors(residuals[held] - quadratic_features(inputs[held]) @ fitted.weights)
        print(f"ridge {ridge:g}: held-out error fingers {scores[ridge][0]:.1f} deg, thumb {scores[ridge][1]:.1f} deg")
    ridge = min(scores, key=lambda r: sum(scores[r]))
    reading = fit_finger_reading(inputs, residuals, limits, caps, ridge, min_size)
    about = {
        "about": "MediaPipe's reading of a hand's fingers mapped back to their pose "
        "(mocap_cli/solve/finger_reading.py; scripts/fit_finger_reading.py)",
        "data": f"scripts/render_finger_poses.py {[p.name for p in args.data]}: {len(inputs)} seen hands",
        "ridge": ridge,
        "held_out_error_deg": {
            "hands": int(held.sum()),
            "read": [round(v, 1) for v in before],
            "corrected": [round(v, 1) for v in scores[ridge]],
            "columns": ["finger flexion angles, mean |error|", "thumb joint rotations, mean angle"],
        },
    }
    save_finger_reading(reading, args.out, about)
    print(f"wrote {args.out}: ridge {ridge:g}, held-out error {before} -> {scores[ridge]} deg")


if __name__ == "__main__":
    main()
