"""Linear blend skinning of a ``SkinnedMesh`` with the canonical forward kinematics."""

from __future__ import annotations

import numpy as np

from mocap_cli.body.mesh import SkinnedMesh
from mocap_cli.core.rotations import quat_to_matrix
from mocap_cli.core.skeleton import Skeleton, forward_kinematics

_FRAMES_PER_CHUNK = 32  # bounds the gathered (frames, V, 4, 3, 3) matrices to ~50 MB at 5k vertices


def skin(mesh: SkinnedMesh, skeleton: Skeleton, rotations: np.ndarray, root_translation: np.ndarray) -> np.ndarray:
    """Posed vertices (F, V, 3) from local joint rotations (F, J, 4, xyzw) and root positions (F, 3).

    Each joint moves its vertices rigidly from the rest pose: ``R_j (v - rest_j) + p_j`` with ``R_j``
    the joint's world rotation and ``p_j`` its world position; the results are blended by the weights."""
    rotations = np.asarray(rotations, dtype=np.float64)
    root_translation = np.asarray(root_translation, dtype=np.float64)
    if rotations.ndim != 3 or rotations.shape[1:] != (skeleton.num_joints, 4):
        raise ValueError(f"rotations must be (F, {skeleton.num_joints}, 4), got {rotations.shape}")
    if int(mesh.joints.max(initial=0)) >= skeleton.num_joints:
        raise ValueError("mesh joint indices exceed the skeleton's joint count")
    rest = skeleton.rest_positions()
    verts = np.asarray(mesh.vertices, dtype=np.float64)
    joints = np.asarray(mesh.joints, dtype=np.int64)
    weights = np.asarray(mesh.weights, dtype=np.float64)
    num_frames = rotations.shape[0]
    out = np.empty((num_frames, len(verts), 3))
    for start in range(0, num_frames, _FRAMES_PER_CHUNK):
        stop = min(start + _FRAMES_PER_CHUNK, num_frames)
        pos, glob = forward_kinematics(skeleton, rotations[start:stop], root_translation[start:stop])
        mats = quat_to_matrix(glob)  # (f, J, 3, 3)
        # Per joint affine map v -> R v + t with t = p - R rest.
        trans = pos - np.einsum("fjab,jb->fja", mats, rest)
        blended_m = np.einsum("vk,fvkab->fvab", weights, mats[:, joints])
        blended_t = np.einsum("vk,fvka->fva", weights, trans[:, joints])
        out[start:stop] = np.einsum("fvab,vb->fva", blended_m, verts) + blended_t
    return out
