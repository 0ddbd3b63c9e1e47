"""The preview decodes the clip straight to its camera panel's size in BGR (ffmpeg scales and converts): the same
frames, times and drawing as decoding full size in RGB and resizing in Python, which it replaced for speed."""

from __future__ import annotations

import cv2
import numpy as np

from conftest import require_shared
from helpers import real_motion
from mocap_cli.capture.video import iter_frames, probe
from mocap_cli.preview.render import Layout, PreviewInputs, PreviewPainter
from mocap_cli.solve.camera import Pinhole
from mocap_cli.solve.camera_pose import CameraPose, SolvedCamera

CLIP = "jump_13_11"
FRAMES = 30


def test_scaled_bgr_frames_match_the_rgb_frames_resized():
    video = require_shared("data", "synthetic", CLIP, "video.mp4")
    info = probe(video)
    size = (info.width // 2, info.height // 2)
    full = list(iter_frames(video, info=info))
    small = list(iter_frames(video, info=info, size=size, pixel_format="bgr24"))
    assert [f.index for f in small] == [f.index for f in full]
    assert [f.time for f in small] == [f.time for f in full]
    for a, b in zip(full[::10], small[::10]):
        assert b.image.shape == (size[1], size[0], 3)
        resized = cv2.resize(a.image, size, interpolation=cv2.INTER_AREA)[..., ::-1]
        diff = np.abs(resized.astype(int) - b.image.astype(int))
        assert diff.mean() < 2.0 and np.percentile(diff, 99) < 8, (diff.mean(), np.percentile(diff, 99))


def test_trimmed_scaled_decode_keeps_the_window():
    video = require_shared("data", "synthetic", CLIP, "video.mp4")
    info = probe(video)
    start, end = 0.5, 1.0
    full = [f.index for f in iter_frames(video, info=info, start=start, end=end)]
    small = [
        f.index for f in iter_frames(video, info=info, start=start, end=end, size=(320, 240), pixel_format="bgr24")
    ]
    assert small == full and len(full) > 5


def test_panel_frames_are_painted_like_rgb_frames():
    """A 640x480 clip's panel is the frame itself: the BGR decode painted by ``paint_panel`` is the RGB decode
    painted by ``paint``, pixel for pixel, with the same joint positions."""
    gt = np.load(require_shared("data", "synthetic", CLIP, "gt.npz"))
    video = require_shared("data", "synthetic", CLIP, "video.mp4")
    motion = real_motion(CLIP, frames=FRAMES)
    k, r, t = gt["K"].astype(float), gt["R"][0].astype(float), gt["t"][0].astype(float)
    camera = SolvedCamera(Pinhole(k[0, 0], k[0, 2], k[1, 2]), CameraPose(r.T, -r.T @ t))
    detected = np.ones(FRAMES, bool)
    inputs = PreviewInputs(motion, camera, None, np.full(FRAMES, 0.9), detected, np.arange(FRAMES) / motion.fps)
    info = probe(video)
    panel = Layout.for_source(info.width, info.height).camera
    assert panel == (info.width, info.height)
    painter = PreviewPainter(inputs, (info.width, info.height))
    rgb = iter_frames(video, info=info)
    bgr = iter_frames(video, info=info, size=panel, pixel_format="bgr24")
    for i, (a, b) in zip(range(FRAMES), zip(rgb, bgr)):
        want, got = painter.paint(i, a.image), painter.paint_panel(i, b.image)
        np.testing.assert_array_equal(got.joints, want.joints)
        assert np.array_equal(got.image, want.image), i
