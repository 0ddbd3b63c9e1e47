"""MediaPipe detection on real clips and on a rendered clip with exact 2D ground truth."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from conftest import require_shared, video
from helpers import child_processes
from mocap_cli.capture.detect import LANDMARK_NAMES, Track2D, detect, detection_rate
from mocap_cli.capture.video import Frame, iter_frames, probe
from mocap_cli.errors import MocapError

LIMBS = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")


def _run(path: Path, **slice_: float) -> Track2D:
    info = probe(path)
    return detect(iter_frames(path, info=info, **slice_), info)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union


def test_street_walk_smoke() -> None:
    path = video("street_walk_5frames.mp4")
    info = probe(path)
    before = child_processes()
    calls: list[int] = []
    track = detect(iter_frames(path, info=info), info, progress=calls.append)
    assert child_processes() == before
    assert calls == [1, 2, 3, 4, 5]
    assert track.num_frames == 5 and track.image_size == (960, 540)
    assert np.array_equal(track.frame_times, info.frame_times) and list(track.frame_indices) == [0, 1, 2, 3, 4]
    assert track.landmarks.shape == (5, 33, 3) and track.world_landmarks.shape == (5, 33, 3)
    assert track.visibility.shape == (5, 33) and track.boxes.shape == (5, 4)
    assert track.detected.all() and track.detection_rate == 1.0 and not track.filled.any()
    assert ((track.visibility >= 0) & (track.visibility <= 1)).all()
    box = track.boxes
    assert (box[:, 0] >= 0).all() and (box[:, 2] <= 960).all() and (box[:, 2] - box[:, 0] > 20).all()
    # World landmarks are metres around the mid-hip point.
    hips = track.world_landmarks[:, [LANDMARK_NAMES.index("left_hip"), LANDMARK_NAMES.index("right_hip")]]
    assert np.abs(hips.mean(axis=1)).max() < 0.05
    height = np.ptp(track.world_landmarks[:, :, 1], axis=1)
    assert ((height > 1.0) & (height < 2.2)).all()  # nose-to-heel extent of an adult


def _limb_errors(track: Track2D, gt: np.lib.npyio.NpzFile, frames: np.ndarray) -> dict[str, float]:
    """Mean 2D error (px) per limb joint over ``frames`` against the rendered clip's exact joints."""
    names = list(gt["joint_names"])
    errors = {}
    for side, full in (("l", "left"), ("r", "right")):
        for limb in LIMBS:
            pred = track.landmark(f"{full}_{limb}")[frames, :2]
            errors[f"{side}_{limb}"] = float(
                np.linalg.norm(pred - gt["joints2d"][frames, names.index(f"{side}_{limb}")], axis=1).mean()
            )
    return errors


def test_synthetic_walk_matches_ground_truth_2d() -> None:
    """Rendered clip with exact 2D joints. BASELINE.md (same MediaPipe model, our own eval) measured detection
    rate 0.876 and a mean 2D error of 2.4 px over these 12 joints (per joint 1.0-4.4 px) on this clip: MediaPipe's
    detector finds the walker (130 px tall, plainly in view) only at frame 18."""
    folder = require_shared("data", "synthetic", "walk_16_32")
    gt = np.load(folder / "gt.npz")
    track = _run(folder / "video.mp4")
    assert track.num_frames == 145 and track.image_size == tuple(gt["image_size"])
    errors = _limb_errors(track, gt, np.flatnonzero(track.detected))
    mean = float(np.mean(list(errors.values())))
    assert mean < 4.0, errors  # baseline 2.4 px
    assert max(errors.values()) < 8.0, errors  # baseline worst joint 4.4 px
    # The opening is tracked backward from after that first detection: every frame has the walker, the first 18
    # as close to the truth as the rest, none of them interpolated.
    assert track.detected.all() and not track.filled.any()
    opening = _limb_errors(track, gt, np.arange(18))
    assert float(np.mean(list(opening.values()))) < 4.0, opening


def test_a_wrong_first_lock_is_tracked_again_from_the_re_detection() -> None:
    """squat_14_06 (rendered, exact 2D joints): MediaPipe's first detection reads the legs at hip height and its
    tracker keeps them there (ankles 100-200 px off) until it loses the person at frame 10 and re-detects
    them correctly. Those opening frames now come from a backward pass started after the re-detection."""
    folder = require_shared("data", "synthetic", "squat_14_06")
    gt = np.load(folder / "gt.npz")
    track = _run(folder / "video.mp4", end=2.0)
    assert track.detected.all()
    opening = _limb_errors(track, gt, np.arange(10))
    later = _limb_errors(track, gt, np.arange(10, track.num_frames))
    assert max(opening["l_ankle"], opening["r_ankle"]) < 20.0, opening
    assert float(np.mean(list(opening.values()))) < 1.5 * float(np.mean(list(later.values()))), (opening, later)


@pytest.fixture(scope="module")
def juggle() -> tuple[Track2D, float]:
    path = video("juggle_park.mp4")
    info = probe(path)
    t0 = time.perf_counter()
    track = detect(iter_frames(path, info=info), info)
    return track, track.num_frames / (time.perf_counter() - t0)


def test_juggle_park_detection_rate(juggle: tuple[Track2D, float]) -> None:
    track, fps = juggle
    print(f"juggle_park: decode+MediaPipe {fps:.1f} frames/s, detection rate {track.detection_rate:.3f}")
    assert track.num_frames == 247
    assert detection_rate(track) >= 0.95
    # One man, static camera: the kept box never jumps between consecutive frames.
    d = np.flatnonzero(track.detected)
    assert all(_iou(track.boxes[a], track.boxes[b]) > 0.5 for a, b in zip(d[:-1], d[1:]) if b == a + 1)


def _blank(frames: Iterator[Frame], ranges: list[range]) -> Iterator[Frame]:
    """The real frames, with some replaced by a black picture (nobody to detect)."""
    for frame in frames:
        if any(frame.index in r for r in ranges):
            frame.image[:] = 0
        yield frame


def test_short_gaps_are_filled_long_gaps_flagged() -> None:
    path = video("juggle_park.mp4")
    info = probe(path)
    short, long = range(30, 36), range(50, 76)  # 0.25 s and 1.08 s at 24 fps
    track = detect(_blank(iter_frames(path, end=4.0, info=info), [short, long]), info)
    assert track.num_frames == 96
    assert not track.detected[list(short) + list(long)].any()
    assert track.filled[list(short)].all() and not track.filled[list(long)].any()
    assert np.isfinite(track.landmarks[list(short)]).all() and np.isnan(track.landmarks[list(long)]).all()
    assert (track.visibility[list(short)] == 0).all()
    # Linear in time between the detections either side of the short gap.
    a, b = short.start - 1, short.stop
    assert track.detected[a] and track.detected[b]
    w = 3 / 7  # frame 32 lies 3 of 7 intervals from frame 29 to frame 36
    assert np.allclose(track.landmarks[32], (1 - w) * track.landmarks[a] + w * track.landmarks[b], atol=1e-3)
    assert track.detected[long.stop :].mean() > 0.9  # picked up again after the long gap


def test_portrait_person_is_upright() -> None:
    track = _run(video("3dpw_courtyard_basketball_portrait.mp4"), end=1.5)
    assert track.image_size == (1080, 1920) and track.num_frames == 18
    assert track.detection_rate >= 0.9
    d = track.detected
    nose_y = track.landmark("nose")[d, 1]
    ankles_y = (track.landmark("left_ankle")[d, 1] + track.landmark("right_ankle")[d, 1]) / 2
    assert (ankles_y - nose_y > 300).all()  # head well above the feet in a 1920-high picture


def test_two_people_one_track() -> None:
    track = _run(video("3dpw_courtyard_two_people_portrait.mp4"))
    d = np.flatnonzero(track.detected)
    assert len(d) >= 30
    assert all(_iou(track.boxes[a], track.boxes[b]) > 0.3 for a, b in zip(d[:-1], d[1:]) if b == a + 1)


def test_no_person_raises() -> None:
    path = video("street_walk_5frames.mp4")
    info = probe(path)
    with pytest.raises(MocapError, match="No person was detected"):
        detect(_blank(iter_frames(path, info=info), [range(0, 5)]), info)
