"""One .glb with several people: Blender imports one armature per person, each animated (one action, a slot per
armature) over its own frame range, all on one floor and at the distances they were given."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mocap_cli.export.multi import write_people_file
from tests.helpers import real_motion

PROBE = Path(__file__).with_name("multi_probe.py")


def _blender(path: Path, fps: float) -> list[dict]:
    pytest.importorskip("bpy")
    out = path.with_suffix(".json")
    done = subprocess.run(
        [sys.executable, str(PROBE), str(path), str(fps), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.slow
def test_blender_imports_one_armature_per_person_on_one_floor(tmp_path):
    a = real_motion("dance_05_02", frames=60)
    b = real_motion("dance_05_02", frames=40)
    # The second dancer stands 2 m to the right of the first (world +X); both motions are grounded at 0.
    b = b.with_rotations(b.rotations, b.root_translation + np.array([2.0, 0.0, 0.0]))
    b = replace(b, provenance=dict(b.provenance))
    path = tmp_path / "duet.glb"
    write_people_file([a, b], path, preset="blender", root="world", mesh="auto", smpl=None)
    arms = sorted(_blender(path, a.fps), key=lambda r: r["name"])
    assert [r["name"] for r in arms] == ["person_1", "person_2"]
    assert all(r["meshes"] for r in arms), "each person has a body mesh bound to its own armature"
    assert arms[0]["range"][1] - arms[0]["range"][0] == 59 and arms[1]["range"][1] - arms[1]["range"][0] == 39
    floors = [min(r["lowest"]) for r in arms]
    assert abs(floors[0] - floors[1]) < 0.05, floors
    gap = np.array(arms[1]["root"][0]) - np.array(arms[0]["root"][0])
    want = b.root_translation[0] - a.root_translation[0]
    assert abs(gap[0] - want[0]) < 0.02  # Blender X = our X


@pytest.mark.slow
def test_blender_imports_one_fbx_armature_per_person_with_its_own_take(tmp_path):
    """The same duet as one .fbx: an armature per person (person_1, person_2), each with its own body mesh and
    its own frame range, both on one floor, 2 m apart as given."""
    a = real_motion("dance_05_02", frames=60)
    b = real_motion("dance_05_02", frames=40)
    b = b.with_rotations(b.rotations, b.root_translation + np.array([2.0, 0.0, 0.0]))
    path = tmp_path / "duet.fbx"
    write_people_file([a, b], path, preset="blender", root="world", mesh="auto", smpl=None)
    arms = sorted(_blender(path, a.fps), key=lambda r: r["name"])
    assert [r["name"] for r in arms] == ["person_1", "person_2"]
    assert [len(r["meshes"]) for r in arms] == [1, 1], "each person has a body mesh bound to its own armature"
    assert arms[0]["meshes"] != arms[1]["meshes"]
    assert [r["range"][1] - r["range"][0] for r in arms] == [59, 39]
    assert arms[0]["bones"] == arms[1]["bones"] == a.skeleton.num_joints
    floors = [min(r["lowest"]) for r in arms]
    assert abs(floors[0] - floors[1]) < 0.05, floors
    # Blender X = our X; the root bone's head follows each person's own path frame by frame.
    for arm, motion in zip(arms, (a, b)):
        root = np.array(arm["root"])
        assert np.abs(root[:, 0] - motion.root_translation[: len(root), 0]).max() < 0.02
    gap = np.array(arms[1]["root"][0]) - np.array(arms[0]["root"][0])
    assert abs(gap[0] - 2.0) < 0.02
