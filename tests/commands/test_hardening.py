"""Issue 16, defect by defect: every bad input and every failure ends in one sentence, a clean exit (0, 1 or
2) and nothing lost. Each test reproduces a numbered defect of the issue through the real entry point."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from cli_main import assert_one_sentence, run_main, stray_files

from conftest import REPO, video
from helpers import real_motion
from mocap_cli.core.motion import Motion
from mocap_cli.errors import MocapError


@pytest.fixture(scope="module")
def motion_npz(tmp_path_factory) -> Path:
    """A real motion (CMU capture through our IK), saved the way `mocap run --export a.npz` saves it."""
    path = tmp_path_factory.mktemp("motion") / "a.npz"
    real_motion(frames=30).save_npz(path)
    return path


@pytest.fixture()
def clip(tmp_path) -> Path:
    dst = tmp_path / "small.mp4"
    shutil.copy(video("street_walk_5frames.mp4"), dst)
    return dst


def _edited(src: Path, dst: Path, **changes: np.ndarray) -> Path:
    arrays = dict(np.load(src))
    arrays.update(changes)
    np.savez(dst, **arrays)
    return dst


# -- 1. --fov 0 hung forever in numpy's least squares --------------------------------------------------------


def test_1_fov_zero_is_refused_at_once(clip):
    res = subprocess.run(
        [sys.executable, "-m", "mocap_cli.cli", "run", clip.name, "--fov", "0", "--export", "o.glb"],
        cwd=clip.parent,
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert res.returncode == 2 and "--fov" in res.stderr and "Traceback" not in res.stderr
    assert not (clip.parent / "o.glb").exists() and stray_files(clip.parent) == []


def test_1_camera_solve_with_an_infinite_focal_length_returns_instead_of_hanging():
    """The source guard: an infinite focal length (what fov 0 gave) used to spin in LAPACK forever; now it is
    refused, and non-finite frames never reach the solver. Run in a subprocess so a hang fails the test."""
    script = (
        "import numpy as np\n"
        "from mocap_cli.errors import MocapError\n"
        "from mocap_cli.solve.camera import Pinhole, solve_translation\n"
        "pts = np.random.default_rng(0).normal(size=(4, 12, 3)); pts[..., 2] += 4\n"
        "pix = np.random.default_rng(1).uniform(0, 100, size=(4, 12, 2)); w = np.ones((4, 12))\n"
        "try:\n"
        "    solve_translation(pts, pix, w, Pinhole(float('inf'), 50.0, 50.0)); print('solved')\n"
        "except ValueError:\n"
        "    print('refused')\n"
        "pix[1, 0, 0] = np.inf; pts[2, 3, 2] = np.nan\n"
        "out = solve_translation(pts, pix, w, Pinhole(100.0, 50.0, 50.0))\n"
        "print(np.isnan(out[1]).all(), np.isnan(out[2]).all(), np.isfinite(out[[0, 3]]).all())\n"
        "for fov in (0.0, 180.0, float('nan'), -1.0, 1e-9):\n"
        "    try:\n"
        "        Pinhole.from_fov(640, 480, fov); print('accepted', fov)\n"
        "    except MocapError:\n"
        "        pass\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[:2] == ["refused", "True True True"], res.stdout


# -- 2. out-of-range values accepted and turned into nonsense ------------------------------------------------


@pytest.mark.parametrize(
    "flags",
    [
        ["--fov", "-1"],
        ["--fov", "500"],
        ["--fov", "1e-9"],
        ["--fov", "nan"],
        ["--batch-size", "0"],
        ["--batch-size", "-1"],
    ],
    ids=lambda f: " ".join(f),
)
def test_2_out_of_range_options_are_usage_errors(clip, flags):
    res = run_main("run", clip, "--export", clip.parent / "o.glb", *flags)
    assert res.code == 2 and flags[0] in res.text and "Traceback" not in res.text
    assert not (clip.parent / "o.glb").exists()


@pytest.mark.parametrize("command", ["run", "export"])
@pytest.mark.parametrize("fps", ["1e5", "1e9", "inf", "nan", "0"])
def test_2_and_4_absurd_output_rates_are_refused(clip, motion_npz, command, fps):
    source = clip if command == "run" else motion_npz
    res = run_main(command, source, "--export", clip.parent / "o.bvh", "--fps", fps)
    if res.code == 2:  # Typer's own range check (a usage error)
        assert "--fps" in res.err and "Traceback" not in res.text
    else:
        assert_one_sentence(res, "--fps")
    assert not (clip.parent / "o.bvh").exists() and stray_files(clip.parent) == []


def test_2_resampling_refuses_huge_rates_at_the_source():
    from mocap_cli.post.resample import resample_motion

    motion = real_motion(frames=10)
    for fps in (1e9, float("inf"), float("nan"), 0.0, -5.0):
        with pytest.raises(MocapError):
            resample_motion(motion, fps)
    assert resample_motion(motion, 240.0).num_frames == 1 + int(9 / 30 * 240 + 1e-6)


def test_2_cuda_without_a_gpu_is_one_sentence(clip):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    res = run_main("run", clip, "--export", clip.parent / "o.glb", "--device", "cuda")
    assert_one_sentence(res, "--device cuda", "--device cpu")
    assert not (clip.parent / "o.glb").exists()


# -- 3. NaN / inf motion exported silently --------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [
        ("rotations", np.nan),
        ("root_translation", np.inf),
        ("joints", -np.inf),
        ("confidence", np.nan),
        ("offsets", np.nan),
    ],
)
def test_3_non_finite_motion_is_never_written(motion_npz, tmp_path, field, value):
    arrays = np.load(motion_npz)
    bad = np.array(arrays[field], copy=True)
    bad.flat[len(bad.flat) // 2] = value
    src = _edited(motion_npz, tmp_path / "bad.npz", **{field: bad})
    res = run_main("export", src, "--export", tmp_path / "o.bvh", "--export", tmp_path / "o.glb")
    assert_one_sentence(res, "bad.npz", field)
    assert not (tmp_path / "o.bvh").exists() and not (tmp_path / "o.glb").exists()
    assert stray_files(tmp_path) == []


def test_3_every_writer_checks_the_motion_it_is_given(tmp_path):
    from mocap_cli.export import export_motion

    good = real_motion(frames=5)
    bad = Motion(good.fps, good.skeleton, good.rotations * np.nan, good.root_translation, good.joints, good.confidence)
    for ext in (".bvh", ".glb", ".fbx", ".npz"):
        with pytest.raises(MocapError, match="NaN"):
            export_motion(bad, tmp_path / f"o{ext}")
    assert list(tmp_path.iterdir()) == []


# -- 4. raw tracebacks ----------------------------------------------------------------------------------------


def _damaged_npzs(src: Path, folder: Path) -> dict[str, Path]:
    arrays = np.load(src)
    frames0 = {k: arrays[k][:0] for k in ("rotations", "root_translation", "joints", "confidence")}
    parents = np.array(arrays["parents"], copy=True)
    parents[5] = 7
    cyclic = np.array(arrays["parents"], copy=True)
    cyclic[0] = 3
    return {
        "fps 0": _edited(src, folder / "fps0.npz", fps=np.array(0.0)),
        "frame rate": _edited(src, folder / "fpsnan.npz", fps=np.array(np.nan)),
        "shape": _edited(src, folder / "shape.npz", rotations=arrays["rotations"][..., :3]),
        "parent 7": _edited(src, folder / "parents.npz", parents=parents),
        "root": _edited(src, folder / "cyclic.npz", parents=cyclic),
        "no frames": _edited(src, folder / "empty.npz", **frames0),
        "objects": _edited(src, folder / "pickled.npz", rotations=np.array([object()] * 3, dtype=object)),
        "strings": _edited(src, folder / "text.npz", rotations=np.array(["a", "b"])),
        "missing": folder / "missing.npz",
    }


def test_4_damaged_motion_files_get_one_sentence(motion_npz, tmp_path):
    cases = _damaged_npzs(motion_npz, tmp_path)
    np.savez(cases["missing"], **{k: v for k, v in np.load(motion_npz).items() if k != "joints"})
    existing = tmp_path / "keep.glb"
    existing.write_bytes(b"an earlier export")
    for what, src in cases.items():
        res = run_main("export", src, "--export", tmp_path / "o.bvh", "--export", existing, "--overwrite")
        line = assert_one_sentence(res, src.name)
        assert "mocap run" in line, (what, line)
        assert existing.read_bytes() == b"an earlier export" and not (tmp_path / "o.bvh").exists()
    assert stray_files(tmp_path) == []


def test_4_export_into_a_folder_that_takes_no_files(motion_npz):
    res = run_main("export", motion_npz, "--export", "/proc/out.glb")
    assert_one_sentence(res, "/proc")


def test_4_disk_full_while_writing_is_one_sentence_and_keeps_the_old_file(motion_npz, tmp_path, monkeypatch):
    from mocap_cli import export as exporters

    existing = tmp_path / "o.glb"
    existing.write_bytes(b"an earlier export")

    def full_disk(motion, path, options):
        path.write_bytes(b"half a fi")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setitem(exporters.WRITERS, ".glb", full_disk)
    res = run_main("export", motion_npz, "--export", existing, "--overwrite")
    line = assert_one_sentence(res, "disk is full", str(existing))
    assert ".part" not in line
    assert existing.read_bytes() == b"an earlier export" and stray_files(tmp_path) == []


def test_4_a_failed_multi_output_export_removes_the_outputs_it_created(motion_npz, tmp_path, monkeypatch):
    from mocap_cli import export as exporters

    def full_disk(motion, path, options):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setitem(exporters.WRITERS, ".glb", full_disk)
    res = run_main("export", motion_npz, "--export", tmp_path / "o.npz", "--export", tmp_path / "o.glb")
    assert_one_sentence(res, "disk is full", "o.glb")
    assert list(tmp_path.iterdir()) == []  # o.npz was written first, then taken back


@pytest.mark.parametrize("code,words", [(errno.EROFS, "read-only"), (errno.EACCES, "Permission denied")])
def test_4_other_os_errors_get_their_own_sentence(motion_npz, tmp_path, monkeypatch, code, words):
    from mocap_cli import export as exporters

    def failing(motion, path, options):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setitem(exporters.WRITERS, ".bvh", failing)
    res = run_main("export", motion_npz, "--export", tmp_path / "o.bvh")
    assert_one_sentence(res, words)
    assert list(tmp_path.iterdir()) == []


def test_4_an_unexpected_failure_is_one_sentence_with_a_crash_log(motion_npz, tmp_path, monkeypatch):
    from mocap_cli import export as exporters

    def buggy(motion, path, options):
        raise ZeroDivisionError("float division by zero")

    monkeypatch.setitem(exporters.WRITERS, ".bvh", buggy)
    home = tmp_path / "home"
    res = run_main("export", motion_npz, "--export", tmp_path / "o.bvh", env={"MOCAP_HOME": str(home)})
    line = assert_one_sentence(res, "ZeroDivisionError", "float division by zero")
    logs = list((home / "logs").glob("crash-*.log"))
    assert len(logs) == 1 and str(logs[0]) in line
    assert "Traceback" in logs[0].read_text() and "def buggy" not in line
    assert not (tmp_path / "o.bvh").exists()

    with pytest.raises(ZeroDivisionError):  # MOCAP_DEBUG=1: the developer gets the traceback
        run_main("export", motion_npz, "--export", tmp_path / "o.bvh", env={"MOCAP_DEBUG": "1"})


# -- 5. no-clobber race -----------------------------------------------------------------------------------------


def test_5_two_simultaneous_exports_to_a_new_file_never_both_succeed(motion_npz, tmp_path, monkeypatch):
    """Both writers pass the "does it exist?" check, then both publish: exactly one wins, the other reports
    one sentence, and the file is the winner's, whole."""
    from mocap_cli import export as exporters
    from mocap_cli.pipeline import export_existing
    from mocap_cli.settings import RunSettings, build_run_options

    reference = tmp_path / "alone" / "new.bvh"  # what one writer alone writes
    reference.parent.mkdir()
    export_existing(motion_npz, build_run_options((reference,), RunSettings(formats=("bvh",))))
    both_written = threading.Barrier(2, timeout=60)
    real_writer = exporters.WRITERS[".bvh"]

    def slow_writer(motion, path, options):
        real_writer(motion, path, options)
        both_written.wait()  # neither publishes before both have checked and written

    monkeypatch.setitem(exporters.WRITERS, ".bvh", slow_writer)
    target = tmp_path / "new.bvh"
    outcomes: list[str] = []

    def one_writer():
        try:
            export_existing(motion_npz, build_run_options((target,), RunSettings(formats=("bvh",))))
            outcomes.append("ok")
        except MocapError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=one_writer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(outcomes) == 2 and outcomes.count("ok") == 1, outcomes
    assert "created by another program" in "".join(o for o in outcomes if o != "ok")
    assert target.read_bytes() == reference.read_bytes()  # one writer's whole file
    assert stray_files(tmp_path) == []


# -- 6. stale partial file of a killed writer -----------------------------------------------------------------


def test_6_run_and_export_sweep_partials_of_killed_writers(motion_npz, tmp_path):
    target = tmp_path / "out.glb"
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from mocap_cli.core.atomic import atomic_path\n"
        "with atomic_path(Path(sys.argv[1])) as tmp:\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(target)],
        capture_output=True,
        timeout=60,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    assert proc.returncode == -9
    assert len(stray_files(tmp_path)) == 1  # the killed writer's 0-byte temp file
    res = run_main("export", motion_npz, "--export", target)
    assert res.code == 0, res.text
    assert target.is_file() and stray_files(tmp_path) == []


# -- 7. misleading messages -------------------------------------------------------------------------------------


def test_7_weights_import_of_random_bytes_or_a_folder(tmp_path):
    junk = tmp_path / "model_best.pth.tar"
    junk.write_bytes(np.random.default_rng(7).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    env = {"MOCAP_HOME": str(tmp_path / "home")}
    line = assert_one_sentence(run_main("weights", "import", "maed", junk, env=env), "not a PyTorch checkpoint")
    assert "safety" not in line
    folder = tmp_path / "downloads"
    folder.mkdir()
    line = assert_one_sentence(run_main("weights", "import", "maed", folder, env=env), "is a folder")
    assert "does not exist" not in line


def test_7_export_path_whose_parent_is_a_file(motion_npz, tmp_path):
    (tmp_path / "takes").write_text("a file, not a folder")
    for out in (tmp_path / "takes" / "o.glb", tmp_path / "takes" / "sub" / "o.glb"):
        line = assert_one_sentence(run_main("export", motion_npz, "--export", out), "is a file, not a folder")
        assert "does not exist" not in line


# -- 8. damaged-middle clip summary; tiny resolution --------------------------------------------------------------


def _ffmpeg(*args: str) -> None:
    from mocap_cli.capture.video import ffmpeg_executable

    subprocess.run([ffmpeg_executable(), "-v", "error", "-y", *args], check=True, timeout=120)


@pytest.mark.slow
def test_8_damaged_middle_says_frames_decoded_and_filled(tmp_path):
    """60 frames with random bytes over part of the middle: ffmpeg decodes fewer, the gap is interpolated,
    and the summary says both numbers (it used to print the decoded count next to a file with more keys)."""
    src = tmp_path / "clip.mp4"
    _ffmpeg(
        "-i",
        str(video("taiji_frontal.mp4")),
        "-t",
        "2",
        "-vf",
        "scale=320:-2",
        "-r",
        "30",
        "-an",
        "-c:v",
        "libx264",
        "-g",
        "10",
        "-pix_fmt",
        "yuv420p",
        str(src),
    )
    data = bytearray(src.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 8000] = np.random.default_rng(0).integers(0, 256, 8000, dtype=np.uint8).tobytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    res = run_main("run", damaged, "--export", tmp_path / "o.npz", "-q")
    assert res.code == 0, res.text
    written = Motion.load_npz(tmp_path / "o.npz").num_frames
    assert written == 60
    summary = " ".join(res.text.split())
    decoded = int(summary.split(" decoded")[0].split()[-1])
    assert decoded < 60
    assert f"{decoded} decoded, {60 - decoded} filled" in summary and "60 written" in summary
    assert "could not be decoded" in summary


@pytest.mark.slow
def test_8_tiny_resolution_is_warned_about(tmp_path):
    tiny = tmp_path / "tiny.mp4"
    _ffmpeg(
        "-i",
        str(video("fitness_dance_white_bg.mp4")),
        "-t",
        "2",
        "-vf",
        "scale=32:32,setsar=1",
        "-r",
        "30",
        "-an",
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        str(tiny),
    )
    res = run_main("run", tiny, "--export", tmp_path / "o.npz", "-q")
    summary = " ".join(res.text.split())
    if res.code == 0:
        assert "32x32" in summary and "64 px" in summary, summary
    else:  # no person found at all: the sentence says why
        assert_one_sentence(res, "32x32")
