"""Binary FBX 7.4 export of a ``Motion`` (skeleton + animation) and an optional skinned mesh.

Scene layout: an armature root ``Model`` (Null) holding one ``LimbNode`` model per joint (rest offset as
``Lcl Translation``, Euler XYZ degrees as ``Lcl Rotation``; each node's +Y runs along its bone), the root
joint's translation and every joint's rotation keyed once per frame at the exact source frame times, and
optionally a mesh skinned by one ``Cluster`` per joint with a ``BindPose``. The rest pose is the skeleton's
T-pose (the Motion's identity rotations).

Axes: the Motion is Y up, metres, facing +Z. ``up_axis="Y"`` writes it unchanged and declares Y up (front
+Z); ``up_axis="Z"`` rotates everything to Z up, facing -Y (Blender's own frame) and declares that.
Units: FBX's base unit is the centimetre; ``unit="m"`` keeps metre values with UnitScaleFactor 100,
``unit="cm"`` writes centimetre values with UnitScaleFactor 1. Either way importers get real-world sizes.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np

from mocap_cli import __version__
from mocap_cli.body.mesh import SkinnedMesh
from mocap_cli.core.motion import Motion
from mocap_cli.core.rotations import euler_from_matrix, frame_from_vectors, quat_to_matrix
from mocap_cli.core.skeleton import Skeleton, canonical_name, leaf_tip
from mocap_cli.errors import MocapError
from mocap_cli.export.fbx_binary import (
    CREATION_TIME,
    FBX_VERSION,
    FILE_ID,
    FbxNode,
    Int64,
    encode_fbx,
)

Unit = Literal["m", "cm"]
UpAxis = Literal["Y", "Z"]

KTIME_PER_SECOND = 46186158000  # FBX 7.x time unit ("ktime") ticks per second

# FBX TimeMode enum for the standard rates (FbxTime::EMode); anything else is eCustom (14) + CustomFrameRate.
_STANDARD_RATES: tuple[tuple[float, int], ...] = (
    (120.0, 1),
    (100.0, 2),
    (60.0, 3),
    (50.0, 4),
    (48.0, 5),
    (30.0, 6),
    (30.0 / 1.001, 9),
    (25.0, 10),
    (24.0, 11),
    (24.0 / 1.001, 13),
    (96.0, 15),
    (72.0, 16),
    (60.0 / 1.001, 17),
    (120.0 / 1.001, 18),
)
TIME_MODE_CUSTOM = 14

_UNIT_SCALE = {"m": 100.0, "cm": 1.0}  # FBX UnitScaleFactor: centimetres per file unit
_VALUE_SCALE = {"m": 1.0, "cm": 100.0}  # file units per metre

# Basis change from the Motion's frame (Y up, body facing +Z) to the file's frame, and the FBX axis triplets
# ((axis, sign) for Up, Front, Coord) declaring that frame. Both are the triplets Blender itself writes for
# "Y up, -Z forward" and "Z up, -Y forward"; importers map either to Z up as (x, y, z)_Yup -> (x, -z, y), so
# the body faces -Y (towards Blender's front view) and stands upright.
_AXES = {
    "Y": (np.eye(3), ((1, 1), (2, 1), (0, 1))),
    "Z": (np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]), ((2, 1), (1, -1), (0, 1))),
}

# KeyAttrFlags: linear interpolation with auto tangents (0x4 | 0x100 | 0x2000 | 0x4000); KeyAttrDataFloat
# holds default tangent weights/velocities, stored as the bit pattern FBX SDK files carry (0, 0, 255790911, 0
# when printed as integers in ASCII files).
_KEY_FLAGS = 0x4 | 0x100 | 0x2000 | 0x4000
_KEY_DATA = np.array([0, 0, 255790911, 0], dtype=np.int32).view(np.float32)
TAKE_NAME = "Take 001"


def time_mode(fps: float) -> int:
    """FBX TimeMode for a frame rate: the standard enum when ``fps`` is one (29.97 → NTSC), else custom."""
    for rate, mode in _STANDARD_RATES:
        if abs(fps - rate) <= 1e-4 * rate:
            return mode
    return TIME_MODE_CUSTOM


def key_times(num_frames: int, fps: float) -> np.ndarray:
    """FBX ktime of every frame (frame i at i / fps seconds), int64, rounded to the nearest tick in exact
    integer arithmetic (float products drift by a tick on long clips)."""
    num, den = Fraction(fps).as_integer_ratio()
    step = KTIME_PER_SECOND * den
    return np.array([(2 * i * step + num) // (2 * num) for i in range(num_frames)], dtype=np.int64)


def euler_xyz_degrees(matrices: np.ndarray) -> np.ndarray:
    """FBX eEulerXYZ angles (degrees) of rotation matrices (F, J, 3, 3), continuous over time (axis 0).

    FBX XYZ rotates about X first, then Y, then Z (R = Rz @ Ry @ Rx on column vectors). Of the two Euler
    triples of each rotation, and their 360° shifts, each frame takes the one nearest the previous frame."""
    zyx = euler_from_matrix(matrices, "ZYX")  # R = Rz(a0) @ Ry(a1) @ Rx(a2)
    e = np.degrees(zyx[..., ::-1])
    # (x, y, z) and (x + 180, 180 - y, z + 180) are the same rotation.
    alt = np.stack([e[..., 0] + 180.0, 180.0 - e[..., 1], e[..., 2] + 180.0], axis=-1)
    cands = np.stack([e, alt], axis=1)  # (F, 2, J, 3)
    out = np.empty_like(e)
    out[0] = e[0]
    cols = np.arange(e.shape[1])
    prev = e[0]
    for f in range(1, len(e)):
        c = cands[f] - 360.0 * np.round((cands[f] - prev) / 360.0)
        pick = np.argmin(np.abs(c - prev).sum(-1), axis=0)
        prev = out[f] = c[pick, cols]
    return out


def bone_frames(skel: Skeleton) -> np.ndarray:
    """Rest orientation (J, 3, 3), world frame, of each joint's bone: +Y along the bone (towards the only
    child, the spine/neck child at a branch, the leaf tip at an end), +Z as close to the body's forward
    (+Z) as that allows (+Y up where the bone itself points forward). Importers that show bones along
    the node's +Y (Blender's default) then draw a proper skeleton instead of bones all pointing up."""
    rest = skel.rest_positions()
    frames = np.zeros((skel.num_joints, 3, 3))
    for j in range(skel.num_joints):
        kids = skel.children(j)
        # Sides by canonical name, so renamed (rig preset) skeletons get the same bone frames.
        sides = [canonical_name(skel, c) or skel.names[c] for c in kids]
        central = [c for c, n in zip(kids, sides) if not n.startswith(("left_", "right_"))]
        tip = leaf_tip(skel, j) if not kids else None
        if len(kids) == 1:
            d = skel.offsets[kids[0]]
        elif central:
            d = rest[central[0]] - rest[j]
        elif kids:
            d = rest[kids].mean(axis=0) - rest[j]
        elif tip is not None:
            d = tip
        else:
            d = skel.offsets[j] if skel.parents[j] >= 0 else np.array([0.0, 1.0, 0.0])
        if np.linalg.norm(d) < 1e-9:
            d = np.array([0.0, 1.0, 0.0])
        d = d / np.linalg.norm(d)
        ref = np.array([0.0, 0.0, 1.0]) if abs(d[2]) < 0.9 else np.array([0.0, 1.0, 0.0])
        f = frame_from_vectors(d, ref)  # columns: bone axis, reference made orthogonal, their cross
        frames[j] = f[:, [2, 0, 1]]  # X = Y x Z, Y = bone, Z = reference
    return frames


def _fbx_matrix(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """16 doubles of a 4x4 transform as FBX stores it (column-major; translation in elements 12-14)."""
    m = np.eye(4)
    m[:3, :3] = rotation
    m[:3, 3] = translation
    return np.ascontiguousarray(m.T).reshape(16)


class _Ids:
    def __init__(self) -> None:
        self._next = 1_000_000

    def new(self) -> Int64:
        self._next += 1
        return Int64(self._next)


def _props70(parent: FbxNode) -> FbxNode:
    return parent.add("Properties70")


def _p(props: FbxNode, name: str, kind: str, label: str, flags: str, *values: object) -> None:
    props.add("P", name, kind, label, flags, *values)  # type: ignore[arg-type]


def _vec(props: FbxNode, name: str, kind: str, flags: str, v: np.ndarray) -> None:
    _p(props, name, kind, "" if kind.startswith("Lcl") else "Vector", flags, *(float(x) for x in v))


def _header(creator: str) -> list[FbxNode]:
    ext = FbxNode("FBXHeaderExtension")
    ext.add("FBXHeaderVersion", 1003)
    ext.add("FBXVersion", FBX_VERSION)
    ext.add("EncryptionType", 0)
    stamp = ext.add("CreationTimeStamp")
    for key, value in (
        ("Version", 1000),
        ("Year", 1970),
        ("Month", 1),
        ("Day", 1),
        ("Hour", 10),
        ("Minute", 0),
        ("Second", 0),
        ("Millisecond", 0),
    ):
        stamp.add(key, value)
    ext.add("Creator", creator)
    info = ext.add("SceneInfo", "GlobalInfo\x00\x01SceneInfo", "UserData")
    info.add("Type", "UserData")
    info.add("Version", 100)
    meta = info.add("MetaData")
    meta.add("Version", 100)
    for key in ("Title", "Subject", "Author", "Keywords", "Revision", "Comment"):
        meta.add(key, "")
    props = _props70(info)
    _p(props, "Original", "Compound", "", "")
    _p(props, "Original|ApplicationVendor", "KString", "", "", "mocap")
    _p(props, "Original|ApplicationName", "KString", "", "", "mocap")
    _p(props, "Original|ApplicationVersion", "KString", "", "", __version__)
    _p(props, "Original|DateTime_GMT", "DateTime", "", "", "01/01/1970 10:00:00.000")
    return [ext, FbxNode("FileId", [FILE_ID]), FbxNode("CreationTime", [CREATION_TIME]), FbxNode("Creator", [creator])]


def _global_settings(up_axis: str, unit: str, fps: float, stop: int) -> FbxNode:
    gs = FbxNode("GlobalSettings")
    gs.add("Version", 1000)
    props = _props70(gs)
    (up, up_sign), (front, front_sign), (coord, coord_sign) = _AXES[up_axis][1]
    for name, value in (
        ("UpAxis", up),
        ("UpAxisSign", up_sign),
        ("FrontAxis", front),
        ("FrontAxisSign", front_sign),
        ("CoordAxis", coord),
        ("CoordAxisSign", coord_sign),
        ("OriginalUpAxis", up),
        ("OriginalUpAxisSign", up_sign),
    ):
        _p(props, name, "int", "Integer", "", value)
    _p(props, "UnitScaleFactor", "double", "Number", "", _UNIT_SCALE[unit])
    _p(props, "OriginalUnitScaleFactor", "double", "Number", "", _UNIT_SCALE[unit])
    _p(props, "AmbientColor", "ColorRGB", "Color", "", 0.0, 0.0, 0.0)
    _p(props, "DefaultCamera", "KString", "", "", "Producer Perspective")
    _p(props, "TimeMode", "enum", "", "", time_mode(fps))
    _p(props, "TimeProtocol", "enum", "", "", 2)
    _p(props, "SnapOnFrameMode", "enum", "", "", 0)
    _p(props, "TimeSpanStart", "KTime", "Time", "", Int64(0))
    _p(props, "TimeSpanStop", "KTime", "Time", "", Int64(stop))
    _p(props, "CustomFrameRate", "double", "Number", "", float(fps))
    _p(props, "CurrentTimeMarker", "int", "Integer", "", -1)
    return gs


def _definitions(counts: dict[str, int]) -> FbxNode:
    defs = FbxNode("Definitions")
    defs.add("Version", 100)
    defs.add("Count", sum(counts.values()) + 1)
    defs.add("ObjectType", "GlobalSettings").add("Count", 1)
    templates = {
        "Model": (
            "FbxNode",
            lambda p: (
                _vec(p, "Lcl Translation", "Lcl Translation", "A", np.zeros(3)),
                _vec(p, "Lcl Rotation", "Lcl Rotation", "A", np.zeros(3)),
                _vec(p, "Lcl Scaling", "Lcl Scaling", "A", np.ones(3)),
                _p(p, "RotationOrder", "enum", "", "", 0),
                _p(p, "RotationActive", "bool", "", "", 0),
                _p(p, "InheritType", "enum", "", "", 0),
                _p(p, "Visibility", "Visibility", "", "A", 1.0),
            ),
        ),
        "NodeAttribute": (
            "FbxSkeleton",
            lambda p: (
                _p(p, "Color", "ColorRGB", "Color", "", 0.8, 0.8, 0.8),
                _p(p, "Size", "double", "Number", "", 100.0),
                _p(p, "LimbLength", "double", "Number", "H", 1.0),
            ),
        ),
        "Geometry": (
            "FbxMesh",
            lambda p: (
                _p(p, "Primary Visibility", "bool", "", "", 1),
                _p(p, "Casts Shadows", "bool", "", "", 1),
                _p(p, "Receive Shadows", "bool", "", "", 1),
            ),
        ),
        "AnimationStack": (
            "FbxAnimStack",
            lambda p: (
                _p(p, "Description", "KString", "", "", ""),
                _p(p, "LocalStart", "KTime", "Time", "", Int64(0)),
                _p(p, "LocalStop", "KTime", "Time", "", Int64(0)),
                _p(p, "ReferenceStart", "KTime", "Time", "", Int64(0)),
                _p(p, "ReferenceStop", "KTime", "Time", "", Int64(0)),
            ),
        ),
        "AnimationLayer": (
            "FbxAnimLayer",
            lambda p: (
                _p(p, "Weight", "Number", "", "A", 100.0),
                _p(p, "Mute", "bool", "", "", 0),
                _p(p, "Solo", "bool", "", "", 0),
                _p(p, "Lock", "bool", "", "", 0),
                _p(p, "BlendMode", "enum", "", "", 0),
            ),
        ),
        "AnimationCurveNode": ("FbxAnimCurveNode", lambda p: (_p(p, "d", "Compound", "", ""),)),
    }
    for kind, count in counts.items():
        if count == 0:
            continue
        obj = defs.add("ObjectType", kind)
        obj.add("Count", count)
        if kind in templates:
            template_name, fill = templates[kind]
            fill(_props70(obj.add("PropertyTemplate", template_name)))
    return defs


def _model(objects: FbxNode, uid: Int64, name: str, kind: str, translation: np.ndarray, rotation: np.ndarray) -> None:
    model = objects.add("Model", uid, f"{name}\x00\x01Model", kind)
    model.add("Version", 232)
    props = _props70(model)
    _p(props, "RotationActive", "bool", "", "", 1)
    _p(props, "InheritType", "enum", "", "", 1)
    _p(props, "ScalingMax", "Vector3D", "Vector", "", 0.0, 0.0, 0.0)
    _p(props, "DefaultAttributeIndex", "int", "Integer", "", 0)
    _p(props, "RotationOrder", "enum", "", "", 0)
    _vec(props, "Lcl Translation", "Lcl Translation", "A", translation)
    _vec(props, "Lcl Rotation", "Lcl Rotation", "A", rotation)
    _vec(props, "Lcl Scaling", "Lcl Scaling", "A", np.ones(3))
    model.add("Shading", True)
    model.add("Culling", "CullingOff")


def _curve_node(
    objects: FbxNode,
    connections: list[FbxNode],
    ids: _Ids,
    layer: Int64,
    model: Int64,
    channel: str,
    prop: str,
    times: np.ndarray,
    values: np.ndarray,
) -> None:
    """One T/R curve node on ``model``'s property ``prop`` with three curves (values (F, 3))."""
    node_id = ids.new()
    cnode = objects.add("AnimationCurveNode", node_id, f"{channel}\x00\x01AnimCurveNode", "")
    props = _props70(cnode)
    for axis, v in zip("XYZ", values[0]):
        _p(props, f"d|{axis}", "Number", "", "A", float(v))
    connections.append(FbxNode("C", ["OO", node_id, layer]))
    connections.append(FbxNode("C", ["OP", node_id, model, prop]))
    for axis in range(3):
        curve_id = ids.new()
        curve = objects.add("AnimationCurve", curve_id, "\x00\x01AnimCurve", "")
        curve.add("Default", float(values[0, axis]))
        curve.add("KeyVer", 4008)
        curve.add("KeyTime", times)
        curve.add("KeyValueFloat", values[:, axis].astype(np.float32))
        curve.add("KeyAttrFlags", np.array([_KEY_FLAGS], dtype=np.int32))
        curve.add("KeyAttrDataFloat", _KEY_DATA.copy())
        curve.add("KeyAttrRefCount", np.array([len(times)], dtype=np.int32))
        connections.append(FbxNode("C", ["OP", curve_id, node_id, f"d|{'XYZ'[axis]}"]))


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = vertices[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # area-weighted
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_n)
    return normals / np.maximum(np.linalg.norm(normals, axis=-1, keepdims=True), 1e-12)


def _check_mesh(mesh: SkinnedMesh, num_joints: int) -> None:
    v, f, j, w = mesh.vertices, mesh.faces, mesh.joints, mesh.weights
    if v.ndim != 2 or v.shape[1] != 3 or f.ndim != 2 or f.shape[1] != 3:
        raise MocapError("The mesh to export is malformed (vertices must be (V, 3), faces (T, 3)).")
    if j.shape != (len(v), 4) or w.shape != (len(v), 4):
        raise MocapError("The mesh to export is malformed (joints and weights must be (V, 4)).")
    if not (np.isfinite(v).all() and np.isfinite(w).all()):
        raise MocapError("The mesh to export contains NaN or infinite values.")
    if len(f) and (f.min() < 0 or f.max() >= len(v)):
        raise MocapError("The mesh to export has faces pointing at missing vertices.")
    if (j[w > 0] < 0).any() or (j[w > 0] >= num_joints).any():
        raise MocapError("The mesh to export is skinned to joints the skeleton does not have.")


def build_fbx(
    motion: Motion,
    *,
    mesh: SkinnedMesh | None = None,
    unit: Unit = "m",
    up_axis: UpAxis = "Y",
    creator: str = f"mocap {__version__}",
    armature_name: str = "Armature",
) -> list[FbxNode]:
    """The FBX node tree (top-level nodes) for a motion and an optional skinned mesh."""
    if unit not in _UNIT_SCALE:
        raise MocapError(f"Unknown FBX unit {unit!r}; use 'm' or 'cm'.")
    if up_axis not in _AXES:
        raise MocapError(f"Unknown FBX up axis {up_axis!r}; use 'Y' or 'Z'.")
    if motion.num_frames < 1:
        raise MocapError("The motion has no frames, so there is nothing to export to FBX.")
    if not (np.isfinite(motion.rotations).all() and np.isfinite(motion.root_translation).all()):
        raise MocapError("The motion contains NaN or infinite values; re-run the estimate before exporting to FBX.")
    skel = motion.skeleton
    num_joints = skel.num_joints
    if mesh is not None:
        _check_mesh(mesh, num_joints)
    basis, _ = _AXES[up_axis]
    scale = _VALUE_SCALE[unit]
    fps = float(motion.fps)
    times = key_times(motion.num_frames, fps)
    stop = int(times[-1])

    # Local rotations in the file's basis (conjugated by the basis change) as continuous Euler XYZ.
    # Each joint's node frame is its bone frame (+Y along the bone, see bone_frames), so the Motion's
    # local rotation L (in the parent joint's rest frame) becomes B_parent^T L B_joint in the file.
    frames = basis @ bone_frames(skel)  # (J, 3, 3) rest bone orientations in the file's world
    local = basis @ quat_to_matrix(motion.rotations) @ basis.T
    parent_frames = np.stack([frames[p] if p >= 0 else np.eye(3) for p in skel.parents])
    node_rot = np.swapaxes(parent_frames, -1, -2) @ local @ frames
    euler = euler_xyz_degrees(node_rot)
    rest_euler = euler_xyz_degrees((np.swapaxes(parent_frames, -1, -2) @ frames)[None])[0]
    offsets = np.einsum("jba,jb->ja", parent_frames, scale * skel.offsets @ basis.T)
    root_path = scale * motion.root_translation @ basis.T
    rest_world = scale * skel.rest_positions() @ basis.T

    ids = _Ids()
    objects = FbxNode("Objects")
    connections: list[FbxNode] = []

    def connect(child: Int64, parent: Int64 | int) -> None:
        connections.append(FbxNode("C", ["OO", child, parent if isinstance(parent, Int64) else Int64(parent)]))

    counts = {
        "Model": 0,
        "NodeAttribute": 0,
        "Geometry": 0,
        "Deformer": 0,
        "Pose": 0,
        "AnimationStack": 1,
        "AnimationLayer": 1,
        "AnimationCurveNode": 0,
        "AnimationCurve": 0,
    }

    # Armature root (Null) and one LimbNode per joint.
    armature_id, armature_attr = ids.new(), ids.new()
    attr = objects.add("NodeAttribute", armature_attr, f"{armature_name}\x00\x01NodeAttribute", "Null")
    attr.add("TypeFlags", "Null")
    _model(objects, armature_id, armature_name, "Null", np.zeros(3), np.zeros(3))
    connect(armature_attr, armature_id)
    connect(armature_id, 0)
    counts["Model"] += 1
    counts["NodeAttribute"] += 1

    joint_ids: list[Int64] = []
    for j, name in enumerate(skel.names):
        uid, attr_id = ids.new(), ids.new()
        joint_ids.append(uid)
        attr = objects.add("NodeAttribute", attr_id, f"{name}\x00\x01NodeAttribute", "LimbNode")
        _p(_props70(attr), "Size", "double", "Number", "", 100.0)
        attr.add("TypeFlags", "Skeleton")
        _model(objects, uid, name, "LimbNode", offsets[j], rest_euler[j])
        connect(attr_id, uid)
        parent = skel.parents[j]
        connect(uid, armature_id if parent < 0 else joint_ids[parent])
        counts["Model"] += 1
        counts["NodeAttribute"] += 1

    if mesh is not None:
        mesh_id, geom_id, skin_id, pose_id = ids.new(), ids.new(), ids.new(), ids.new()
        verts = scale * np.asarray(mesh.vertices, dtype=np.float64) @ basis.T
        faces = np.asarray(mesh.faces, dtype=np.int64)
        geom = objects.add("Geometry", geom_id, f"{mesh.name}\x00\x01Geometry", "Mesh")
        _props70(geom)
        geom.add("GeometryVersion", 124)
        geom.add("Vertices", verts.reshape(-1))
        # Each polygon's last index is stored as -(index + 1).
        poly = faces.copy()
        poly[:, 2] = -poly[:, 2] - 1
        geom.add("PolygonVertexIndex", poly.reshape(-1).astype(np.int32))
        normals_elem = geom.add("LayerElementNormal", 0)
        normals_elem.add("Version", 101)
        normals_elem.add("Name", "")
        normals_elem.add("MappingInformationType", "ByPolygonVertex")
        normals_elem.add("ReferenceInformationType", "Direct")
        normals_elem.add("Normals", _vertex_normals(verts, faces)[faces].reshape(-1))
        layer = geom.add("Layer", 0)
        layer.add("Version", 100)
        layer_elem = layer.add("LayerElement")
        layer_elem.add("Type", "LayerElementNormal")
        layer_elem.add("TypedIndex", 0)

        _model(objects, mesh_id, mesh.name, "Mesh", np.zeros(3), np.zeros(3))
        connect(geom_id, mesh_id)
        connect(mesh_id, armature_id)  # mesh lives under the armature, at its identity transform
        counts["Model"] += 1
        counts["Geometry"] += 1

        skin = objects.add("Deformer", skin_id, f"{mesh.name}\x00\x01Deformer", "Skin")
        skin.add("Version", 101)
        skin.add("Link_DeformAcuracy", 50.0)
        skin.add("SkinningType", "Linear")
        connect(skin_id, geom_id)
        counts["Deformer"] += 1
        weights = np.asarray(mesh.weights, dtype=np.float64)
        joints = np.asarray(mesh.joints, dtype=np.int64)
        for j, name in enumerate(skel.names):
            sel = (joints == j) & (weights > 0)
            vidx = np.nonzero(sel.any(axis=1))[0]
            w = (weights * sel).sum(axis=1)[vidx]
            cluster_id = ids.new()
            cluster = objects.add("Deformer", cluster_id, f"{name}\x00\x01SubDeformer", "Cluster")
            cluster.add("Version", 100)
            cluster.add("UserData", "", "")
            cluster.add("Indexes", vidx.astype(np.int32))
            cluster.add("Weights", w.astype(np.float64))
            # TransformLink is the bone's world bind pose; Transform maps mesh space (the mesh sits at the
            # armature's identity) into that bone's bind space.
            cluster.add("Transform", _fbx_matrix(frames[j].T, -frames[j].T @ rest_world[j]))
            cluster.add("TransformLink", _fbx_matrix(frames[j], rest_world[j]))
            connect(cluster_id, skin_id)
            connect(joint_ids[j], cluster_id)
            counts["Deformer"] += 1

        pose = objects.add("Pose", pose_id, f"{mesh.name}\x00\x01Pose", "BindPose")
        pose.add("Type", "BindPose")
        pose.add("Version", 100)
        pose.add("NbPoseNodes", num_joints + 2)
        for uid, rotation, position in [
            (armature_id, np.eye(3), np.zeros(3)),
            (mesh_id, np.eye(3), np.zeros(3)),
        ] + list(zip(joint_ids, frames, rest_world)):
            node = pose.add("PoseNode")
            node.add("Node", uid)
            node.add("Matrix", _fbx_matrix(rotation, position))
        counts["Pose"] += 1

    # Animation: translation of the root joint, rotation of every joint, one key per frame.
    stack_id, layer_id = ids.new(), ids.new()
    stack = objects.add("AnimationStack", stack_id, f"{TAKE_NAME}\x00\x01AnimStack", "")
    props = _props70(stack)
    for name in ("LocalStart", "ReferenceStart"):
        _p(props, name, "KTime", "Time", "", Int64(0))
    for name in ("LocalStop", "ReferenceStop"):
        _p(props, name, "KTime", "Time", "", Int64(stop))
    objects.add("AnimationLayer", layer_id, "BaseLayer\x00\x01AnimLayer", "")
    connect(layer_id, stack_id)
    for j in range(num_joints):
        if skel.parents[j] < 0:
            _curve_node(objects, connections, ids, layer_id, joint_ids[j], "T", "Lcl Translation", times, root_path)
            counts["AnimationCurveNode"] += 1
            counts["AnimationCurve"] += 3
        _curve_node(objects, connections, ids, layer_id, joint_ids[j], "R", "Lcl Rotation", times, euler[:, j])
        counts["AnimationCurveNode"] += 1
        counts["AnimationCurve"] += 3

    documents = FbxNode("Documents")
    documents.add("Count", 1)
    doc = documents.add("Document", ids.new(), "Scene", "Scene")
    doc_props = _props70(doc)
    _p(doc_props, "SourceObject", "object", "", "")
    _p(doc_props, "ActiveAnimStackName", "KString", "", "", TAKE_NAME)
    doc.add("RootNode", Int64(0))

    takes = FbxNode("Takes")
    takes.add("Current", "")
    take = takes.add("Take", TAKE_NAME)
    take.add("FileName", TAKE_NAME.replace(" ", "_") + ".tak")
    take.add("LocalTime", Int64(0), Int64(stop))
    take.add("ReferenceTime", Int64(0), Int64(stop))

    conn = FbxNode("Connections", children=connections)
    return [
        *_header(creator),
        _global_settings(up_axis, unit, fps, stop),
        documents,
        FbxNode("References"),
        _definitions(counts),
        objects,
        conn,
        takes,
    ]


def write_fbx(
    motion: Motion,
    path: Path,
    *,
    mesh: SkinnedMesh | None = None,
    unit: Unit = "m",
    up_axis: UpAxis = "Y",
    armature_name: str = "Armature",
) -> None:
    """Write ``motion`` (and an optional skinned ``mesh``) as a binary FBX 7.4 file at ``path``.

    The caller handles atomic replacement (write to a temp path, then rename)."""
    data = encode_fbx(build_fbx(motion, mesh=mesh, unit=unit, up_axis=up_axis, armature_name=armature_name))
    try:
        Path(path).write_bytes(data)
    except OSError as exc:
        raise MocapError(f"Could not write the FBX file {path}: {exc.strerror or exc}.") from exc


__all__ = [
    "write_fbx",
    "build_fbx",
    "time_mode",
    "key_times",
    "euler_xyz_degrees",
    "KTIME_PER_SECOND",
    "TIME_MODE_CUSTOM",
]
