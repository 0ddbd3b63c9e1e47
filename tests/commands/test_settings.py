"""One settings object: `mocap run` and `mocap batch` build the same ``RunSettings`` from the same flags, and
settings that cannot work are refused at once (by Typer on the command line, by ``validate()`` for API
callers), without hanging and without writing anything."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from conftest import video
from mocap_cli.cli import app
from mocap_cli.errors import MocapError
from mocap_cli.models.base import ModelSettings
from mocap_cli.pipeline import RunOptions, run_clip
from mocap_cli.settings import DEFAULTS, RunSettings, build_run_options, check_output_fps

WALK = "street_walk_5frames.mp4"  # 5 frames at 5 fps


def mocap(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real command in a child process; a hang fails the test after a minute instead of waiting."""
    return subprocess.run(
        [sys.executable, "-m", "mocap_cli.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=60
    )


def written(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".glb", ".bvh", ".npz", ".fbx") or ".part" in p.name)


def assert_refused_by_typer(res: subprocess.CompletedProcess, flag: str) -> None:
    """Typer's usage error: exit code 2, one sentence naming the flag, no traceback."""
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    text = " ".join(ln.strip(" │╭╮╰╯─") for ln in res.stderr.splitlines())
    assert f"Invalid value for '{flag}'" in text, res.stderr


def assert_one_error_line(res: subprocess.CompletedProcess, *needles: str) -> None:
    """A ``MocapError``: exit code 1, one ``error:`` line on stderr, no traceback."""
    assert res.returncode == 1, (res.returncode, res.stderr)
    assert "Traceback" not in res.stderr + res.stdout
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture()
def clip(tmp_path: Path) -> Path:
    dst = tmp_path / "clip.mp4"
    shutil.copy(video(WALK), dst)
    return dst


# -- the command line --------------------------------------------------------------------------------


@pytest.mark.parametrize("fov", ["0", "-1", "500", "nan"])
def test_run_refuses_an_impossible_field_of_view_at_once(clip: Path, fov: str) -> None:
    res = mocap("run", clip.name, "--fov", fov, "--export", "out.glb", cwd=clip.parent)
    assert_refused_by_typer(res, "--fov")
    assert written(clip.parent) == []


@pytest.mark.parametrize("command", ["run", "batch"])
def test_batch_size_zero_is_refused(clip: Path, command: str) -> None:
    args = [clip.name, "--export", "out.glb"] if command == "run" else [".", "--out", "out"]
    res = mocap(command, *args, "--batch-size", "0", cwd=clip.parent)
    assert_refused_by_typer(res, "--batch-size")
    assert written(clip.parent) == [] and not (clip.parent / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a usable CUDA GPU")
@pytest.mark.parametrize("command", ["run", "batch"])
def test_cuda_without_a_gpu_is_refused_in_one_sentence(clip: Path, command: str) -> None:
    args = [clip.name, "--export", "out.glb"] if command == "run" else [".", "--out", "out"]
    res = mocap(command, *args, "--device", "cuda", cwd=clip.parent)
    assert_one_error_line(res, "--device cuda", "no CUDA GPU", "--device cpu")
    assert written(clip.parent) == [] and not (clip.parent / "out").exists()


@pytest.mark.parametrize("height", ["0", "0.9", "3", "nan", "tall"])
def test_run_refuses_an_impossible_height_at_once(clip: Path, height: str) -> None:
    res = mocap("run", clip.name, "--height", height, "--export", "out.glb", cwd=clip.parent)
    assert_refused_by_typer(res, "--height")
    assert written(clip.parent) == []


def test_a_height_for_a_mesh_model_is_refused_in_one_sentence(clip: Path) -> None:
    res = mocap("run", clip.name, "--model", "maed", "--height", "1.7", "--export", "out.glb", cwd=clip.parent)
    assert_one_error_line(
        res, "--model maed takes the body's size from its SMPL shape", "use mediapipe, fused, mixste or strided."
    )
    assert written(clip.parent) == []


def test_output_rate_far_above_the_source_is_refused_after_probing(clip: Path) -> None:
    res = mocap("run", clip.name, "--fps", "300", "--export", "out.glb", cwd=clip.parent)
    assert_one_error_line(res, "--fps 300", "5 fps", "at most 240")
    assert written(clip.parent) == []


def _captured_settings(args: list[str], monkeypatch: pytest.MonkeyPatch) -> RunSettings:
    """The settings a command hands to the pipeline or the batch engine (which are stubbed to stop there)."""
    import mocap_cli.commands.batch as batch_cmd
    import mocap_cli.pipeline as pipeline

    seen: list[RunSettings] = []

    def fake_run_clip(video: Path, options: RunOptions, reporter: object = None) -> None:
        seen.append(RunSettings.from_run_options(options))
        raise MocapError("stopped before any work")

    def fake_run_batch(options: object, display: object = None) -> None:
        seen.append(options.settings)  # type: ignore[attr-defined]
        raise MocapError("stopped before any work")

    monkeypatch.setattr(pipeline, "run_clip", fake_run_clip)
    monkeypatch.setattr(batch_cmd, "run_batch", fake_run_batch)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "stopped before any work" in result.output, result.output
    assert len(seen) == 1
    return seen[0]


SHARED_FLAGS = [
    "--model",
    "MediaPipe",
    "--weights",
    "variant-x",
    "--smpl",
    "body.pkl",
    "--fps",
    "24",
    "--smooth",
    "strong",
    "--preset",
    "mixamo",
    "--root",
    "in-place",
    "--mesh",
    "none",
    "--device",
    "CPU",
    "--fov",
    "50",
    "--batch-size",
    "8",
    "--height",
    "1.82",
    "--overwrite",
]


@pytest.mark.parametrize("flags", [[], SHARED_FLAGS], ids=["defaults", "every-flag"])
def test_run_and_batch_build_identical_settings_from_identical_flags(
    clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flags: list[str]
) -> None:
    out = tmp_path / "out"
    from_run = _captured_settings(
        ["run", str(clip), "-e", str(out / "a.glb"), "-e", str(out / "a.bvh"), *flags], monkeypatch
    )
    from_batch = _captured_settings(["batch", str(tmp_path), "--out", str(out), "-f", "glb,bvh", *flags], monkeypatch)
    assert from_run == from_batch
    if flags:
        assert from_run == RunSettings(
            model="MediaPipe",
            weights="variant-x",
            smpl=Path("body.pkl"),
            formats=("glb", "bvh"),
            fps=24.0,
            smooth="strong",
            preset="mixamo",
            root="in-place",
            mesh="none",
            device="cpu",
            fov=50.0,
            batch_size=8,
            height=1.82,
            overwrite=True,
        )
    else:
        assert from_run == RunSettings(formats=("glb", "bvh"))


# -- the API (no Typer in front) -----------------------------------------------------------------------


@pytest.mark.parametrize("fov", [0.0, -1.0, 500.0, float("nan"), 180.0])
def test_api_callers_get_the_fov_check_too(clip: Path, fov: float) -> None:
    out = clip.parent / "out.glb"
    with pytest.raises(MocapError, match="--fov must be between 1 and 179 degrees"):
        run_clip(clip, RunOptions(exports=(out,), settings=ModelSettings(fov_degrees=fov)))
    assert written(clip.parent) == []


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"batch_size": 0}, "--batch-size must be a whole number of at least 1"),
        ({"batch_size": 2.5}, "--batch-size must be a whole number"),
        ({"fps": 0.0}, "--fps must be a positive"),
        ({"fps": float("inf")}, "--fps must be a positive"),
        ({"fps": float("nan")}, "--fps must be a positive"),
        ({"start": -1.0}, "--start must be zero or positive"),
        ({"start": 2.0, "end": 1.0}, "--end must be after --start"),
        ({"end": 0.0}, "--end must be positive"),
        ({"device": "tpu"}, "Unknown device 'tpu'"),
        ({"root": "sideways"}, "Unknown root motion mode 'sideways'"),
        ({"mesh": "cube"}, "Unknown body mesh 'cube'"),
        ({"smooth": "silky"}, "Unknown smoothing preset 'silky'"),
        ({"preset": "maya2"}, "Unknown rig preset 'maya2'"),
        ({"model": "nope"}, "Unknown model 'nope'"),
        ({"formats": ("glb", "obj")}, "Unknown export format 'obj'"),
        ({"height": 0.5}, "--height is the performer's standing height in metres, between 1 and 2.5"),
        ({"height": 175.0}, "between 1 and 2.5 \\(e.g. --height 1.75\\), not 175"),
        ({"height": float("nan")}, "--height is the performer's standing height"),
        ({"height": 1.7, "model": "int"}, "--model int takes the body's size from its SMPL shape; leave --height out"),
        ({"height": 1.7, "people": "all"}, "--height is one person's height; leave it out with --people all"),
    ],
)
def test_validate_names_the_bad_setting(changes: dict, message: str) -> None:
    with pytest.raises(MocapError, match=message):
        RunSettings(**changes).validate()


def test_defaults_and_edges_are_valid() -> None:
    DEFAULTS.validate()
    RunSettings(fov=1.0, batch_size=1, fps=0.5, start=0.0, end=0.1).validate()
    RunSettings(fov=179.0).validate()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a usable CUDA GPU")
def test_cuda_is_checked_here_but_not_for_a_cluster() -> None:
    with pytest.raises(MocapError, match="no CUDA GPU"):
        RunSettings(device="cuda").validate()
    RunSettings(device="cuda").validate(check_gpu=False)  # Ray: the GPUs are on the cluster's nodes


def test_output_rate_limit_follows_the_source_rate() -> None:
    check_output_fps(None, 5.0)
    check_output_fps(240.0, 5.0)  # always allowed, whatever the source
    check_output_fps(480.0, 120.0)  # four times the source
    with pytest.raises(MocapError, match="at most 240"):
        check_output_fps(240.5, 5.0)
    with pytest.raises(MocapError, match="at most 480"):
        check_output_fps(481.0, 120.0)


def test_the_pipeline_views_carry_every_setting_back_and_forth() -> None:
    settings = RunSettings(
        model="mediapipe",
        weights="variant-x",
        smpl=Path("body.pkl"),
        formats=("fbx", "npz"),
        start=1.0,
        end=3.5,
        fps=24.0,
        smooth="strong",
        preset="ue5",
        root="none",
        mesh="smpl",
        device="cpu",
        fov=45.0,
        batch_size=4,
        overwrite=True,
        height=1.64,
    )
    options = build_run_options((Path("a.fbx"), Path("a.npz")), settings)
    assert RunSettings.from_run_options(options) == settings
    assert options.settings == ModelSettings(
        device="cpu", fov_degrees=45.0, weights=Path("variant-x"), smpl=Path("body.pkl"), batch_size=4, height=1.64
    )
    assert build_run_options((Path("a.fbx"),), settings, overwrite=False).overwrite is False
    # The views' own defaults are the settings' defaults.
    assert RunSettings.from_run_options(RunOptions(exports=(Path("a.glb"),))) == DEFAULTS
    assert DEFAULTS.model_settings() == ModelSettings()
