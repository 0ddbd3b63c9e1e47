"""``--preview`` on the rendered synthetic clips: the skeleton as drawn lands on MediaPipe's 2D landmarks, and the
video has the clip's frame count and rate, in a browser-playable H.264 (yuv420p, even sizes)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import require_shared
from mocap_cli import pipeline
from mocap_cli.capture.keypoints import MP
from mocap_cli.capture.video import ffmpeg_executable, iter_frames, probe
from mocap_cli.pipeline import RunOptions, run_clip
from mocap_cli.preview.camera_view import LEFT, RIGHT
from mocap_cli.preview.clip import clip_preview_inputs
from mocap_cli.preview.render import PreviewPainter

# The canonical joints that are MediaPipe landmarks themselves (the trunk, hands and feet are built from several).
LIMB_JOINTS = [
    f"{side}_{part}" for side in ("left", "right") for part in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")
]
# Documented bound (README "Preview"): mean distance of the drawn limb joints from MediaPipe's landmarks on the
# 640×480 synthetic clips, and its 95th percentile.
MEAN_PX = 12.0
P95_PX = 30.0
FAST_CLIP = "jumpingjacks_14_06"


def synthetic_clips() -> list[str]:
    root = require_shared("data", "synthetic")
    return sorted(p.name for p in root.iterdir() if (p / "video.mp4").is_file() and (p / "gt.npz").is_file())


def _clip_params() -> list:
    try:
        names = synthetic_clips()
    except pytest.skip.Exception:
        return [FAST_CLIP]
    return [pytest.param(n, marks=() if n == FAST_CLIP else pytest.mark.slow) for n in names]


@pytest.fixture(scope="module", params=_clip_params())
def previewed(request, tmp_path_factory):
    """One clip through ``run_clip`` with a GLB (anny body when installed) and ``--preview``; the 2D track kept."""
    name = request.param
    video = require_shared("data", "synthetic", name, "video.mp4")
    out = tmp_path_factory.mktemp(name)
    tracks = []
    real = pipeline.decode_and_detect

    def keep_track(*args, **kwargs):
        track = real(*args, **kwargs)
        tracks.append(track)
        return track

    pipeline.decode_and_detect = keep_track
    try:
        result = run_clip(video, RunOptions(exports=(out / "out.glb",), preview=out / "preview.mp4"))
    finally:
        pipeline.decode_and_detect = real
    return name, video, result, tracks[0], out / "preview.mp4"


def pixel_format(path: Path) -> str:
    res = subprocess.run(
        [ffmpeg_executable(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, check=False
    )
    m = re.search(r"Video: h264[^,]*, (\w+)", res.stderr)
    assert m, res.stderr
    return m.group(1)


def test_preview_file_matches_the_clip(previewed):
    name, video, result, track, preview = previewed
    source, made = probe(video), probe(preview)
    gt_frames = len(np.load(require_shared("data", "synthetic", name, "gt.npz"))["joints2d"])
    assert made.frame_count == source.frame_count == track.num_frames == gt_frames
    assert made.fps == source.fps
    assert made.codec == "h264" and pixel_format(preview) == "yuv420p"
    assert made.width % 2 == 0 and made.height % 2 == 0
    assert made.width > source.width and made.height > source.height  # side view and timeline around the frame
    assert preview in result.files and "preview" in result.seconds
    assert not list(preview.parent.glob("*.part"))


def test_drawn_joints_lie_on_mediapipe_landmarks(previewed):
    """Every frame is composed by the preview's own painter; the joint centres it drew (scaled back to the source
    frame) are compared with MediaPipe's landmarks, and the composed image is read at those centres."""
    name, video, result, track, _ = previewed
    inputs = clip_preview_inputs(track, result.motion, mesh="auto", smpl=None, warnings=result.warnings)
    painter = PreviewPainter(inputs, track.image_size)
    names = result.motion.skeleton.names
    joints = [names.index(n) for n in LIMB_JOINTS]
    landmarks = [MP[n] for n in LIMB_JOINTS]
    scale = painter.layout.scale
    errors, colour_checks = [], 0
    for i, frame in enumerate(iter_frames(video)):
        drawn = painter.paint(i, frame.image)
        if not track.detected[i]:
            continue
        at_source = (drawn.joints[joints] + 0.5) / scale - 0.5
        errors.append(np.linalg.norm(at_source - track.landmarks[i, landmarks, :2], axis=-1))
        # The pixel under a confident joint drawn last in its neighbourhood is that joint's (solid) colour.
        for j in joints:
            later = drawn.joints[j + 1 :]
            if result.motion.confidence[i, j] < 0.99 or np.any(np.linalg.norm(later - drawn.joints[j], axis=-1) < 12):
                continue
            x, y = np.rint(drawn.joints[j]).astype(int)
            want = LEFT if names[j].startswith("left_") else RIGHT
            assert np.abs(drawn.image[y, x].astype(int) - want).max() <= 12, (i, names[j], drawn.image[y, x])
            colour_checks += 1
    err = np.concatenate(errors)
    mean, p95 = float(err.mean()), float(np.percentile(err, 95))
    print(f"{name}: drawn limb joints vs MediaPipe: mean {mean:.1f} px, p95 {p95:.1f} px ({len(errors)} frames)")
    assert colour_checks > len(errors)  # several joints checked per frame on average
    assert mean <= MEAN_PX and p95 <= P95_PX, (name, mean, p95)
