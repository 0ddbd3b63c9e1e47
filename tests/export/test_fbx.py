"""Binary FBX export, checked by two independent readers: ufbx (pyufbx) and Blender's own FBX importer (bpy,
run in a subprocess). The motion is real: CMU clips retargeted onto a body (shared synthetic gt.npz), turned
into joint rotations on our skeleton by a small direction-matching solve written here."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from conftest import require_shared
from helpers import PROBE
from mocap_cli.body.mesh import SkinnedMesh, capsule_mesh
from mocap_cli.core.motion import Motion
from mocap_cli.core.rotations import (
    frame_from_vectors,
    quat_apply,
    quat_between,
    quat_conj,
    quat_continuous,
    quat_from_matrix,
    quat_identity,
    quat_mul,
    quat_to_matrix,
)
from mocap_cli.core.skeleton import Skeleton, canonical_skeleton, forward_kinematics
from mocap_cli.errors import MocapError
from mocap_cli.export.fbx import euler_xyz_degrees, time_mode, write_fbx
from mocap_cli.export.fbx_binary import FbxNode, Float32, Int16, Int64, encode_fbx

CHECK_JOINTS = ("pelvis", "head", "left_wrist", "right_wrist", "left_ankle", "right_ankle")

# (case id, clip, fps, unit, up axis, with mesh, Blender automatic_bone_orientation)
CASES = [
    ("m_30fps_mesh", "dance_05_02", 30.0, "m", "Y", True, False),
    ("cm_23.976fps_mesh", "jump_13_11", 23.976, "cm", "Y", True, True),
    ("m_20fps_zup", "turn_105_53", 20.0, "m", "Z", False, False),
]


# -- test material ------------------------------------------------------------------------------------------


def solve_rotations(skel: Skeleton, x: np.ndarray) -> np.ndarray:
    """Local rotations (F, J, 4) that point every bone of ``skel`` (T-pose rest) along the measured joints
    ``x`` (F, J, 3): single-child joints by the smallest swing relative to the parent, branching joints
    (pelvis, upper spine) by matching the frame (chain direction, left-to-right direction)."""
    num_frames, num_joints = x.shape[:2]
    glob = np.zeros((num_frames, num_joints, 4))
    local = np.zeros_like(glob)
    off = skel.offsets
    for j in range(num_joints):
        p = skel.parents[j]
        gp = glob[:, p] if p >= 0 else quat_identity((num_frames,))
        kids = skel.children(j)
        if not kids:
            g = gp
        elif len(kids) == 1:
            c = kids[0]
            rest_dir = quat_apply(gp, np.broadcast_to(off[c], (num_frames, 3)))
            g = quat_mul(quat_between(rest_dir, x[:, c] - x[:, j]), gp)
        else:
            names = [skel.names[c] for c in kids]
            prim = kids[next(i for i, n in enumerate(names) if not n.startswith(("left_", "right_")))]
            left = kids[next(i for i, n in enumerate(names) if n.startswith("left_"))]
            right = kids[next(i for i, n in enumerate(names) if n.startswith("right_"))]
            rest = frame_from_vectors(off[prim], off[left] - off[right])
            obs = frame_from_vectors(x[:, prim] - x[:, j], x[:, left] - x[:, right])
            g = quat_from_matrix(obs @ rest.T)
        glob[:, j] = g
        local[:, j] = quat_mul(quat_conj(gp), g)
    return quat_continuous(local, axis=0)


def clip_motion(clip: str, fps: float) -> Motion:
    gt = np.load(require_shared("data", "synthetic", clip, "gt.npz"))
    x = gt["joints3d_world"][:, :24].astype(np.float64)
    skel = canonical_skeleton().fitted_to(x)
    rot = solve_rotations(skel, x)
    return Motion.from_rotations(fps, skel, rot, x[:, 0], provenance={"clip": clip})


def to_blender(p: np.ndarray) -> np.ndarray:
    """Our frame (Y up, faces +Z) to Blender's (Z up, faces -Y)."""
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def linear_blend_skinning(motion: Motion, mesh: SkinnedMesh, frame: int) -> np.ndarray:
    rest = motion.skeleton.rest_positions()
    pos, glob = forward_kinematics(
        motion.skeleton, motion.rotations[frame : frame + 1], motion.root_translation[frame : frame + 1]
    )
    rot = quat_to_matrix(glob[0])
    out = np.zeros(mesh.vertices.shape)
    for k in range(mesh.joints.shape[1]):
        j = mesh.joints[:, k]
        moved = np.einsum("vab,vb->va", rot[j], mesh.vertices - rest[j]) + pos[0, j]
        out += mesh.weights[:, k : k + 1] * moved
    return out


def exact_ktimes(num_frames: int, fps: float) -> list[int]:
    """Frame i at i / fps seconds, 46186158000 ticks per second, rounded (exact rational arithmetic)."""
    per_frame = Fraction(46186158000) / Fraction(fps)
    return [round(i * per_frame) for i in range(num_frames)]


def run_blender(request: list[dict], tmp: Path) -> list[dict]:
    if importlib.util.find_spec("bpy") is None:
        pytest.skip("bpy (Blender as a Python module) is not installed")
    req, res = tmp / "request.json", tmp / "result.json"
    req.write_text(json.dumps(request))
    proc = subprocess.run([sys.executable, str(PROBE), str(req), str(res)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(res.read_text())


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    tmp = tmp_path_factory.mktemp("fbx")
    out: dict[str, dict] = {}
    for case_id, clip, fps, unit, up, with_mesh, auto_orient in CASES:
        motion = clip_motion(clip, fps)
        mesh = capsule_mesh(motion.skeleton) if with_mesh else None
        path = tmp / f"{case_id}.fbx"
        write_fbx(motion, path, mesh=mesh, unit=unit, up_axis=up)
        out[case_id] = dict(motion=motion, mesh=mesh, path=path, fps=fps, unit=unit, up=up, auto_orient=auto_orient)
    return out


@pytest.fixture(scope="module")
def blender(exported: dict[str, dict], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """One Blender subprocess imports every case and parses one file with Blender's low-level reader."""
    request = []
    for case in exported.values():
        n = case["motion"].num_frames
        vertex_ids = list(range(0, len(case["mesh"].vertices), 7)) if case["mesh"] is not None else []
        request.append(
            {
                "path": str(case["path"]),
                "frames": [0, n // 2, n - 1],
                "fps": case["fps"],
                "vertex_ids": vertex_ids,
                "automatic_bone_orientation": case["auto_orient"],
            }
        )
    first = next(iter(exported.values()))
    request.append({"parse": str(first["path"])})
    results = run_blender(request, tmp_path_factory.mktemp("blender"))
    out = dict(zip(exported, results[:-1]))
    out["__parse__"] = results[-1]
    return out


# -- unit checks ------------------------------------------------------------------------------------------


def test_time_mode_picks_standard_rates_and_custom_otherwise() -> None:
    assert time_mode(30.0) == 6
    assert time_mode(24.0) == 11
    assert time_mode(25.0) == 10
    assert time_mode(60.0) == 3
    assert time_mode(29.97) == 9  # NTSC 30000/1001
    assert time_mode(30000 / 1001) == 9
    assert time_mode(23.976) == 13  # film NTSC 24000/1001
    assert time_mode(20.0) == 14
    assert time_mode(12.5) == 14
    assert time_mode(29.0) == 14


def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def test_euler_xyz_reproduces_rotation_and_stays_continuous() -> None:
    rng = np.random.default_rng(3)
    # FBX eEulerXYZ: rotate about X, then Y, then Z.
    angles = rng.uniform(-80, 80, size=(50, 3))
    mats = np.stack([_rz(np.radians(z)) @ _ry(np.radians(y)) @ _rx(np.radians(x)) for x, y, z in angles])
    got = euler_xyz_degrees(mats[:, None])[:, 0]
    np.testing.assert_allclose(got, angles, atol=1e-9)
    # Two full turns about Y while tilted: no 360° jumps, the angles keep growing past 180.
    t = np.linspace(0, 4 * np.pi, 400)
    spin = np.stack([_ry(a) @ _rx(0.3) for a in t])[:, None]
    e = euler_xyz_degrees(spin)[:, 0]
    assert np.abs(np.diff(e, axis=0)).max() < 5.0
    rebuilt = np.stack([_rz(np.radians(z)) @ _ry(np.radians(y)) @ _rx(np.radians(x)) for x, y, z in e])
    np.testing.assert_allclose(rebuilt, spin[:, 0], atol=1e-9)
    assert np.ptp(e, axis=0).max() > 600.0


def test_capsule_mesh_is_closed_skinned_and_outward() -> None:
    skel = canonical_skeleton()
    mesh = capsule_mesh(skel)
    assert mesh.joints.shape == mesh.weights.shape == (len(mesh.vertices), 4)
    np.testing.assert_allclose(mesh.weights.sum(1), 1.0)
    assert mesh.joints.max() < skel.num_joints
    # Every edge shared by exactly two triangles (closed surfaces).
    edges = np.sort(mesh.faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    assert (counts == 2).all()
    # Outward winding: each capsule's signed volume is positive (sum over all capsules too).
    tri = mesh.vertices[mesh.faces]
    volume = np.einsum("ti,ti->t", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    assert volume > 0
    height = np.ptp(mesh.vertices[:, 1])
    assert 1.7 < height < 2.0  # canonical 1.75 m body, head cap on top, feet capsules below the ankles


def test_write_fbx_rejects_bad_options(tmp_path: Path) -> None:
    motion = Motion.from_rotations(30.0, canonical_skeleton(), quat_identity((2, 24)), np.zeros((2, 3)))
    with pytest.raises(MocapError):
        write_fbx(motion, tmp_path / "a.fbx", unit="mm")  # type: ignore[arg-type]
    with pytest.raises(MocapError):
        write_fbx(motion, tmp_path / "a.fbx", up_axis="X")  # type: ignore[arg-type]
    bad = Motion.from_rotations(30.0, canonical_skeleton(), quat_identity((2, 24)), np.full((2, 3), np.nan))
    with pytest.raises(MocapError):
        write_fbx(bad, tmp_path / "a.fbx")
    assert not (tmp_path / "a.fbx").exists()


# -- ufbx (independent C reader) -------------------------------------------------------------------------


def test_ufbx_reads_tree_settings_skin_and_curves(exported: dict[str, dict]) -> None:
    ufbx = pytest.importorskip("ufbx")
    for case_id, case in exported.items():
        motion, mesh, fps = case["motion"], case["mesh"], case["fps"]
        skel = motion.skeleton
        scene = ufbx.load_file(str(case["path"]))
        assert scene.metadata.version == 7400 and not scene.metadata.ascii
        st = scene.settings
        assert st.frames_per_second == pytest.approx(fps, rel=1e-4), case_id
        assert st.time_mode == {30.0: 6, 23.976: 13, 20.0: 14}[fps]
        assert st.unit_meters == pytest.approx({"m": 1.0, "cm": 0.01}[case["unit"]])
        axes = ufbx.CoordinateAxis
        assert st.axes.right == axes.COORDINATE_AXIS_POSITIVE_X
        if case["up"] == "Y":
            assert (st.axes.up, st.axes.front) == (axes.COORDINATE_AXIS_POSITIVE_Y, axes.COORDINATE_AXIS_POSITIVE_Z)
        else:
            assert (st.axes.up, st.axes.front) == (axes.COORDINATE_AXIS_POSITIVE_Z, axes.COORDINATE_AXIS_NEGATIVE_Y)

        # Node tree: scene root -> Armature -> pelvis -> ... with our names and parents.
        nodes = {n.name: n for n in scene.nodes}
        assert nodes["Armature"].parent.is_root
        for j, name in enumerate(skel.names):
            parent = skel.parents[j]
            assert nodes[name].parent.name == ("Armature" if parent < 0 else skel.names[parent])
            assert nodes[name].bone is not None
        # Rest pose (static properties): joint world positions = skeleton rest, in file units and axes.
        scale = {"m": 1.0, "cm": 100.0}[case["unit"]]
        rest = skel.rest_positions() * scale
        if case["up"] == "Z":
            rest = to_blender(rest)
        world = np.array([np.asarray(nodes[n].node_to_world) for n in skel.names])  # rows: X, Y, Z, origin
        np.testing.assert_allclose(world[:, 3, :3], rest, atol=1e-5 * scale)
        # Each joint's +Y axis runs along its bone (towards its only child).
        for j in range(skel.num_joints):
            kids = skel.children(j)
            if len(kids) == 1:
                bone = rest[kids[0]] - rest[j]
                assert np.dot(world[j, 1, :3], bone / np.linalg.norm(bone)) > 0.9999

        # Animation: one stack spanning the clip, 3 curves per joint rotation + 3 for root translation,
        # one key per frame, the last at (F - 1) / fps seconds.
        n = motion.num_frames
        stack = scene.anim_stacks[0]
        assert stack.time_end == pytest.approx((n - 1) / fps, rel=1e-9)
        assert len(scene.anim_curves) == 3 * (skel.num_joints + 1)
        for curve in scene.anim_curves:
            assert curve.num_keyframes == n
            assert curve.min_time == 0.0 and curve.max_time == pytest.approx((n - 1) / fps, rel=1e-9)

        if mesh is None:
            assert len(scene.meshes) == 0
            continue
        assert len(scene.meshes) == 1
        m = scene.meshes[0]
        assert m.num_vertices == len(mesh.vertices) and m.num_triangles == len(mesh.faces)
        clusters = scene.skin_deformers[0].clusters
        assert len(clusters) == skel.num_joints
        expected = {
            name: int(((mesh.joints == j) & (mesh.weights > 0)).any(1).sum()) for j, name in enumerate(skel.names)
        }
        assert {c.name: c.num_weights for c in clusters} == expected


# -- Blender (the importer creators use) ------------------------------------------------------------------


def test_blender_low_level_reader_sees_exact_key_times_and_settings(
    exported: dict[str, dict], blender: dict[str, dict]
) -> None:
    tree = blender["__parse__"]
    case = next(iter(exported.values()))
    motion = case["motion"]
    assert tree["version"] == 7400
    top = {n["name"]: n for n in tree["nodes"]}
    assert list(top) == [
        "FBXHeaderExtension",
        "FileId",
        "CreationTime",
        "Creator",
        "GlobalSettings",
        "Documents",
        "References",
        "Definitions",
        "Objects",
        "Connections",
        "Takes",
    ]
    props = {p["props"][0]: p for p in top["GlobalSettings"]["children"][1]["children"]}
    assert props["UpAxis"]["props"][4] == 1 and props["UnitScaleFactor"]["props"][4] == 100.0
    assert props["TimeMode"]["props"][4] == 6 and props["CustomFrameRate"]["props"][4] == 30.0
    curves = [o for o in top["Objects"]["children"] if o["name"] == "AnimationCurve"]
    assert len(curves) == 3 * 25
    want = exact_ktimes(motion.num_frames, case["fps"])
    for curve in curves:
        fields = {c["name"]: c for c in curve["children"]}
        assert fields["KeyTime"]["types"] == "l" and fields["KeyValueFloat"]["types"] == "f"
        assert fields["KeyTime"]["props"][0] == want
        assert fields["KeyVer"]["props"][0] == 4008


def test_blender_imports_skeleton_fps_and_animation(exported: dict[str, dict], blender: dict[str, dict]) -> None:
    report = []
    for case_id, case in exported.items():
        res = blender[case_id]
        motion, fps = case["motion"], case["fps"]
        skel = motion.skeleton
        assert res["import_result"] == ["FINISHED"], case_id
        assert res["armatures"] == ["Armature"]
        assert res["bones"] == {n: (skel.names[p] if p >= 0 else None) for n, p in zip(skel.names, skel.parents)}
        assert res["fps"] / res["fps_base"] == pytest.approx(fps, rel=1e-4), case_id
        # The importer maps key times to frames with the rounded integer fps (scene.render.fps); frame 1 = t0.
        n = motion.num_frames
        assert res["action_frame_range"] == pytest.approx([1.0, 1.0 + (n - 1) / fps * res["fps"]], abs=1e-3)
        worst = 0.0
        for frame_key, entry in res["frames"].items():
            f = int(frame_key)
            got = np.array([entry["heads"][name] for name in skel.names])
            want = to_blender(motion.joints[f])
            err = np.linalg.norm(got - want, axis=-1)
            worst = max(worst, float(err.max()))
            named = [skel.index(n) for n in CHECK_JOINTS]
            assert err[named].max() < 0.01, (case_id, f, dict(zip(CHECK_JOINTS, err[named])))
            assert err.max() < 0.01, (case_id, f)
        report.append(f"{case_id}: max joint error {worst * 1000:.4f} mm")
        if not case["auto_orient"]:
            # Without Blender's bone-orientation guessing, bones follow the file's node +Y axes: they must run
            # from each joint towards its (only) child, not all point up.
            rest = to_blender(skel.rest_positions())
            for j, name in enumerate(skel.names):
                kids = skel.children(j)
                if len(kids) == 1:
                    want = rest[kids[0]] - rest[j]
                    cos = np.dot(res["bone_axes"][name], want / np.linalg.norm(want))
                    assert cos > 0.999, (case_id, name, cos)
    print("\n" + "\n".join(report))


def test_blender_skins_mesh_to_armature(exported: dict[str, dict], blender: dict[str, dict]) -> None:
    report = []
    for case_id, case in exported.items():
        mesh, motion = case["mesh"], case["motion"]
        res = blender[case_id]
        if mesh is None:
            assert res["meshes"] == []
            continue
        assert res["meshes"] == [mesh.name]
        assert res["mesh_parent"] == "Armature"
        assert ["ARMATURE", "Armature"] in res["modifiers"]
        assert set(res["vertex_groups"]) == set(motion.skeleton.names)
        assert res["num_vertices"] == len(mesh.vertices)
        assert res["weight_sum_min"] == pytest.approx(1.0, abs=1e-5)
        assert res["weight_sum_max"] == pytest.approx(1.0, abs=1e-5)
        rest_height = np.ptp(mesh.vertices[:, 1])
        assert res["rest_height"] == pytest.approx(rest_height, abs=0.01)
        assert 1.4 < res["rest_height"] < 2.2
        ids = list(range(0, len(mesh.vertices), 7))
        worst = 0.0
        for frame_key, entry in res["frames"].items():
            want = to_blender(linear_blend_skinning(motion, mesh, int(frame_key))[ids])
            err = np.linalg.norm(np.array(entry["vertices"]) - want, axis=-1).max()
            worst = max(worst, float(err))
        assert worst < 0.01, case_id
        report.append(f"{case_id}: max skinned vertex error {worst * 1000:.4f} mm over {len(ids)} vertices x 3 frames")
    print("\n" + "\n".join(report))


def test_every_property_type_round_trips_through_blenders_reader(tmp_path: Path) -> None:
    """All FBX property types, small and zlib-compressed arrays, read back by Blender's parse_fbx."""
    big = np.arange(1000, dtype=np.float64) * 0.5
    node = FbxNode("Probe", [True, Int16(-7), 123456, Int64(-(2**40)), Float32(1.5), 2.25, "héllo", b"\x00\xff"])
    node.add(
        "Arrays",
        np.array([1.5, -2.0], dtype=np.float32),
        big,
        np.array([-1, 2], dtype=np.int32),
        np.array([2**40, -3], dtype=np.int64),
        np.array([True, False, True]),
    )
    node.add("Empty")
    node.add("EmptyLast")
    path = tmp_path / "types.fbx"
    path.write_bytes(encode_fbx([node, FbxNode("After", [1])]))
    tree = run_blender([{"parse": str(path)}], tmp_path)[0]
    probe, after = tree["nodes"]
    assert probe["types"] == "CYILFDSR"
    assert probe["props"] == [True, -7, 123456, -(2**40), 1.5, 2.25, "héllo", {"bytes": "00ff"}]
    arrays = probe["children"][0]
    assert arrays["types"] == "fdilb"
    assert arrays["props"][0] == [1.5, -2.0] and arrays["props"][1] == big.tolist()
    assert arrays["props"][2] == [-1, 2] and arrays["props"][3] == [2**40, -3]
    assert arrays["props"][4] == [True, False, True]
    assert [c["name"] for c in probe["children"]] == ["Arrays", "Empty", "EmptyLast"]
    assert after == {"name": "After", "types": "I", "props": [1], "children": []}
