"""Following a person by their landmarks (MediaPipe's pose landmark network on a region we place)."""

from __future__ import annotations

import numpy as np
import pytest

from mocap_cli.capture.people import PoseFinder
from mocap_cli.capture.roi_landmarks import Roi, RoiLandmarker, roi_around
from mocap_cli.capture.video import iter_frames, probe
from tests.conftest import video


def _standing(cx: float, cy: float, height: float, angle: float = 0.0) -> np.ndarray:
    """(33, 3) landmarks of a stick body: head at the top, hips in the middle, feet at the bottom, turned by
    ``angle`` radians clockwise in the image about the hips."""
    y = np.linspace(-0.5, 0.5, 33) * height
    x = np.tile([-0.05, 0.05, 0.0], 11) * height
    y[[11, 12]], y[[23, 24]] = -0.3 * height, 0.0
    x[[11, 12]], x[[23, 24]] = (-0.1 * height, 0.1 * height), (-0.05 * height, 0.05 * height)
    c, s = np.cos(angle), np.sin(angle)
    pts = np.stack([cx + c * x - s * y, cy + s * x + c * y, np.zeros(33)], axis=1)
    return pts.astype(np.float32)


def test_the_region_is_centred_on_the_hips_and_turns_the_body_upright():
    upright = roi_around(_standing(500.0, 400.0, 300.0))
    assert (upright.x, upright.y) == pytest.approx((500.0, 400.0), abs=1e-3)
    assert upright.rotation == pytest.approx(0.0, abs=1e-6)
    assert upright.side >= 300.0  # the whole body fits, with room to move
    # A body lying with its head to the left (turned 90° anticlockwise in the image): the region turns with
    # it (MediaPipe's rotations are clockwise) and keeps its size.
    lying = roi_around(_standing(500.0, 400.0, 300.0, angle=-np.pi / 2))
    assert lying.rotation == pytest.approx(-np.pi / 2, abs=1e-6)
    assert lying.side == pytest.approx(upright.side, rel=1e-6)


@pytest.mark.slow
def test_a_person_whose_face_is_hidden_is_followed_where_a_crop_finds_nobody():
    """street_dance_crowd, frames 100-110: the man in grey films with his camera held to his face. A crop around
    him through both networks finds no pose there (the detector needs a face); followed by his landmarks from
    a region placed by hand on frame 100 (box centre (550, 270), 230 px tall), he is found on every frame, a
    body of his size moving steadily."""
    path = video("street_dance_crowd.avi")
    frames = {f.index: f.image for f in iter_frames(path, info=probe(path), end=111 / 50)}
    finder = PoseFinder()
    try:
        near_him = [
            o
            for o in finder.find(frames[110], (405, 128, 755, 478))
            if np.linalg.norm((o.box[:2] + o.box[2:]) / 2 - (585, 305)) < 0.25 * o.height
        ]
    finally:
        finder.close()
    assert near_him == []

    follower = RoiLandmarker()
    try:
        roi, centre = Roi(550.0, 280.0, 340.0, 0.0), np.array([550.0, 270.0])
        for index in range(100, 111):
            obs = follower.find(frames[index], roi)
            assert obs is not None, index
            assert 180 <= obs.height <= 280, (index, obs.height)
            new = (obs.box[:2] + obs.box[2:]) / 2
            assert np.linalg.norm(new - centre) < 0.15 * obs.height, (index, new, centre)
            roi, centre = roi_around(obs.landmarks), new
        # The same frame turned 90° anticlockwise (he now lies with his head to the left): the region turns
        # with him and he is found where he lies.
        turned = np.ascontiguousarray(np.rot90(frames[110]))
        width = frames[110].shape[1]
        lying = obs.landmarks.copy()
        lying[:, 0], lying[:, 1] = obs.landmarks[:, 1], width - 1 - obs.landmarks[:, 0]
        found = follower.find(turned, roi_around(lying))
        assert found is not None
        assert np.abs(found.landmarks[11:, :2] - lying[11:, :2]).mean() < 0.05 * obs.height
    finally:
        follower.close()
