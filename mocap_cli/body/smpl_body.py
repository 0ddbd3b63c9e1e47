"""The user's SMPL model in its rest pose, as our skeleton plus a skinned mesh.

``model`` is a plain dict of arrays with the official pickle's names: ``v_template (V,3)``,
``shapedirs (V,3,B)``, ``J_regressor (24,V)`` (dense, or anything with ``toarray()``), ``weights (V,24)``,
``kintree_table (2,24)`` and ``f`` or ``faces (T,3)``. Pose correctives (``posedirs``) are not used: in
the rest pose they are zero by construction, and our exporters skin with plain linear blend skinning.

Frame: SMPL's model frame is already ours (Y up, metres, facing +Z, its left on +X). Its rest pose
(all pose parameters zero) is SMPL's "T-pose": arms out to the sides close to horizontal but not exactly
along +-X (they droop and sweep slightly, legs stand a little apart). We keep that rest pose as the
skeleton's rest (identity local rotations = SMPL's zero pose), so SMPL pose parameters apply unchanged;
offsets are the differences of the regressed joints. Vertices and joints are shifted vertically
together so that the lowest vertex is on the floor (y = 0); the regressor's rows sum to 1, so the
joints stay equal to ``J_regressor @ vertices``.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from mocap_cli.body.mesh import SkinnedMesh
from mocap_cli.core.skeleton import JOINT_NAMES, PARENTS, Skeleton
from mocap_cli.errors import MocapError

_REQUIRED = ("v_template", "shapedirs", "J_regressor", "weights", "kintree_table")


def _dense(a: object) -> np.ndarray:
    return np.asarray(a.toarray() if hasattr(a, "toarray") else a, dtype=np.float64)


def top_k_weights(weights: np.ndarray, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest influences per vertex of dense ``weights (V, J)``: joint indices (V, k)
    (largest first) and weights (V, k) renormalised to sum to 1."""
    order = np.argsort(-weights, axis=1, kind="stable")[:, :k]
    picked = np.take_along_axis(weights, order, axis=1)
    total = picked.sum(axis=1, keepdims=True)
    if np.any(total <= 0):
        raise ValueError("some vertices have no positive skinning weight")
    return order.astype(np.int64), picked / total


def smpl_rest(model: Mapping[str, np.ndarray], betas: np.ndarray) -> tuple[Skeleton, SkinnedMesh]:
    """Shaped SMPL body in its rest pose: our 24-joint ``Skeleton`` and the mesh bound to it."""
    missing = [k for k in _REQUIRED if k not in model] + ([] if ("f" in model or "faces" in model) else ["f"])
    if missing:
        raise MocapError(f"The SMPL model file lacks {', '.join(missing)}; convert the official SMPL .pkl again.")
    v_template = _dense(model["v_template"])
    shapedirs = _dense(model["shapedirs"])
    betas = np.asarray(betas, dtype=np.float64).reshape(-1)
    num_betas = min(len(betas), shapedirs.shape[-1])
    vertices = v_template + shapedirs[..., :num_betas] @ betas[:num_betas]

    regressor = _dense(model["J_regressor"])
    if regressor.shape != (24, len(vertices)):
        raise MocapError(
            f"The SMPL model's joint regressor has shape {regressor.shape}, expected (24, {len(vertices)}); "
            "use the 24-joint SMPL model (not SMPL-H/SMPL-X)."
        )
    parents = np.asarray(model["kintree_table"])[0].astype(np.int64)
    parents[0] = -1  # the official pickle stores the root's parent as 2**32 - 1
    if tuple(int(p) for p in parents) != PARENTS:
        raise MocapError("The SMPL model's joint hierarchy is not SMPL's 24-joint tree; use the official SMPL model.")

    floor = vertices[:, 1].min()
    vertices[:, 1] -= floor
    joints = regressor @ vertices
    offsets = joints.copy()
    offsets[1:] -= joints[parents[1:]]
    skeleton = Skeleton(JOINT_NAMES, PARENTS, offsets)

    faces = np.asarray(model["f"] if "f" in model else model["faces"], dtype=np.int64)
    joint_idx, weights = top_k_weights(_dense(model["weights"]), 4)
    return skeleton, SkinnedMesh(vertices, faces, joint_idx, weights, name="smpl")
