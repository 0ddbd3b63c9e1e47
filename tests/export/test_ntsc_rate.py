"""NTSC-rate clips (30000/1001 fps) in Blender: what the README tells users is measured here with bpy.

Blender's glTF importer converts seconds to frames with ``fps * fps_base`` (it should divide), and its FBX
importer with the integer ``fps`` alone; only the BVH importer keys whole frames at the file's rate. So a
29.97 GLB imported into a scene set to 30000/1001 is frozen (keys millions of frames apart), Blender's 29.97
preset (30 / 1.001) plays it 0.2 % slow, and a scene at plain 30 fps plays GLB and FBX keys in real time.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import real_motion
from mocap_cli.export import export_motion
from mocap_cli.post.resample import resample_motion

NTSC = 30000 / 1001

PROBE = r"""
import json, sys
import bpy
out = []
for c in json.loads(open(sys.argv[1]).read()):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    if "scene" in c:
        scene.render.fps, scene.render.fps_base = c["scene"]
    ext = c["path"].rsplit(".", 1)[-1]
    if ext == "glb":
        bpy.ops.import_scene.gltf(filepath=c["path"])
    elif ext == "fbx":
        bpy.ops.import_scene.fbx(filepath=c["path"])
    else:
        bpy.ops.import_anim.bvh(filepath=c["path"], update_scene_fps=True, update_scene_duration=True)
    arm = [o for o in scene.objects if o.type == "ARMATURE"][0]
    action = arm.animation_data.action
    keys = sorted({k.co[0] for layer in action.layers for strip in layer.strips
                   for bag in strip.channelbags for fc in bag.fcurves for k in fc.keyframe_points})
    out.append({"fps": scene.render.fps, "fps_base": scene.render.fps_base, "first": keys[0], "last": keys[-1]})
open(sys.argv[2], "w").write(json.dumps(out))
"""


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    pytest.importorskip("bpy")
    tmp = tmp_path_factory.mktemp("ntsc")
    motion = real_motion(fps=NTSC, frames=90)
    for ext in ("glb", "fbx", "bvh"):
        export_motion(motion, tmp / f"ntsc.{ext}")
    export_motion(resample_motion(motion, 30.0), tmp / "at30.glb")
    cases = {
        "glb_30000_1001": {"path": str(tmp / "ntsc.glb"), "scene": [30000, 1001]},
        "glb_preset_2997": {"path": str(tmp / "ntsc.glb"), "scene": [30, 1.001]},
        "glb_30": {"path": str(tmp / "ntsc.glb"), "scene": [30, 1.0]},
        "fbx": {"path": str(tmp / "ntsc.fbx")},
        "bvh": {"path": str(tmp / "ntsc.bvh")},
        "fps30_glb_30": {"path": str(tmp / "at30.glb"), "scene": [30, 1.0]},
    }
    (tmp / "probe.py").write_text(PROBE)
    (tmp / "req.json").write_text(json.dumps(list(cases.values())))
    proc = subprocess.run(
        [sys.executable, str(tmp / "probe.py"), str(tmp / "req.json"), str(tmp / "res.json")],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(zip(cases, json.loads(Path(tmp / "res.json").read_text())))


def playback_seconds(r: dict, fps: float | None = None) -> float:
    """Seconds from the first to the last key when the scene plays at ``fps`` (default: its own rate)."""
    return (r["last"] - r["first"]) / (fps or r["fps"] / r["fps_base"])


TRUE_SECONDS = 89 / NTSC  # 90 frames


def test_glb_into_a_30000_1001_scene_is_frozen(imported):
    assert imported["glb_30000_1001"]["last"] > 1e6  # keys a million frames apart: nothing moves


def test_glb_with_blenders_2997_preset_is_stretched(imported):
    assert playback_seconds(imported["glb_preset_2997"]) / TRUE_SECONDS == pytest.approx(1.002, abs=2e-4)


def test_glb_into_a_30_fps_scene_plays_in_real_time(imported):
    assert playback_seconds(imported["glb_30"]) == pytest.approx(TRUE_SECONDS, rel=1e-5)


def test_fbx_sets_2997_but_its_keys_are_timed_for_30(imported):
    r = imported["fbx"]
    assert r["fps"] / r["fps_base"] == pytest.approx(NTSC, rel=1e-6)
    assert playback_seconds(r) / TRUE_SECONDS == pytest.approx(1.001, abs=2e-4)
    assert playback_seconds(r, 30.0) == pytest.approx(TRUE_SECONDS, rel=1e-5)


def test_bvh_carries_the_rate_exactly(imported):
    r = imported["bvh"]
    assert r["fps"] / r["fps_base"] == pytest.approx(NTSC, rel=1e-6)
    assert playback_seconds(r) == pytest.approx(TRUE_SECONDS, rel=1e-5)


def test_fps_30_export_lands_on_whole_frames(imported):
    r = imported["fps30_glb_30"]
    assert (r["first"], r["last"]) == (0.0, 89.0)
    assert np.isclose(r["last"], round(r["last"]))
