"""Finger bones in every format and rig preset: Blender imports BVH/GLB/FBX with the 30 finger bones under the
right wrist, posed as our forward kinematics says (within 1 mm); the Khronos validator passes the GLB; ufbx
reads the FBX; the anny body is skinned to the finger bones."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from helpers import gltf_validate, real_motion, run_blender, to_blender
from mocap_cli.core.hand_skeleton import FINGER_JOINT_NAMES, HAND_JOINT_NAMES
from mocap_cli.core.motion import Motion
from mocap_cli.export import export_motion
from mocap_cli.export.prepare import prepare_export
from mocap_cli.export.rig_presets import finger_bone_names, load_rig_preset
from mocap_cli.solve.hand_ik import add_fingers

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from hand_render import POSES, finger_pose

PRESETS = ["blender", "mixamo", "ue5", "unity", "vrm"]
FORMATS = ["bvh", "glb", "fbx"]
FRAMES = [0, 17, 41]
FPS = 30.0
# Written out here (not read from the preset files) so a wrong preset file fails.
EXPECTED = {
    "mixamo": {
        "left_index1": "mixamorig:LeftHandIndex1",
        "right_thumb3": "mixamorig:RightHandThumb3",
        "left_pinky2": "mixamorig:LeftHandPinky2",
        "left_middle1": "mixamorig:LeftHandMiddle1",
    },
    "ue5": {
        "left_index1": "index_01_l",
        "right_thumb3": "thumb_03_r",
        "left_pinky2": "pinky_02_l",
        "left_middle1": "middle_01_l",
    },
    "unity": {
        "left_index1": "LeftIndexProximal",
        "right_thumb3": "RightThumbDistal",
        "left_pinky2": "LeftLittleIntermediate",
        "left_middle1": "LeftMiddleProximal",
    },
    "vrm": {
        "left_index1": "leftIndexProximal",
        "right_thumb3": "rightThumbDistal",
        "left_pinky2": "leftLittleIntermediate",
        "left_thumb1": "leftThumbMetacarpal",
    },
    "blender": {n: n for n in FINGER_JOINT_NAMES},
}


@pytest.fixture(scope="module")
def motion() -> Motion:
    """A real body motion (CMU dance) with fingers cycling through the five test poses."""
    body = real_motion("dance_05_02", frames=48, fps=FPS)
    fingered = add_fingers(body, None)
    rest = fingered.skeleton.rest_positions()
    rot = fingered.rotations.copy()
    for f in range(body.num_frames):
        rot[f, 24:] = finger_pose(rest, POSES[(f // 6) % len(POSES)])
    return fingered.with_rotations(rot)


def test_preset_finger_names() -> None:
    for preset, names in EXPECTED.items():
        p = load_rig_preset(preset)
        full = dict(zip(HAND_JOINT_NAMES, finger_bone_names(p)))
        for joint, bone in names.items():
            assert full[joint] == bone, (preset, joint)
        assert len(set(full.values())) == 54


@pytest.fixture(scope="module")
def exported(motion: Motion, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict]:
    tmp = tmp_path_factory.mktemp("hands")
    out: dict[tuple[str, str], dict] = {}
    for preset in PRESETS:
        rigged, options = prepare_export(motion, preset=preset, root="world", mesh="anny")
        for fmt in FORMATS:
            path = tmp / f"{preset}.{fmt}"
            export_motion(rigged, path, options)
            out[(fmt, preset)] = dict(path=path, motion=rigged, options=options)
    return out


@pytest.mark.blender
def test_blender_imports_finger_bones_for_every_preset(exported: dict) -> None:
    keys = list(exported)
    request = [{"path": str(exported[k]["path"]), "fps": FPS, "frames": FRAMES} for k in keys]
    results = dict(zip(keys, run_blender(request, Path(exported[keys[0]]["path"]).parent)))
    lines = []
    for (fmt, preset), case in exported.items():
        res, rigged = results[(fmt, preset)], case["motion"]
        sk = rigged.skeleton
        assert res["import_result"] == ["FINISHED"], (fmt, preset)
        assert sk.num_joints == 54
        assert res["bones"] == {n: (sk.names[p] if p >= 0 else None) for n, p in zip(sk.names, sk.parents)}
        wrists = {"left": sk.names[20], "right": sk.names[21]}
        for c, joint in enumerate(FINGER_JOINT_NAMES):
            if joint.endswith("1"):
                assert res["bones"][sk.names[24 + c]] == wrists[joint.split("_")[0]], (fmt, preset, joint)
        scale = case["options"].unit_scale if fmt == "bvh" else 1.0
        worst = 0.0
        for f in FRAMES:
            for j in range(24, 54):
                got = np.array(res["frames"][str(f)]["heads"][sk.names[j]]) / scale
                worst = max(worst, float(np.linalg.norm(got - to_blender(rigged.joints[f, j]))))
        lines.append(f"{fmt:>3} x {preset:<7}: max finger joint error {worst * 1000:.4f} mm")
        assert worst <= 0.001, (fmt, preset, worst)
        if fmt != "bvh":
            groups = set(res["mesh_info"][0]["vertex_groups"])
            assert {sk.names[24 + c] for c in range(30)} <= groups, (fmt, preset)
    print("\n" + "\n".join(lines))


def test_khronos_validator_accepts_finger_glb(exported: dict) -> None:
    for preset in PRESETS:
        report = gltf_validate(exported[("glb", preset)]["path"])
        assert report["issues"]["numErrors"] == 0, (preset, report["issues"]["messages"][:5])


def test_ufbx_reads_finger_fbx(exported: dict) -> None:
    ufbx = pytest.importorskip("ufbx")
    for preset in PRESETS:
        case = exported[("fbx", preset)]
        sk = case["motion"].skeleton
        scene = ufbx.load_file(str(case["path"]))
        nodes = {n.name: n for n in scene.nodes}
        for c in range(len(FINGER_JOINT_NAMES)):
            name = sk.names[24 + c]
            assert name in nodes, (preset, name)
            assert nodes[name].parent.name == sk.names[sk.parents[24 + c]], (preset, name)
        skin_clusters = {cl.name for d in scene.skin_deformers for cl in d.clusters if cl.num_weights > 0}
        assert {sk.names[24 + c] for c in range(30)} <= skin_clusters, preset
