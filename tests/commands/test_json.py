"""``--json`` on ``mocap run`` and ``mocap batch``: one object on stdout that validates against the shipped schema,
for success and for failure, and the documented exit codes (0 ok, 1 failed, 2 rejected by the argument parser)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import require_shared
from mocap_cli.commands.json_report import schema

jsonschema = pytest.importorskip("jsonschema")


def mocap(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mocap_cli.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        check=False,
    )


def summary(res: subprocess.CompletedProcess, command: str) -> dict:
    """The one JSON object on stdout, validated against the command's schema."""
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stdout
    data = json.loads(lines[0])
    jsonschema.Draft202012Validator(schema(command)).validate(data)
    assert data["exit_code"] == res.returncode
    return data


@pytest.fixture()
def clip(tmp_path) -> Path:
    dst = tmp_path / "jump.mp4"
    shutil.copy(require_shared("data", "synthetic", "jump_13_11", "video.mp4"), dst)
    return dst


def test_schemas_are_valid_json_schemas():
    for command in ("run", "batch"):
        jsonschema.Draft202012Validator.check_schema(schema(command))


def test_run_json_success(clip):
    res = mocap("run", clip.name, "-e", "out.bvh", "-e", "out.npz", "--json", "-q", cwd=clip.parent)
    assert res.returncode == 0, res.stderr
    data = summary(res, "run")
    frames = len(np.load(require_shared("data", "synthetic", "jump_13_11", "gt.npz"))["joints2d"])
    assert data["status"] == "ok" and data["frames"] == data["output_frames"] == frames
    assert data["video_fps"] == data["output_fps"] == 30.0
    assert data["files"] == ["out.bvh", "out.npz"] and all((clip.parent / f).is_file() for f in data["files"])
    assert data["detection_rate"] > 0.95 and data["people"] == 1 and data["model"] == "mediapipe"
    assert set(data["timings"]) == {"decode + detect", "hands", "model", "smoothing", "foot lock", "export"}
    assert "error" not in data


def test_run_json_refused_inputs_exit_1(clip):
    (clip.parent / "out.glb").write_bytes(b"keep me")
    for args, needle in (
        (("missing.mp4", "-e", "x.glb"), "does not exist"),
        ((clip.name, "-e", "out.glb"), "--overwrite"),
        ((clip.name, "-e", "x.glb", "--preview", "p.avi"), ".mp4"),
    ):
        res = mocap("run", *args, "--json", cwd=clip.parent)
        assert res.returncode == 1, (args, res.stderr)
        data = summary(res, "run")
        assert data["status"] == "failed" and needle in data["error"], data
        assert res.stderr.strip().splitlines()[-1].startswith("error: ")
    assert (clip.parent / "out.glb").read_bytes() == b"keep me"
    assert not (clip.parent / "x.glb").exists()


def test_run_json_clip_failure_exits_1(tmp_path):
    (tmp_path / "broken.mp4").write_text("not a video")
    res = mocap("run", "broken.mp4", "-e", "out.glb", "--json", cwd=tmp_path)
    assert res.returncode == 1
    data = summary(res, "run")
    assert data["status"] == "failed" and "not a video" in data["error"]
    assert not (tmp_path / "out.glb").exists()


def test_parser_usage_errors_exit_2(clip):
    for args in (("--no-such-flag",), ("--reference-pose", "b")):
        res = mocap("run", clip.name, "-e", "x.glb", *args, "--json", cwd=clip.parent)
        assert res.returncode == 2 and res.stdout == "", res.stderr
    assert not (clip.parent / "x.glb").exists()


def test_batch_json_one_done_one_failed(clip, tmp_path):
    folder = clip.parent
    (folder / "broken.mp4").write_text("not a video")
    res = mocap(
        "batch",
        str(folder),
        "--out",
        str(tmp_path / "out"),
        "--json",
        "-j",
        "1",
        "-q",
        "-f",
        "bvh",
        "--preview",
        cwd=tmp_path,
    )
    assert res.returncode == 1, res.stderr
    data = summary(res, "batch")
    assert data["status"] == "failed" and data["summary"]["done"] == 1 and data["summary"]["failed"] == 1
    rows = {c["clip"]: c for c in data["clips"]}
    assert rows["jump.mp4"]["status"] == "done" and rows["broken.mp4"]["status"] == "failed"
    assert rows["jump.mp4"]["files"] == ["jump.bvh", "jump.preview.mp4"]
    assert (tmp_path / "out" / "jump.preview.mp4").is_file()
    assert "not a video" in rows["broken.mp4"]["reason"]
    # The preview is one of the clip's outputs: deleting it makes --resume redo the clip.
    (tmp_path / "out" / "jump.preview.mp4").unlink()
    again = summary(
        mocap(
            "batch",
            str(folder),
            "--out",
            str(tmp_path / "out"),
            "--json",
            "-j",
            "1",
            "-q",
            "-f",
            "bvh",
            "--preview",
            "--resume",
            cwd=tmp_path,
        ),
        "batch",
    )
    assert {c["clip"]: c["status"] for c in again["clips"]}["jump.mp4"] == "done"
    assert (tmp_path / "out" / "jump.preview.mp4").is_file()


def test_batch_json_refused_folder_exits_1(tmp_path):
    res = mocap("batch", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"), "--json", cwd=tmp_path)
    assert res.returncode == 1
    data = summary(res, "batch")
    assert data["status"] == "failed" and "does not exist" in data["error"]
