"""``mocap batch`` on real clips and planted bad files: isolation, report, no partial files, resume, Ray."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from conftest import REPO, video
from mocap_cli.batch.plan import BatchOptions, find_clips, output_paths, plan
from mocap_cli.batch.report import lower_body_warning
from mocap_cli.batch.run import run_batch
from mocap_cli.batch.state import input_record, settings_record
from mocap_cli.core.skeleton import JOINT_NAMES
from mocap_cli.errors import MocapError
from mocap_cli.settings import RunSettings

WALK = "street_walk_5frames.mp4"
BASKET = "3dpw_courtyard_basketball_portrait.mp4"
TWO = "3dpw_courtyard_two_people_portrait.mp4"
GOOD = {"walk.mp4": (WALK, 5), "sub/basket.mp4": (BASKET, 40), "sub/deeper/two.mp4": (TWO, 40)}
BAD = {
    "sub/notes.mp4": "not a complete MP4/MOV video",
    "sub/deeper/truncated.mp4": "not a complete MP4/MOV video",
    "empty.mp4": "is empty",
    "sub/still.mp4": "still image",
}


def _ffmpeg() -> str:
    from mocap_cli.capture.video import ffmpeg_executable

    return ffmpeg_executable()


def make_folder(root: Path, good: dict[str, tuple[str, int]] = GOOD, bad: bool = True) -> Path:
    """Symlinks to real clips plus planted bad files, in nested folders (all under tmp, never the repo)."""
    src = root / "in"
    for rel, (name, _frames) in good.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).symlink_to(video(name))
    if bad:
        (src / "sub" / "deeper").mkdir(parents=True, exist_ok=True)
        (src / "sub" / "notes.mp4").write_text("shot list: take 3 was the good one\n")
        (src / "sub" / "deeper" / "truncated.mp4").write_bytes(video(TWO).read_bytes()[:20_000])
        (src / "empty.mp4").write_bytes(b"")
        png = root / "frame.png"
        subprocess.run(
            [_ffmpeg(), "-y", "-loglevel", "error", "-i", str(video(WALK)), "-frames:v", "1", str(png)], check=True
        )
        png.rename(src / "sub" / "still.mp4")
        (src / "readme.txt").write_text("not matched by the default patterns\n")
    return src


def read_report(out: Path) -> dict[str, dict]:
    data = json.loads((out / "report.json").read_text())
    rows = {r["clip"]: r for r in data["clips"]}
    with open(out / "report.csv", newline="") as f:
        csv_rows = {r["clip"]: r for r in csv.DictReader(f)}
    assert set(csv_rows) == set(rows)
    for clip, row in rows.items():
        assert csv_rows[clip]["status"] == row["status"] and csv_rows[clip]["reason"] == row["reason"]
    return rows


def parts(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".part")]


def log_events(out: Path, event: str) -> list[str]:
    """Clips named by ``event`` lines of batch.log (e.g. every 'done' over all runs)."""
    clips = []
    for line in (out / "batch.log").read_text().splitlines():
        fields = line.split(" ", 3)
        if len(fields) == 4 and fields[2] == event and not fields[3].startswith(":"):
            clips.append(fields[3].split(":")[0])
    return clips


def opts(src: Path, out: Path, **kw) -> BatchOptions:
    settings = kw.pop("settings", RunSettings(formats=("glb", "bvh")))
    return BatchOptions(
        in_dir=src, out_dir=out, settings=settings, recursive=kw.pop("recursive", True), jobs=kw.pop("jobs", 2), **kw
    )


# -- fast checks (no clip is run) -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, message",
    [
        (RunSettings(formats=("glb", "obj")), "Unknown export format 'obj'"),
        (RunSettings(smooth="silky"), "Unknown smoothing preset 'silky'"),
        (RunSettings(preset="maya2"), "Unknown rig preset 'maya2'"),
        (RunSettings(root="sideways"), "Unknown root motion mode 'sideways'"),
        (RunSettings(mesh="cube"), "Unknown body mesh 'cube'"),
        (RunSettings(model="nope"), "Unknown model 'nope'"),
        (RunSettings(device="tpu"), "Unknown device 'tpu'"),
        (RunSettings(fps=-3.0), "--fps must be a positive"),
    ],
)
def test_bad_settings_fail_before_any_work(tmp_path: Path, settings: RunSettings, message: str) -> None:
    src = make_folder(tmp_path, good={"walk.mp4": GOOD["walk.mp4"]}, bad=False)
    out = tmp_path / "out"
    with pytest.raises(MocapError, match=message):
        run_batch(BatchOptions(src, out, settings))
    assert not out.exists()


def test_run_options_are_built_like_mocap_run() -> None:
    from mocap_cli.settings import build_run_options
    from mocap_cli.solve.camera import DEFAULT_FOV_DEGREES

    settings = RunSettings(
        formats=("fbx",),
        model="mediapipe",
        smooth="strong",
        fps=24.0,
        preset="mixamo",
        root="in-place",
        mesh="none",
        weights="variant-x",
        batch_size=8,
    )
    run = build_run_options((Path("a.fbx"),), settings, overwrite=True)
    assert (run.exports, run.model, run.smooth, run.fps, run.preset, run.root, run.mesh, run.overwrite) == (
        (Path("a.fbx"),),
        "mediapipe",
        "strong",
        24.0,
        "mixamo",
        "in-place",
        "none",
        True,
    )
    assert (run.settings.device, run.settings.fov_degrees, run.settings.weights, run.settings.batch_size) == (
        "auto",
        DEFAULT_FOV_DEGREES,
        Path("variant-x"),
        8,
    )


def test_command_rejects_unknown_format_with_one_sentence(tmp_path: Path) -> None:
    from mocap_cli.commands.batch import batch

    app = typer.Typer()
    app.command()(batch)
    src = make_folder(tmp_path, good={"walk.mp4": GOOD["walk.mp4"]}, bad=False)
    result = CliRunner().invoke(app, [str(src), "--out", str(tmp_path / "out"), "--export-format", "glb,usd"])
    assert result.exit_code == 1
    assert "Unknown export format 'usd'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_discovery_mirrors_the_tree_and_skips_hidden_and_output(tmp_path: Path) -> None:
    src = make_folder(tmp_path)
    (src / ".cache").mkdir()
    (src / ".cache" / "x.mp4").write_bytes(b"hidden")
    (src / "out").mkdir()
    (src / "out" / "old.mp4").write_bytes(b"inside the output folder")
    top = [p.relative_to(src).as_posix() for p in find_clips(src)]
    assert top == ["empty.mp4", "walk.mp4"]
    everything = [p.relative_to(src).as_posix() for p in find_clips(src, recursive=True, exclude=src / "out")]
    assert everything == [
        "empty.mp4",
        "sub/basket.mp4",
        "sub/deeper/truncated.mp4",
        "sub/deeper/two.mp4",
        "sub/notes.mp4",
        "sub/still.mp4",
        "walk.mp4",
    ]
    assert [p.name for p in find_clips(src, ("*.TXT",), recursive=True)] == ["readme.txt"]
    assert [p.name for p in find_clips(src, ("sub/deeper/*.mp4",), recursive=True)] == ["truncated.mp4", "two.mp4"]
    out = tmp_path / "o"
    assert output_paths(out, "sub/deeper/two.mp4", ("glb", "bvh")) == (
        out / "sub/deeper/two.glb",
        out / "sub/deeper/two.bvh",
    )


def test_clips_sharing_an_output_name_fail_alone(tmp_path: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    (src / "take.mp4").symlink_to(video(WALK))
    (src / "take.mov").symlink_to(video(WALK))
    jobs, clashes = plan(BatchOptions(src, tmp_path / "out", RunSettings()))
    assert [j.rel for j in jobs] == ["take.mov", "take.mp4"]
    assert list(clashes) == [1] and "would overwrite that of take.mov" in clashes[1]


def test_two_batches_never_share_an_output_folder(tmp_path: Path) -> None:
    from mocap_cli.batch.state import output_lock

    src = make_folder(tmp_path, good={"walk.mp4": GOOD["walk.mp4"]}, bad=False)
    out = tmp_path / "out"
    with output_lock(out):
        with pytest.raises(MocapError, match="Another mocap batch is writing to"):
            run_batch(BatchOptions(src, out, RunSettings()))
    assert not (out / "report.json").exists()


def test_input_identity_changes_with_content_or_mtime(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    data = bytearray(video(TWO).read_bytes())
    clip.write_bytes(data)
    first = input_record(clip)
    assert input_record(clip) == first
    os.utime(clip, ns=(first["mtime_ns"], first["mtime_ns"] + 10**9))
    assert input_record(clip)["mtime_ns"] != first["mtime_ns"]
    data[-100] ^= 0xFF  # same size, same mtime, other content at the end
    clip.write_bytes(data)
    os.utime(clip, ns=(first["mtime_ns"], first["mtime_ns"]))
    changed = input_record(clip)
    assert changed["size"] == first["size"] and changed["mtime_ns"] == first["mtime_ns"]
    assert changed["head_tail_sha256"] != first["head_tail_sha256"]


def test_the_shipped_finger_readings_are_part_of_the_settings_record(monkeypatch, tmp_path: Path) -> None:
    """A new fitted finger reading changes every --hands auto output: a resumed batch redoes those clips, and
    only those (--hands off records no reading)."""
    from mocap_cli.solve import hand_ik

    before = settings_record(RunSettings())
    assert set(before["hands"]["readings"]) == {"mediapipe_thumb.json", "mediapipe_fingers.json"}
    assert settings_record(RunSettings(hands="off"))["hands"] == "off"
    refit = tmp_path / "mediapipe_fingers.json"
    refit.write_bytes(hand_ik.finger_reading_files()[1].read_bytes() + b" ")
    monkeypatch.setattr(hand_ik, "finger_reading_files", lambda: (hand_ik.THUMB_READING_FILE, refit))
    assert settings_record(RunSettings()) != before
    assert settings_record(RunSettings(hands="off"))["hands"] == "off"


def test_a_stated_height_is_part_of_the_settings_record() -> None:
    """Records of earlier runs (no height key) stay up to date without --height; a height, or another one, redoes
    the clip (it changes the motion's size and path)."""
    assert "height" not in settings_record(RunSettings())
    assert settings_record(RunSettings(height=1.7))["height"] == 1.7
    assert settings_record(RunSettings(height=1.7)) != settings_record(RunSettings(height=1.8))


def test_lower_body_warning_from_joint_confidence() -> None:
    legs = [JOINT_NAMES.index(n) for n in ("left_knee", "right_knee", "left_ankle", "right_ankle")]
    conf = np.full((10, len(JOINT_NAMES)), 0.9)
    assert lower_body_warning(conf, JOINT_NAMES) is None
    conf[:7, legs[2]] = 0.1  # one ankle hidden in 7 of 10 frames
    assert "30%" in lower_body_warning(conf, JOINT_NAMES)
    conf[:, :] = 0.0  # frames without a person do not count
    conf[8:, :] = 0.9
    assert lower_body_warning(conf, JOINT_NAMES) is None


def test_model_stage_holds_the_gpu_lock_and_reports_progress() -> None:
    import multiprocessing
    import queue

    from mocap_cli.batch.worker import WorkerReporter

    lock = multiprocessing.get_context("spawn").Lock()
    events: queue.Queue = queue.Queue()
    reporter = WorkerReporter(3, events, lock)
    with reporter.stage("decode + detect", 10) as tick:
        assert lock.acquire(block=False)
        lock.release()
        tick(10)
    with reporter.stage("model", 10) as tick:
        assert not lock.acquire(block=False)  # held for the whole model stage
        tick(10)
    assert lock.acquire(block=False)
    lock.release()
    messages = [events.get_nowait() for _ in range(events.qsize())]
    assert (3, "stage", "decode + detect", 10, 10) in messages and (3, "stage", "model", 10, 10) in messages
    assert messages.index((3, "stage", "model (waiting for GPU)", 0, 10)) < messages.index((3, "stage", "model", 0, 10))


# -- real clips --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_batch_isolates_failures_reports_and_resumes(tmp_path: Path) -> None:
    src = make_folder(tmp_path)
    out = tmp_path / "out"
    result = run_batch(opts(src, out))
    assert result.exit_code == 1
    rows = read_report(out)
    assert set(rows) == set(GOOD) | set(BAD)
    for rel, (_name, frames) in GOOD.items():
        row = rows[rel]
        assert row["status"] == "done", row
        assert row["frames"] == frames and row["detection_rate"] > 0.5 and row["seconds"] > 0
        stem = Path(rel).with_suffix("")
        assert row["outputs"] == [f"{stem}.glb", f"{stem}.bvh"]
        for o in row["outputs"]:
            assert (out / o).stat().st_size > 1000
        assert (out / ".mocap" / f"{rel}.json").is_file()
    assert rows["sub/basket.mp4"]["source_fps"] == 12.0
    for rel, words in BAD.items():
        assert rows[rel]["status"] == "failed" and words in rows[rel]["reason"], rows[rel]
        assert "Traceback" not in rows[rel]["reason"]
        assert not list(out.rglob(Path(rel).stem + ".*"))
    assert "readme.txt" not in rows
    assert parts(tmp_path) == []
    import bvhio

    # 24 body joints + 30 finger joints (--hands auto)
    assert len(bvhio.readAsHierarchy(str(out / "sub/basket.bvh")).layout()) == 54

    # Resume: nothing good is redone; the bad files are tried again and fail again.
    again = run_batch(opts(src, out, resume=True))
    rows2 = read_report(out)
    assert again.exit_code == 1
    assert {r: rows2[r]["status"] for r in GOOD} == dict.fromkeys(GOOD, "skipped")
    assert {r: rows2[r]["frames"] for r in GOOD} == {r: rows[r]["frames"] for r in GOOD}
    assert sorted(log_events(out, "done")) == sorted(GOOD)

    # Without --resume or --overwrite, existing outputs stop the batch before any work.
    with pytest.raises(MocapError, match="already exist"):
        run_batch(opts(src, out))

    # Another smoothing preset: every good clip is redone (and only once more).
    walk = (out / "walk.glb").read_bytes()
    changed = run_batch(opts(src, out, resume=True, settings=RunSettings(formats=("glb", "bvh"), smooth="strong")))
    rows3 = read_report(out)
    assert changed.exit_code == 1
    assert {r: rows3[r]["status"] for r in GOOD} == dict.fromkeys(GOOD, "done")
    assert sorted(log_events(out, "done")) == sorted(list(GOOD) * 2)
    assert (out / "walk.glb").read_bytes() != walk
    assert parts(tmp_path) == []


def _as_in_a_terminal() -> None:
    """Ctrl-C reaches a program started from a terminal; one started in the background of a script (as CI
    may start pytest) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _batch_process(src: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mocap_cli.commands.batch",
            str(src),
            "--out",
            str(out),
            "--export-format",
            "glb,bvh,npz",
            "--quiet",
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=REPO,
        preexec_fn=_as_in_a_terminal,
    )


def _wait_for(predicate, timeout: float = 90.0) -> None:
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.05)


def _workers(parent: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmd = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == parent and b"spawn_main" in cmd:
            pids.append(int(stat.parent.name))
    return pids


STATE = ".mocap"
THREE = {"a.mp4": (BASKET, 40), "b/b.mp4": (BASKET, 40), "b/c.mp4": (WALK, 5)}
TWO_CLIPS = {"a.mp4": (BASKET, 40), "b/c.mp4": (WALK, 5)}


@pytest.mark.slow
def test_ctrl_c_then_resume_finishes_each_clip_exactly_once(tmp_path: Path) -> None:
    src = make_folder(tmp_path, good=THREE, bad=False)
    out = tmp_path / "out"
    proc = _batch_process(src, out, "--recursive", "--jobs", "1")
    _wait_for(lambda: (out / "batch.log").exists() and log_events(out, "done"))
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, output
    assert "Traceback" not in output and "--resume" in output
    rows = read_report(out)
    first = [c for c, r in rows.items() if r["status"] == "done"]
    assert first and all(r["status"] in ("done", "pending") for r in rows.values())
    assert parts(out) == []
    for clip, row in rows.items():  # unfinished clips leave no outputs at all
        stem = out / Path(clip).with_suffix("")
        assert all(stem.with_suffix(s).exists() == (row["status"] == "done") for s in (".glb", ".bvh", ".npz"))

    # The batch itself is killed (no chance to clean up): its workers stop too, removing their temp files.
    starts = len(log_events(out, "start"))
    proc = _batch_process(src, out, "--recursive", "--jobs", "2", "--resume")
    _wait_for(lambda: len(log_events(out, "start")) > starts and _workers(proc.pid))
    workers = _workers(proc.pid)
    time.sleep(1.0)
    proc.kill()
    proc.communicate(timeout=30)
    _wait_for(lambda: not any(_alive(pid) for pid in workers), timeout=30)
    # Only the killed parent's own report/sidecar temp files may remain (the next run sweeps them).
    assert [p for p in parts(out) if STATE not in p.parts and not p.name.startswith(".report.")] == []

    proc = _batch_process(src, out, "--recursive", "--jobs", "2", "--resume")
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, output
    rows = read_report(out)
    assert all(rows[c]["status"] == "skipped" for c in first)
    assert all(r["status"] in ("done", "skipped") for r in rows.values())
    assert sorted(log_events(out, "done")) == sorted(THREE)
    assert parts(out) == []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def crash_on_purpose(clip: Path, options, reporter):
    """The real per-clip function, except that it SIGKILLs its own worker (as an OOM kill would) on every
    clip named crash* and on the first try of a clip named flaky*."""
    marker = clip.parent / f".{clip.name}.died"
    if clip.name.startswith("crash") or (clip.name.startswith("flaky") and not marker.exists()):
        marker.touch()
        os.kill(os.getpid(), signal.SIGKILL)
    from mocap_cli.pipeline import run_clip

    return run_clip(clip, options, reporter)


@pytest.mark.slow
def test_a_killed_worker_costs_one_retry_and_never_the_batch(tmp_path: Path) -> None:
    walk = GOOD["walk.mp4"]
    src = make_folder(tmp_path, good={"crash.mp4": walk, "flaky.mp4": walk, "walk.mp4": walk}, bad=False)
    out = tmp_path / "out"
    result = run_batch(opts(src, out, jobs=1), clip_fn=crash_on_purpose)
    rows = read_report(out)
    assert result.exit_code == 1
    assert rows["walk.mp4"]["status"] == "done" and rows["flaky.mp4"]["status"] == "done"
    assert rows["crash.mp4"]["status"] == "failed" and "worker process died twice" in rows["crash.mp4"]["reason"]
    assert log_events(out, "worker-died") == ["crash.mp4", "flaky.mp4"]
    assert sorted(log_events(out, "done")) == ["flaky.mp4", "walk.mp4"]
    assert not list(out.glob("crash.*")) and parts(tmp_path) == []


@pytest.mark.slow
def test_a_killed_worker_does_not_disturb_the_clip_in_the_other_worker(tmp_path: Path) -> None:
    """Two workers: the one running crash.mp4 dies twice; basket.mp4, running beside it, is neither restarted
    nor charged a death (each worker holds exactly one clip, and only that clip pays)."""
    src = make_folder(tmp_path, good={"basket.mp4": GOOD["sub/basket.mp4"], "crash.mp4": GOOD["walk.mp4"]}, bad=False)
    out = tmp_path / "out"
    result = run_batch(opts(src, out, jobs=2), clip_fn=crash_on_purpose)
    rows = read_report(out)
    assert result.exit_code == 1
    assert rows["basket.mp4"]["status"] == "done" and rows["basket.mp4"]["frames"] == 40
    assert rows["crash.mp4"]["status"] == "failed" and "worker process died twice" in rows["crash.mp4"]["reason"]
    assert log_events(out, "worker-died") == ["crash.mp4"]
    assert sorted(log_events(out, "start")) == ["basket.mp4", "crash.mp4", "crash.mp4"]
    assert not list(out.glob("crash.*")) and parts(tmp_path) == []


def die_on_the_gpu(clip: Path, options, reporter):
    """crash*: SIGKILL the worker while it holds the GPU turn (a CUDA out-of-memory kill), after the other
    clip has asked for the GPU. Other clips ask for the GPU only once a crash* clip holds it, then run."""
    marker = clip.parent / ".crash-holds-the-gpu"
    if clip.name.startswith("crash"):
        with reporter.stage("model", 1):
            marker.touch()
            time.sleep(1.0)  # the other worker asks meanwhile
            os.kill(os.getpid(), signal.SIGKILL)
    _wait_for(marker.exists, timeout=120)
    from mocap_cli.pipeline import run_clip

    return run_clip(clip, options, reporter)


@pytest.mark.slow
def test_a_worker_killed_on_the_gpu_passes_its_turn_on(tmp_path: Path) -> None:
    from mocap_cli.batch.pool import run_pool
    from mocap_cli.batch.report import BatchLog
    from mocap_cli.batch.run import NullDisplay
    from mocap_cli.settings import build_run_options

    walk = GOOD["walk.mp4"]
    src = make_folder(tmp_path, good={"crash.mp4": walk, "walk.mp4": walk}, bad=False)
    out = tmp_path / "out"
    out.mkdir()
    options = opts(src, out, jobs=2)
    jobs, _ = plan(options)
    run_opts = {job.index: build_run_options(job.outputs, options.settings, overwrite=True) for job in jobs}
    outcomes = {}

    def hung(signum, frame):
        raise TimeoutError("the batch waited for a GPU turn held by a dead worker")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(240)
    try:
        run_pool(
            jobs,
            run_opts,
            options,
            die_on_the_gpu,
            lambda job: None,
            lambda job, outcome: outcomes.__setitem__(job.rel, outcome),
            NullDisplay(),
            BatchLog(out / "batch.log", "test"),
            gpu=True,
        )
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert outcomes["walk.mp4"].status == "done" and outcomes["walk.mp4"].frames == 5
    assert outcomes["crash.mp4"].status == "failed" and "died twice" in outcomes["crash.mp4"].reason
    assert (out / "walk.glb").is_file() and not list(out.glob("crash.*"))


@pytest.mark.slow
def test_ray_backend_gives_the_same_report(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'mocap-cli[ray]')")
    good = {"walk.mp4": GOOD["walk.mp4"], "sub/basket.mp4": GOOD["sub/basket.mp4"]}
    src = make_folder(tmp_path, good=good)
    pool = run_batch(opts(src, tmp_path / "pool"))
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        object_store_memory=100 * 2**20,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}},
    )
    try:
        on_ray = run_batch(opts(src, tmp_path / "ray", ray_address="auto"))
    finally:
        ray.shutdown()
    assert on_ray.exit_code == pool.exit_code == 1
    keys = ("status", "reason", "frames", "source_fps", "detection_rate", "outputs", "warnings")
    a, b = read_report(tmp_path / "pool"), read_report(tmp_path / "ray")
    assert {c: {k: r[k] for k in keys} for c, r in a.items()} == {c: {k: r[k] for k in keys} for c, r in b.items()}
    assert json.loads((tmp_path / "ray" / "report.json").read_text())["backend"] == "ray"
    assert parts(tmp_path) == []
