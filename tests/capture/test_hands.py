"""Hand landmarks → finger joint angles against ground truth: the shipped body rendered by Blender with finger
poses we set (tests/hand_render.py), run through the whole pipeline (`mocap run` with --hands auto)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mocap_cli.pipeline import RunOptions, run_clip

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hand_render import POSES, hand_clip, joint_angles, with_tips

HOLD = 4
SETTLE = 1  # frames after each pose change left out (the trackers catch up)


@pytest.mark.slow
@pytest.mark.blender
def test_finger_angles_on_a_render_with_known_poses(tmp_path: Path) -> None:
    pytest.importorskip("bpy")
    clip, scene = hand_clip(tmp_path, [150.0], ["side"], hold=HOLD)
    res = run_clip(clip, RunOptions(exports=(tmp_path / "out.npz",), smooth="none", overwrite=True))
    m = res.motion
    assert m.skeleton.num_joints == 54
    est = with_tips(m.skeleton, m.rotations, m.root_translation)
    truth = joint_angles(m.skeleton, scene["joints"])
    ours = joint_angles(m.skeleton, est)
    rest = joint_angles(m.skeleton, with_tips(m.skeleton, np.tile([0.0, 0, 0, 1], (1, 54, 1)), m.root_translation[:1]))
    seen = m.confidence[:, [24, 39]] > 0.5  # (F, 2)
    assert seen[:, 0].mean() > 0.9  # the left hand (thumb side to the camera) is found in nearly every frame
    lines, errors = [], {}
    for pose in POSES:
        frames = np.flatnonzero(scene["poses"] == pose)[SETTLE:]
        err, base = [], []
        for s in (0, 1):
            f = frames[seen[frames, s]]
            err.append(np.abs(ours[f, 15 * s : 15 * s + 15] - truth[f, 15 * s : 15 * s + 15]))
            base.append(np.abs(rest[0, 15 * s : 15 * s + 15] - truth[f, 15 * s : 15 * s + 15]))
        errors[pose] = float(np.concatenate(err).mean())
        lines.append(
            f"{pose:8s}: mean finger joint angle error {errors[pose]:5.1f} deg "
            f"(rest hand would be {float(np.concatenate(base).mean()):5.1f})"
        )
        if pose in ("fist", "point", "pinch"):  # far from the rest hand: the estimate beats not estimating
            assert errors[pose] < float(np.concatenate(base).mean()), pose
    print("\n" + "\n".join(lines))
    assert errors["relaxed"] <= 15.0 and errors["open"] <= 15.0
    assert errors["pinch"] <= 20.0


def test_frames_between_strided_runs_are_interpolated_only_between_sightings() -> None:
    from mocap_cli.capture.hands import _fill_between, hand_stride

    assert hand_stride(24.0) == 2 and hand_stride(15.0) == 1
    f = 7
    lm = np.full((f, 2, 21, 3), np.nan)
    world = np.full_like(lm, np.nan)
    conf = np.zeros((f, 2))
    hand = np.full((f, 2), np.nan)
    size = np.full((f, 2), np.nan)
    for i, value in ((0, 0.0), (2, 2.0), (4, 4.0)):  # the left hand seen at 0, 2, 4; lost at 6
        lm[i, 0], world[i, 0], conf[i, 0], hand[i, 0], size[i, 0] = value, value, 0.9 - 0.1 * i, 0.8, 10 * value
    _fill_between(2, lm, world, conf, hand, size)
    np.testing.assert_allclose(lm[[1, 3], 0, 0, 0], [1.0, 3.0])
    np.testing.assert_allclose(size[[1, 3], 0], [10.0, 30.0])
    np.testing.assert_allclose(conf[[1, 3], 0], [0.7, 0.5])
    assert conf[5, 0] == 0 and np.isnan(lm[5, 0]).all()  # no sighting after: stays unseen (fades later)
    assert np.all(conf[:, 1] == 0)
