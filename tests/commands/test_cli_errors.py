"""Every bad input gets one sentence on stderr, a non-zero exit code, no traceback and no output file."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import video
from mocap_cli.capture.video import ffmpeg_executable


def mocap(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mocap_cli.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def assert_one_sentence(res: subprocess.CompletedProcess, *needles: str) -> None:
    assert res.returncode != 0
    err = res.stderr.strip()
    assert "Traceback" not in err and "Traceback" not in res.stdout
    lines = [ln for ln in err.splitlines() if ln.strip()]
    # Progress bars of stages that ran may precede it; the error itself is one line, the last.
    assert lines and lines[-1].startswith("error: "), err
    assert all("━" in ln for ln in lines[:-1]), err
    for n in needles:
        assert n in lines[-1], lines[-1]


@pytest.fixture()
def short_clip(tmp_path) -> Path:
    src = video("street_walk_5frames.mp4")
    dst = tmp_path / "clip.mp4"
    shutil.copy(src, dst)
    return dst


def outputs(folder: Path) -> list[str]:
    return sorted(
        p.name for p in folder.iterdir() if p.suffix in (".glb", ".bvh", ".npz", ".fbx", ".part") or ".part" in p.name
    )


def test_missing_file(tmp_path):
    res = mocap("run", "nope.mp4", "--export", "out.glb", cwd=tmp_path)
    assert_one_sentence(res, "nope.mp4", "does not exist")
    assert outputs(tmp_path) == []


@pytest.mark.parametrize("content", [b"this is not a video\n" * 50, b""], ids=["text", "empty"])
def test_not_a_video(tmp_path, content):
    (tmp_path / "fake.mp4").write_bytes(content)
    res = mocap("run", "fake.mp4", "--export", "out.glb", cwd=tmp_path)
    assert_one_sentence(res, "fake.mp4")
    assert outputs(tmp_path) == []


def test_zero_frames_in_range(short_clip):
    res = mocap("run", short_clip.name, "--start", "50", "--export", "out.glb", cwd=short_clip.parent)
    assert_one_sentence(res)
    assert "frame" in res.stderr.lower()
    assert outputs(short_clip.parent) == []


def test_no_person(tmp_path):
    subprocess.run(
        [
            ffmpeg_executable(),
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=10:duration=1",
            "-pix_fmt",
            "yuv420p",
            str(tmp_path / "empty_scene.mp4"),
        ],
        check=True,
    )
    res = mocap("run", "empty_scene.mp4", "--export", "out.glb", cwd=tmp_path)
    assert_one_sentence(res, "No person")
    assert outputs(tmp_path) == []


def test_unknown_model(short_clip):
    res = mocap("run", short_clip.name, "--model", "magic", "--export", "out.glb", cwd=short_clip.parent)
    assert_one_sentence(res, "magic", "mediapipe")
    assert outputs(short_clip.parent) == []


def test_unknown_extension(short_clip):
    res = mocap("run", short_clip.name, "--export", "out.mp3", cwd=short_clip.parent)
    assert_one_sentence(res, ".mp3", ".glb")
    assert outputs(short_clip.parent) == []


def test_unwritable_output_path(short_clip):
    res = mocap("run", short_clip.name, "--export", "missing_dir/out.glb", cwd=short_clip.parent)
    assert_one_sentence(res, "missing_dir")
    assert not (short_clip.parent / "missing_dir").exists()


def test_existing_output_needs_overwrite(short_clip):
    existing = short_clip.parent / "out.glb"
    existing.write_bytes(b"keep me")
    res = mocap("run", short_clip.name, "--export", "out.glb", cwd=short_clip.parent)
    assert_one_sentence(res, "--overwrite")
    assert existing.read_bytes() == b"keep me"


def test_no_export_given(short_clip):
    res = mocap("run", short_clip.name, cwd=short_clip.parent)
    assert_one_sentence(res, "--export")


def test_version_and_models(tmp_path):
    res = mocap("--version", cwd=tmp_path)
    assert res.returncode == 0 and res.stdout.startswith("mocap ")
    res = mocap("models", cwd=tmp_path)
    assert res.returncode == 0 and "mediapipe" in res.stdout
