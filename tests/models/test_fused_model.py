"""The fused model (MediaPipe's 3D averaged with the shipped MixSTE's) against both of its parts, on a rendered
clip with exact 3D ground truth: it is better than either (their depth errors are largely independent)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import require_shared
from mocap_cli.core.skeleton import JOINT_INDEX
from mocap_cli.pipeline import RunOptions, run_clip

LIMBS = [
    JOINT_INDEX[f"{s}_{p}"] for s in ("left", "right") for p in ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
]


def _pa_mpjpe(ours: np.ndarray, truth: np.ndarray) -> float:
    """Mean limb joint error (metres) after a per-frame similarity alignment."""
    errors = []
    for a, b in zip(ours[:, LIMBS], truth[:, LIMBS]):
        a0, b0 = a - a.mean(0), b - b.mean(0)
        u, sig, vt = np.linalg.svd(a0.T @ b0)
        fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
        rot = (u @ fix @ vt).T
        scale = (sig * np.diag(fix)).sum() / (a0**2).sum()
        errors.append(np.linalg.norm(scale * a0 @ rot.T - b0, axis=-1).mean())
    return float(np.mean(errors))


@pytest.mark.slow
@pytest.mark.parametrize("clip", ["jump_13_11", "walk_16_32"])
def test_the_average_of_two_depth_readings_beats_each(tmp_path: Path, clip: str) -> None:
    """Measured (light smoothing, foot locking; PA-MPJPE mm): jump_13_11 mediapipe 51.9, mixste 39.4, fused 36.0;
    walk_16_32 48.8 / 52.2 / 42.1."""
    folder = require_shared("data", "synthetic", clip)
    truth = np.load(folder / "gt.npz")["smpl24"]
    errors = {}
    for model in ("mediapipe", "mixste", "fused"):
        result = run_clip(folder / "video.mp4", RunOptions(exports=(tmp_path / f"{model}.npz",), model=model))
        errors[model] = _pa_mpjpe(result.motion.joints, truth)
        if model == "fused":
            assert result.motion.provenance["lifter"] == "mixste"
    assert errors["fused"] < 0.97 * min(errors["mediapipe"], errors["mixste"]), errors
