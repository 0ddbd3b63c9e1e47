"""Hand landmarks → finger joint angles against ground truth: the shipped body rendered by Blender with finger
poses we set (tests/hand_render.py), run through the whole pipeline (`mocap run` with --hands auto)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import require_shared
from mocap_cli.pipeline import RunOptions, run_clip

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hand_render import hand_clip, pose_errors

HOLD = 6  # frames per pose (at 4, with a frame left out at each end, one hand run per pose remains)
SETTLE = 1  # frames left out at each end of a pose: the render switches poses from one frame to the next, which
# the trackers take a frame to follow and the hand models, run on every second frame, interpolate across

# Mean finger joint angle error allowed per view and pose, degrees (150 px hands): issue 14's target, 15 degrees,
# for every pose seen thumb-side on ("side": fingers bend across the image) and palm-on ("front": fingers curl
# toward the camera, the hardest view). Measured (2026-12-07, smooth-shaded render, with the fitted reading of
# solve/finger_reading.py), relaxed / open / fist / point / pinch: side 4.2 / 3.2 / 7.8 / 5.6 / 6.0, front 5.6 /
# 6.3 / 7.6 / 9.4 / 4.1; without that reading side 4.8 / 2.8 / 28.5 / 11.5 / 8.9, front 9.6 / 8.6 / 40.1 / 31.8 /
# 15.4.
MAX_ERROR = {
    "side": {"relaxed": 7.0, "open": 7.0, "fist": 15.0, "point": 15.0, "pinch": 12.0},
    "front": {"relaxed": 12.0, "open": 12.0, "fist": 15.0, "point": 15.0, "pinch": 15.0},
}


@pytest.mark.slow
@pytest.mark.blender
def test_finger_angles_on_a_render_with_known_poses(tmp_path: Path) -> None:
    pytest.importorskip("bpy")
    clip, scene = hand_clip(tmp_path, [150.0], ["side", "front"], hold=HOLD)
    res = run_clip(clip, RunOptions(exports=(tmp_path / "out.npz",), smooth="none", overwrite=True))
    m = res.motion
    assert m.skeleton.num_joints == 54
    seen = m.confidence[:, [24, 39]] > 0.5  # (F, 2)
    for view in ("side", "front"):
        assert seen[scene["views"] == view, 0].mean() > 0.9, view  # the left hand is found in nearly every frame
    measured = pose_errors(m, scene, SETTLE)
    errors = {key: err for key, (err, _) in measured.items()}
    print(
        "\n"
        + "\n".join(
            f"{view:5s} {pose:8s}: mean finger joint angle error {err:5.1f} deg (rest hand would be {base:5.1f})"
            for (view, pose), (err, base) in measured.items()
        )
    )
    for view in ("side", "front"):
        for pose, limit in MAX_ERROR[view].items():
            assert errors[view, pose] <= limit, (view, pose)


def test_frames_between_strided_runs_are_interpolated_only_between_sightings() -> None:
    from mocap_cli.capture.hands import _fill_between, hand_stride

    assert hand_stride(24.0) == 2 and hand_stride(15.0) == 1 and hand_stride(30.0) == 2
    assert hand_stride(50.0) == 4 and hand_stride(60.0) == 5  # about 12 hand frames/s on high-rate clips
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


@pytest.mark.slow
def test_hands_found_inside_the_pose_pass_equal_a_second_decode() -> None:
    """``run`` feeds the hand models from the pose pass's own decode; on a real clip that gives exactly the
    hands a second decode over the finished track gives, and frames whose pose was not kept lose theirs."""
    from mocap_cli.capture.detect import detect
    from mocap_cli.capture.hands import HandFinder, detect_hands
    from mocap_cli.capture.video import count_frames, iter_frames, probe

    clip = require_shared("data", "videos", "juggle_park.mp4")
    info = probe(clip)
    with HandFinder(float(info.fps), count_frames(info, end=1.5)) as finder:
        track = detect(iter_frames(clip, end=1.5, info=info), info, on_frame=finder.add)
    once = finder.result(track.num_frames, keep=track.detected)
    twice = detect_hands(iter_frames(clip, end=1.5, info=info), track)
    assert once.seen().any(axis=0).all()  # both hands are found in the first 1.5 s
    for name in ("landmarks", "world", "confidence", "handedness", "size_px"):
        np.testing.assert_array_equal(getattr(once, name), getattr(twice, name), err_msg=name)
    dropped = finder.result(track.num_frames, keep=np.zeros(track.num_frames, bool))
    assert not dropped.seen().any() and np.isnan(dropped.landmarks).all()
