"""A track kept between runs reads back as the same track, background key frames included (the camera-motion
solve gives the same turns), and holds no pickled objects."""

from pathlib import Path

import numpy as np

from conftest import require_shared
from mocap_cli.capture.track_file import detect_cached, load_track, save_track
from mocap_cli.solve.camera import Pinhole
from mocap_cli.solve.camera_motion import camera_motion_from_pairs


def test_a_saved_track_reads_back_whole(tmp_path: Path) -> None:
    video = require_shared("data", "synthetic", "dance_05_02", "video.mp4")  # an orbiting camera
    track = detect_cached(video, tmp_path / "cache", end=2.0)
    assert track.background and any(len(p.before) for p in track.background)
    saved = tmp_path / "t.npz"
    save_track(track, saved)
    with np.load(saved, allow_pickle=False) as d:  # plain arrays only
        assert all(d[k].dtype != object for k in d.files)
    back = load_track(saved)
    for name in ("landmarks", "visibility", "world_landmarks", "boxes", "frame_times"):
        np.testing.assert_array_equal(getattr(back, name), getattr(track, name))
    assert (back.fps, back.image_size, back.names) == (track.fps, track.image_size, track.names)
    assert len(back.background) == len(track.background)
    camera = Pinhole.from_fov(*track.image_size, 60.0)
    turns = [camera_motion_from_pairs(t.background, t.num_frames, camera).rotations for t in (back, track)]
    np.testing.assert_array_equal(turns[0], turns[1])
    assert np.abs(turns[1][-1] - np.eye(3)).max() > 0.01  # the camera did turn in those 2 s
    # the cache answers the second call from the file
    again = detect_cached(video, tmp_path / "cache", end=2.0)
    np.testing.assert_array_equal(again.landmarks, track.landmarks)
