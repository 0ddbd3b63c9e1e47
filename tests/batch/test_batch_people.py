"""``mocap batch --people all|N``: every person of every clip, people and frames per person in the report,
per-person files recorded for --resume and cleaned when a clip fails, and the files re-exportable together."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from conftest import video
from mocap_cli.batch.run import run_batch
from mocap_cli.batch.state import settings_record
from mocap_cli.commands.json_report import schema
from mocap_cli.errors import MocapError
from mocap_cli.settings import RunSettings

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_batch import make_folder, opts, read_report  # noqa: E402

TWO = "3dpw_courtyard_two_people_portrait.mp4"
PROBE = Path(__file__).resolve().parents[1] / "export" / "multi_probe.py"


def _mocap(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mocap_cli.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
        check=False,
    )


def test_people_setting_is_checked_and_recorded_only_when_not_largest():
    assert RunSettings(people="all").people_choice() == "all"
    assert RunSettings(people="2").people_choice() == 2
    for bad in ("0", "-1", "many"):
        with pytest.raises(MocapError, match="--people must be largest, all or a number"):
            RunSettings(people=bad).validate()
    with pytest.raises(MocapError, match="--preview draws one person"):
        RunSettings(people="all", preview=True).validate()
    # Records of earlier runs (no people key) stay up to date with the default; any other choice redoes.
    assert "people" not in settings_record(RunSettings())
    assert settings_record(RunSettings(people="all"))["people"] == "all"
    assert settings_record(RunSettings(people="+2"))["people"] == "2"


def test_cli_batch_refuses_bad_people_values_in_one_sentence(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "two.mp4").symlink_to(video(TWO))
    for bad in ("0", "-1", "many"):
        done = _mocap("batch", "in", "--out", "out", "--people", bad, cwd=tmp_path)
        text = done.stdout + done.stderr
        assert done.returncode != 0
        assert f"--people must be largest, all or a number of people of at least 1, not '{bad}'." in text
        assert "Traceback" not in text
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("two*"))


def fail_after_writing_people(clip: Path, options, reporter):
    """Writes what --people all writes for two people, then fails as an exporter could."""
    for path in options.exports:
        if path.suffix in (".bvh", ".npz"):
            for i in (1, 2):
                path.with_name(f"{path.stem}.person_{i}{path.suffix}").write_text("partial")
    raise MocapError("The disk filled up while writing; free some space and rerun.")


def test_a_failed_people_clip_leaves_no_person_file_and_a_redo_drops_stale_ones(tmp_path):
    src = make_folder(tmp_path, good={"two.mp4": (TWO, 40)}, bad=False)
    out = tmp_path / "out"
    out.mkdir()
    stale = out / "two.person_3.bvh"  # from an earlier run that found three people
    stale.write_text("old")
    settings = RunSettings(formats=("glb", "bvh", "npz"), people="all")
    result = run_batch(opts(src, out, jobs=1, settings=settings, overwrite=True), clip_fn=fail_after_writing_people)
    row = read_report(out)["two.mp4"]
    assert result.exit_code == 1 and row["status"] == "failed"
    assert row["reason"] == "The disk filled up while writing; free some space and rerun."
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("two")) == []


@pytest.mark.slow
def test_batch_people_all_on_the_courtyard_duet(tmp_path):
    """The duet gives two people seen on (nearly) every frame; GLB and FBX hold both, BVH/NPZ are per person;
    the report, the CSV and --json say so; --resume keeps it; `mocap export` re-exports the NPZs together
    and Blender imports that FBX with one animated armature per person."""
    src = make_folder(tmp_path, good={"two.mp4": (TWO, 40)}, bad=False)
    done = _mocap(
        "batch",
        str(src),
        "--out",
        "out",
        "-f",
        "glb,fbx,bvh,npz",
        "--people",
        "all",
        "-j",
        "1",
        "-q",
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    jsonschema.validate(summary, schema("batch"))
    clip = summary["clips"][0]
    assert clip["people"] == 2 and len(clip["person_frames"]) == 2
    assert all(36 <= n <= 40 for n in clip["person_frames"]), clip["person_frames"]
    out = tmp_path / "out"
    names = ["two.fbx", "two.glb", "two.person_1.bvh", "two.person_1.npz", "two.person_2.bvh", "two.person_2.npz"]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("two")) == names
    assert sorted(clip["files"]) == names
    row = read_report(out)["two.mp4"]
    assert row["people"] == 2 and row["person_frames"] == clip["person_frames"]
    csv_row = (out / "report.csv").read_text().splitlines()[1]
    assert ",2," + "; ".join(map(str, clip["person_frames"])) + "," in csv_row

    again = _mocap(
        "batch",
        str(src),
        "--out",
        "out",
        "-f",
        "glb,fbx,bvh,npz",
        "--people",
        "all",
        "-j",
        "1",
        "-q",
        "--json",
        "--resume",
        cwd=tmp_path,
    )
    resumed = json.loads(again.stdout.strip().splitlines()[-1])["clips"][0]
    assert resumed["status"] == "skipped" and resumed["people"] == 2
    assert resumed["person_frames"] == clip["person_frames"]
    # A missing person file is noticed: the clip is redone.
    (out / "two.person_2.npz").unlink()
    redo = _mocap(
        "batch",
        str(src),
        "--out",
        "out",
        "-f",
        "glb,fbx,bvh,npz",
        "--people",
        "all",
        "-j",
        "1",
        "-q",
        "--json",
        "--resume",
        cwd=tmp_path,
    )
    assert json.loads(redo.stdout.strip().splitlines()[-1])["clips"][0]["status"] == "done"
    assert (out / "two.person_2.npz").is_file()

    export = _mocap("export", "out/two.npz", "-e", "duet.fbx", cwd=tmp_path)
    assert export.returncode == 0, export.stderr[-2000:]
    pytest.importorskip("bpy")
    report = tmp_path / "probe.json"
    probe = subprocess.run(
        [sys.executable, str(PROBE), str(tmp_path / "duet.fbx"), "12", str(report)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr[-2000:]
    arms = sorted(json.loads(report.read_text()), key=lambda r: r["name"])
    assert [a["name"] for a in arms] == ["person_1", "person_2"]
    assert all(len(a["meshes"]) == 1 and a["range"] == [arms[0]["range"][0], arms[0]["range"][0] + 39] for a in arms)
    floors = [min(a["lowest"]) for a in arms]
    assert abs(floors[0] - floors[1]) < 0.1, floors
