"""`mocap run` on real clips of people: outputs written, frame count and fps as the video, plausible bodies."""

import numpy as np
import pytest

from conftest import video
from mocap_cli.capture.video import probe
from mocap_cli.core.motion import Motion
from mocap_cli.core.skeleton import JOINT_INDEX
from mocap_cli.models.base import ModelSettings
from mocap_cli.pipeline import RunOptions, run_clip

CLIPS = [
    ("juggle_park.mp4", None, 0.95),
    ("taiji_frontal.mp4", 8.0, 0.95),  # first 8 s keep the test short
    ("3dpw_courtyard_basketball_portrait.mp4", None, 0.9),
]


def bone(motion: Motion, a: str, b: str) -> np.ndarray:
    return np.linalg.norm(motion.joints[:, JOINT_INDEX[a]] - motion.joints[:, JOINT_INDEX[b]], axis=-1)


@pytest.mark.slow
@pytest.mark.parametrize("name,end,min_rate", CLIPS, ids=[c[0] for c in CLIPS])
def test_real_clip_end_to_end(tmp_path, name, end, min_rate):
    path = video(name)
    info = probe(path)
    outs = (tmp_path / "out.bvh", tmp_path / "out.glb", tmp_path / "out.npz")
    result = run_clip(path, RunOptions(exports=outs, end=end, settings=ModelSettings()))
    expected = info.frame_count if end is None else int(np.sum(info.frame_times < end - 1e-3))
    assert result.frames == expected
    assert all(p.is_file() and p.stat().st_size > 0 for p in outs)
    assert result.detection_rate >= min_rate

    motion = Motion.load_npz(outs[2])
    assert motion.num_frames == expected
    assert motion.fps == pytest.approx(float(info.fps), rel=1e-9)
    assert motion.provenance["model"] == "mediapipe" and motion.provenance["input"].endswith(name)
    # Adult human bone lengths (metres), the same every frame (a rigid skeleton).
    for (a, b), (lo, hi) in {
        ("left_hip", "left_knee"): (0.30, 0.55),
        ("left_knee", "left_ankle"): (0.30, 0.55),
        ("left_shoulder", "left_elbow"): (0.20, 0.40),
        ("left_elbow", "left_wrist"): (0.18, 0.35),
        ("right_hip", "right_knee"): (0.30, 0.55),
    }.items():
        length = bone(motion, a, b)
        assert lo < length.mean() < hi, (a, b, length.mean())
        assert length.std() < 1e-4
    # Feet on the floor: the lower ankle sits just above height 0 most of the time, never far below it
    # (the handheld portrait clip drifts a little as its camera moves).
    ankles = motion.joints[:, [JOINT_INDEX["left_ankle"], JOINT_INDEX["right_ankle"]], 1].min(axis=1)
    assert 0.0 < np.median(ankles) < 0.2
    assert ankles.min() > -0.15
    # Standing up: the head is above the pelvis in most frames.
    assert np.mean(motion.joints[:, JOINT_INDEX["head"], 1] > motion.joints[:, JOINT_INDEX["pelvis"], 1]) > 0.9
    assert np.all(np.isfinite(motion.rotations)) and np.allclose(np.linalg.norm(motion.rotations, axis=-1), 1)


def test_bundled_example_through_the_cli(tmp_path):
    """The README's first command, minus the install: the bundled clip to GLB and BVH."""
    import subprocess
    import sys

    from conftest import REPO

    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "mocap_cli.cli",
            "run",
            str(REPO / "examples" / "jumping_jacks.mp4"),
            "--export",
            "jj.glb",
            "--export",
            "jj.bvh",
            "--fps",
            "24",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    assert "detection rate" in res.stderr and "100.0%" in res.stderr
    assert "60° (assumed" in res.stderr  # the field of view sets every depth: say so
    text = (tmp_path / "jj.bvh").read_text()
    assert "Frame Time: 0.0416666667" in text
    frames = int(text.split("Frames:")[1].split()[0])
    assert frames == 120  # 150 frames at 30 fps = 4.967 s → 120 frames at 24 fps
