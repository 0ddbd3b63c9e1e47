"""BVH / GLB / NPZ writers, checked by independent readers and by Blender itself."""

from pathlib import Path

import numpy as np
import pygltflib
import pytest

from helpers import assert_blender_matches, blender_probe, gltf_validate, real_motion
from mocap_cli.core.motion import Motion
from mocap_cli.errors import MocapError
from mocap_cli.export import ExportOptions, check_output_path, export_motion

FRAMES = [0, 17, 59]


@pytest.fixture(scope="module")
def motion() -> Motion:
    return real_motion("dance_05_02", frames=60, fps=29.97)


def test_bvh_layout_and_independent_reader(motion, tmp_path):
    import bvhio

    path = tmp_path / "a.bvh"
    export_motion(motion, path)
    lines = path.read_text().splitlines()
    assert lines[0] == "HIERARCHY" and lines[1] == "ROOT pelvis" and lines[2].strip() == "{"
    assert "Frames: 60" in lines and f"Frame Time: {1 / 29.97:.10f}" in lines
    assert lines[4].split()[:2] == ["CHANNELS", "6"]
    bvh = bvhio.readAsBvh(str(path))
    assert bvh.FrameCount == 60 and abs(bvh.FrameTime - 1 / 29.97) < 1e-9
    root = bvhio.readAsHierarchy(str(path))
    joints = {j.Name: j for j, _, _ in root.layout()}
    assert set(joints) == set(motion.skeleton.names)
    for f in FRAMES:
        root.loadPose(f)
        for i, name in enumerate(motion.skeleton.names):
            assert np.linalg.norm(np.array(tuple(joints[name].PositionWorld)) - motion.joints[f, i]) < 1e-4


def test_bvh_in_centimetres(motion, tmp_path):
    import bvhio

    path = tmp_path / "cm.bvh"
    export_motion(motion, path, ExportOptions(unit_scale=100.0))
    root = bvhio.readAsHierarchy(str(path))
    root.loadPose(17)
    assert np.allclose(np.array(tuple(root.PositionWorld)), motion.joints[17, 0] * 100, atol=1e-3)


def test_glb_structure_and_validator(motion, tmp_path):
    path = tmp_path / "a.glb"
    export_motion(motion, path)
    gltf = pygltflib.GLTF2().load(str(path))
    assert len(gltf.skins) == 1 and len(gltf.skins[0].joints) == 24
    anim = gltf.animations[0]
    times = gltf.accessors[anim.samplers[0].input]
    assert times.count == 60 and abs(times.max[0] - 59 / 29.97) < 1e-5
    report = gltf_validate(path)
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"]
    assert report["issues"]["numWarnings"] == 0, report["issues"]["messages"]


def test_npz_round_trip(motion, tmp_path):
    path = tmp_path / "a.npz"
    export_motion(motion, path)
    back = Motion.load_npz(path)
    assert back.fps == motion.fps and back.skeleton.names == motion.skeleton.names
    assert np.allclose(back.rotations, motion.rotations, atol=1e-6)
    assert np.allclose(back.joints, motion.joints, atol=1e-5)
    assert back.provenance == motion.provenance


def test_npz_rejects_other_files(tmp_path):
    bad = tmp_path / "x.npz"
    np.savez(bad, a=np.zeros(3))
    with pytest.raises(MocapError, match="not a mocap motion file"):
        Motion.load_npz(bad)


def test_failed_write_leaves_nothing(motion, tmp_path, monkeypatch):
    from mocap_cli import export as export_mod

    def boom(m, p, o):
        Path(p).write_text("half")
        raise RuntimeError("disk full")

    monkeypatch.setitem(export_mod.WRITERS, ".bvh", boom)
    with pytest.raises(RuntimeError):
        export_motion(motion, tmp_path / "out.bvh")
    assert list(tmp_path.iterdir()) == []


def test_output_path_checks(tmp_path):
    with pytest.raises(MocapError, match="unknown extension"):
        check_output_path(tmp_path / "a.mp3", overwrite=False)
    with pytest.raises(MocapError, match="does not exist"):
        check_output_path(tmp_path / "nope" / "a.glb", overwrite=False)
    (tmp_path / "a.glb").write_text("x")
    with pytest.raises(MocapError, match="--overwrite"):
        check_output_path(tmp_path / "a.glb", overwrite=False)
    check_output_path(tmp_path / "a.glb", overwrite=True)


@pytest.mark.blender
@pytest.mark.parametrize("ext", ["bvh", "glb"])
def test_blender_imports_with_right_axes_scale_fps_and_motion(motion, tmp_path, ext):
    path = tmp_path / f"a.{ext}"
    export_motion(motion, path)
    report = blender_probe(path, motion.fps, FRAMES)
    assert sorted(report["bones"]) == sorted(motion.skeleton.names)
    assert report["parents"]["left_knee"] == "left_hip"
    assert abs(report["fps"] - 29.97) < 1e-3
    lo, hi = report["frame_range"]
    assert round(hi - lo) == 59
    assert_blender_matches(report, motion, FRAMES)
