"""Training bodies (``training.proportions``): CMU motion re-proportioned onto sampled Anny bodies and moved to
anatomical joint definitions, checked against the rendered clips' exact joints (another body performing the
same CMU trial) and against the sampled bodies themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import cmu_behind_rendered_clip, unpack_cmu
from mocap_cli.capture.keypoints import H36M
from mocap_cli.core.alignment import procrustes_errors
from mocap_cli.training import cmu
from mocap_cli.training.mediapipe_noise import MediaPipeNoise
from mocap_cli.training.mixste import CameraRanges, make_windows
from mocap_cli.training.proportions import SEGMENTS, Bodies, redefine, reproportion, segment_lengths

LIMBS = [H36M[f"{s}_{p}"] for s in ("left", "right") for p in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")]


@pytest.fixture(scope="module")
def cmu_root(tmp_path_factory) -> Path:
    return unpack_cmu(tmp_path_factory.mktemp("cmu"), ("02", "10"))


def _procrustes_mm(ours: np.ndarray, truth: np.ndarray) -> float:
    return 1000 * float(procrustes_errors(ours[:, LIMBS], truth[:, LIMBS]).mean())


def test_sampled_bodies_are_adults_of_varied_proportions():
    bodies = Bodies.load()
    lengths = {f"{a}-{b}": bodies.lengths[:, i] for i, (a, b) in enumerate(SEGMENTS)}
    assert len(bodies.lengths) >= 32
    for side in ("hip-{}_knee", "elbow-{}_wrist"):
        left, right = "left_" + side.format("left"), "right_" + side.format("right")
        assert np.allclose(lengths[left], lengths[right], atol=1e-3)  # a symmetric body model
    thigh, upper_arm = lengths["left_hip-left_knee"], lengths["left_shoulder-left_elbow"]
    assert 0.25 < thigh.min() and thigh.max() < 0.55 and np.ptp(thigh) > 0.08  # short to tall adults
    assert 0.2 < upper_arm.min() and upper_arm.max() < 0.4
    hip_width = 2 * lengths["pelvis-left_hip"]
    assert 0.15 < hip_width.min() and hip_width.max() < 0.3


def test_reproportion_keeps_every_direction_and_takes_the_bodys_lengths(cmu_root):
    joints = cmu.load_trial(cmu_root / "02" / "02_01.amc").joints.astype(np.float64)
    body = Bodies.load().lengths[3]
    moved = reproportion(joints, body)
    assert np.allclose(segment_lengths(moved), body, atol=1e-9)
    assert np.allclose(moved[:, H36M["pelvis"]], joints[:, H36M["pelvis"]])
    for a, b in SEGMENTS:
        u, v = joints[:, H36M[b]] - joints[:, H36M[a]], moved[:, H36M[b]] - moved[:, H36M[a]]
        cos = (u * v).sum(-1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
        assert cos.min() > 1 - 1e-9


def test_cmu_joints_become_the_rendered_bodys_joints(cmu_root):
    """kick_10_05 is CMU trial 10_05 performed by an Anny body: CMU's joints, re-proportioned onto that body's
    lengths and moved by the fitted definition offsets, land on its exact joints (a perfect lifter's floor)."""
    ours, truth = cmu_behind_rendered_clip(cmu_root, "kick_10_05")
    n = min(len(ours), len(truth))
    ours, truth = ours[:n].astype(np.float64), truth[:n]
    proportioned = reproportion(ours, segment_lengths(truth).mean(0))
    anatomical = redefine(proportioned, Bodies.load().offsets)
    before, middle, after = (_procrustes_mm(x, truth) for x in (ours, proportioned, anatomical))
    assert before > 45 and middle < 0.8 * before and after < 15, (before, middle, after)
    # The shoulders are where the body's are relative to the pelvis, not only after a per-frame fit.
    shoulders = [H36M["left_shoulder"], H36M["right_shoulder"]]

    def shoulder_miss(x: np.ndarray) -> float:
        offset = (x - x[:, :1])[:, shoulders] - (truth - truth[:, :1])[:, shoulders]
        return float(np.linalg.norm(offset, axis=-1).mean())

    assert shoulder_miss(anatomical) < 0.04 and shoulder_miss(anatomical) < 0.35 * shoulder_miss(proportioned)


def test_training_windows_are_performed_by_the_sampled_bodies(cmu_root):
    trials = [cmu.load_trial(cmu_root / "02" / "02_01.amc")]
    bodies = Bodies.load()
    _, targets = make_windows(
        np.random.default_rng(5), trials, 12, 27, MediaPipeNoise.load(), CameraRanges(), pad_prob=0.0, bodies=bodies
    )
    shin = np.linalg.norm(targets[:, :, H36M["left_ankle"]] - targets[:, :, H36M["left_knee"]], axis=-1)
    assert shin.std(axis=1).max() < 1e-4  # one body per window
    column = [a + "-" + b for a, b in SEGMENTS].index("left_knee-left_ankle")
    assert np.abs(shin[:, :1] - bodies.lengths[None, :, column]).min(axis=1).max() < 1e-4
    assert len(np.unique(np.round(shin[:, 0], 4))) > 6  # many bodies, not one
