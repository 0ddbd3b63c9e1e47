"""``SkinnedMesh``: a triangle mesh bound to a skeleton by linear blend skinning (what exporters consume).

The mesh is in the skeleton's rest pose, world frame (Y up, metres). ``capsule_mesh`` builds a simple body
of one capsule per bone: a licence-free fallback body and test material for exporters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mocap_cli.core.rotations import quat_apply, quat_between
from mocap_cli.core.skeleton import Skeleton, leaf_tip


@dataclass
class SkinnedMesh:
    """vertices (V, 3) metres in the rest-pose world frame; faces (T, 3) vertex indices (counter-clockwise
    seen from outside); joints (V, 4) skeleton joint indices; weights (V, 4) summing to 1 per vertex."""

    vertices: np.ndarray
    faces: np.ndarray
    joints: np.ndarray
    weights: np.ndarray
    name: str = "body"


def _capsule(
    a: np.ndarray, b: np.ndarray, radius: float, around: int, rings: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vertices, faces and each vertex's fraction along a→b (0..1) of a capsule around segment a→b."""
    length = float(np.linalg.norm(b - a))
    # Profile along the local +Z axis: south pole, hemisphere rings, cylinder, hemisphere rings, north pole.
    zs, rs = [], []
    for i in range(1, rings + 1):
        ang = -0.5 * np.pi + 0.5 * np.pi * i / rings
        zs.append(radius * np.sin(ang))
        rs.append(radius * np.cos(ang))
    for i in range(rings):
        ang = 0.5 * np.pi * i / rings
        zs.append(length + radius * np.sin(ang))
        rs.append(radius * np.cos(ang))
    theta = 2 * np.pi * np.arange(around) / around
    ring_pts = [np.stack([r * np.cos(theta), r * np.sin(theta), np.full(around, z)], axis=-1) for z, r in zip(zs, rs)]
    verts = np.concatenate([[[0.0, 0.0, -radius]], *ring_pts, [[0.0, 0.0, length + radius]]])
    n_rings = len(ring_pts)
    faces = []
    for k in range(around):  # bottom cap fan
        faces.append((0, 1 + (k + 1) % around, 1 + k))
    for r in range(n_rings - 1):
        base0, base1 = 1 + r * around, 1 + (r + 1) * around
        for k in range(around):
            k1 = (k + 1) % around
            faces.append((base0 + k, base0 + k1, base1 + k1))
            faces.append((base0 + k, base1 + k1, base1 + k))
    top, last = len(verts) - 1, 1 + (n_rings - 1) * around
    for k in range(around):  # top cap fan
        faces.append((last + k, last + (k + 1) % around, top))
    frac = np.clip(verts[:, 2] / max(length, 1e-9), 0.0, 1.0)
    rot = quat_between(np.array([0.0, 0.0, 1.0]), b - a)
    world = a + quat_apply(np.broadcast_to(rot, verts.shape[:-1] + (4,)), verts)
    return world, np.asarray(faces, dtype=np.int64), frac


def capsule_mesh(skeleton: Skeleton, name: str = "capsule_body", around: int = 10, rings: int = 3) -> SkinnedMesh:
    """One capsule per bone (parent joint → joint, plus the leaf tips), skinned to the bone's parent joint
    and blended into the child joint over the last third of the bone so bends look soft."""
    rest = skeleton.rest_positions()
    verts, faces, joints, weights = [], [], [], []
    offset = 0
    segments: list[tuple[int, int, np.ndarray]] = []  # (driving joint, child joint or -1, end point)
    for j, p in enumerate(skeleton.parents):
        if p >= 0:
            segments.append((p, j, rest[j]))
    for j in range(skeleton.num_joints):
        tip = leaf_tip(skeleton, j) if not skeleton.children(j) else None
        if tip is not None:
            segments.append((j, -1, rest[j] + tip))
    for drive, child, end in segments:
        start = rest[drive]
        length = float(np.linalg.norm(end - start))
        if length < 1e-6:
            continue
        radius = float(np.clip(0.28 * length, 0.025, 0.07))
        v, f, t = _capsule(start, end, radius, around, rings)
        w_child = np.clip((t - 2.0 / 3.0) * 1.5, 0.0, 1.0) * 0.5 if child >= 0 else np.zeros(len(v))
        jj = np.zeros((len(v), 4), dtype=np.int64)
        ww = np.zeros((len(v), 4))
        jj[:, 0] = drive
        ww[:, 0] = 1.0 - w_child
        if child >= 0:
            jj[:, 1] = child
            ww[:, 1] = w_child
        verts.append(v)
        faces.append(f + offset)
        joints.append(jj)
        weights.append(ww)
        offset += len(v)
    return SkinnedMesh(
        vertices=np.concatenate(verts),
        faces=np.concatenate(faces),
        joints=np.concatenate(joints),
        weights=np.concatenate(weights),
        name=name,
    )
