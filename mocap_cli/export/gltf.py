"""glTF 2.0 binary (.glb) writer.

The skeleton is a node tree referenced by one skin (so Blender, Unity and three.js build an armature from
it), with inverse bind matrices of the rest T-pose; one animation holds a rotation sampler per joint and
a translation sampler on the root, keyed at the exact frame times (seconds) of the motion. glTF is Y up,
metres, +Z forward — the same frame as our Motion — so nothing is converted. glTF has no frame rate:
the rate is recorded in ``asset.extras.fps`` and in the key times.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pygltflib as gl

from mocap_cli import __version__
from mocap_cli.body.mesh import SkinnedMesh
from mocap_cli.core.motion import Motion
from mocap_cli.core.skeleton import JOINT_INDEX, PARENTS


@dataclass
class _Buffer:
    """Accumulates binary views and accessors of one glTF buffer."""

    gltf: gl.GLTF2
    data: bytearray = field(default_factory=bytearray)

    def add(
        self,
        array: np.ndarray,
        accessor_type: str,
        component: int,
        *,
        target: int | None = None,
        minmax: bool = False,
        normalized: bool = False,
    ) -> int:
        while len(self.data) % 4:
            self.data.append(0)
        blob = np.ascontiguousarray(array).tobytes()
        view = gl.BufferView(buffer=0, byteOffset=len(self.data), byteLength=len(blob), target=target)
        self.data.extend(blob)
        self.gltf.bufferViews.append(view)
        count = array.shape[0]
        acc = gl.Accessor(
            bufferView=len(self.gltf.bufferViews) - 1,
            componentType=component,
            count=count,
            type=accessor_type,
            normalized=normalized or None,
        )
        if minmax:
            flat = array.reshape(count, -1)
            acc.min = [float(v) for v in flat.min(axis=0)]
            acc.max = [float(v) for v in flat.max(axis=0)]
        self.gltf.accessors.append(acc)
        return len(self.gltf.accessors) - 1


def write_glb(motion: Motion, path: Path, *, mesh: SkinnedMesh | None = None) -> None:
    write_glb_characters([(motion, mesh, None)], path)


def write_glb_characters(characters: list[tuple[Motion, SkinnedMesh | None, str | None]], path: Path) -> None:
    """One .glb holding several characters: each (motion, mesh, name) gets its own joint tree under a node
    ``name`` (e.g. ``person_1``; Blender names the armature after it) and its own skin. All characters'
    channels go into ONE animation: Blender's importer makes an action per glTF animation but activates only
    the first (the others land in muted NLA tracks), whereas one animation becomes one action with a slot
    per armature, so every person plays on import. Frame rate and frame count come from the first motion."""
    first = characters[0][0]
    gltf = gl.GLTF2(
        asset=gl.Asset(
            generator=f"mocap {__version__}", version="2.0", extras={"fps": first.fps, "frames": first.num_frames}
        )
    )
    buf = _Buffer(gltf)
    scene_nodes: list[int] = []
    samplers: list[gl.AnimationSampler] = []
    channels: list[gl.AnimationChannel] = []
    for motion, mesh, name in characters:
        scene_nodes.extend(_add_character(gltf, buf, motion, mesh, name, samplers, channels))
    gltf.animations.append(
        gl.Animation(
            name=first.provenance.get("name", "motion"),
            samplers=samplers,
            channels=channels,
            extras=_contact_extras(characters),
        )
    )
    gltf.scenes.append(gl.Scene(name="scene", nodes=scene_nodes))
    gltf.scene = 0
    gltf.buffers.append(gl.Buffer(byteLength=len(buf.data)))
    gltf.set_binary_blob(bytes(buf.data))
    gltf.save_binary(str(path))


def _add_character(
    gltf: gl.GLTF2,
    buf: _Buffer,
    motion: Motion,
    mesh: SkinnedMesh | None,
    name: str | None,
    samplers: list[gl.AnimationSampler],
    channels: list[gl.AnimationChannel],
) -> list[int]:
    """Append one skeleton, skin and optional skinned mesh, and its animation channels to ``samplers`` and
    ``channels``; returns its scene root nodes."""
    sk = motion.skeleton
    rest = sk.rest_positions()
    base = len(gltf.nodes)

    for j, joint in enumerate(sk.names):
        children = [base + c for c in sk.children(j)] or None
        gltf.nodes.append(gl.Node(name=joint, translation=[float(v) for v in sk.offsets[j]], children=children))
    roots = [base + j for j, p in enumerate(sk.parents) if p < 0]

    ibm = np.tile(np.eye(4, dtype=np.float32), (sk.num_joints, 1, 1))
    ibm[:, :3, 3] = -rest  # rest global transforms are pure translations (identity rest rotations)
    ibm_acc = buf.add(np.transpose(ibm, (0, 2, 1)).reshape(-1, 16), "MAT4", gl.FLOAT)  # column-major
    gltf.skins.append(
        gl.Skin(
            name=name or "skeleton",
            joints=list(range(base, base + sk.num_joints)),
            skeleton=roots[0],
            inverseBindMatrices=ibm_acc,
        )
    )
    skin = len(gltf.skins) - 1

    scene_nodes = list(roots)
    if name is not None:
        # A named parent per character: Blender's importer otherwise joins skins that share the scene root.
        gltf.nodes.append(gl.Node(name=name, children=list(roots)))
        scene_nodes = [len(gltf.nodes) - 1]
    if mesh is not None:
        gltf.meshes.append(gl.Mesh(name=mesh.name, primitives=[_skinned_primitive(buf, mesh)]))
        mesh_name = f"{name}_{mesh.name}" if name else mesh.name
        gltf.nodes.append(gl.Node(name=mesh_name, mesh=len(gltf.meshes) - 1, skin=skin))
        scene_nodes.append(len(gltf.nodes) - 1)

    times = (np.arange(motion.num_frames, dtype=np.float64) / motion.fps).astype(np.float32)
    t_acc = buf.add(times, "SCALAR", gl.FLOAT, minmax=True)

    def channel(node: int, path_name: str, values: np.ndarray, kind: str) -> None:
        out = buf.add(values.astype(np.float32), kind, gl.FLOAT)
        samplers.append(gl.AnimationSampler(input=t_acc, output=out, interpolation="LINEAR"))
        channels.append(
            gl.AnimationChannel(sampler=len(samplers) - 1, target=gl.AnimationChannelTarget(node=node, path=path_name))
        )

    for root in roots:
        channel(root, "translation", motion.root_translation, "VEC3")
    for j in range(sk.num_joints):
        channel(base + j, "rotation", motion.rotations[:, j], "VEC4")
    return scene_nodes


def _contact_extras(characters: list[tuple[Motion, SkinnedMesh | None, str | None]]) -> dict | None:
    """``animation.extras.contacts``: per exported bone, the per-frame probability (3 decimals) that it rests
    on the floor (>= 0.5: planted), keyed by the bone's name in this file (one character), or by character
    name, then bone name (several); None without contacts."""
    curves = {name: _contact_curves(motion) for motion, _, name in characters if motion.contacts is not None}
    if not curves:
        return None
    if len(characters) == 1:
        return {"contacts": next(iter(curves.values())), "contact_threshold": 0.5}
    return {"contacts": curves, "contact_threshold": 0.5}


def _contact_curves(motion: Motion) -> dict[str, list[float]]:
    assert motion.contacts is not None
    sk = motion.skeleton
    curves = {}
    for k, name in enumerate(motion.contact_joints):
        # A rig preset renames the bones but keeps the canonical order.
        j = (
            sk.names.index(name)
            if name in sk.names
            else (JOINT_INDEX.get(name) if tuple(sk.parents[: len(PARENTS)]) == PARENTS else None)
        )
        if j is not None:
            curves[sk.names[j]] = [round(float(v), 3) for v in motion.contacts[:, k]]
    return curves


def _skinned_primitive(buf: _Buffer, mesh: SkinnedMesh) -> gl.Primitive:
    verts = mesh.vertices.astype(np.float32)
    normals = _vertex_normals(mesh.vertices, mesh.faces).astype(np.float32)
    weights = mesh.weights.astype(np.float32)
    weights /= np.maximum(weights.sum(axis=1, keepdims=True), 1e-12)
    # glTF: an influence with zero weight must name joint 0 (the validator warns otherwise).
    joints = np.where(weights > 0, mesh.joints, 0).astype(np.uint16)
    attrs = gl.Attributes(
        POSITION=buf.add(verts, "VEC3", gl.FLOAT, target=gl.ARRAY_BUFFER, minmax=True),
        NORMAL=buf.add(normals, "VEC3", gl.FLOAT, target=gl.ARRAY_BUFFER),
        JOINTS_0=buf.add(joints, "VEC4", gl.UNSIGNED_SHORT, target=gl.ARRAY_BUFFER),
        WEIGHTS_0=buf.add(weights, "VEC4", gl.FLOAT, target=gl.ARRAY_BUFFER),
    )
    indices = buf.add(
        mesh.faces.astype(np.uint32).reshape(-1), "SCALAR", gl.UNSIGNED_INT, target=gl.ELEMENT_ARRAY_BUFFER
    )
    return gl.Primitive(attributes=attrs, indices=indices, mode=gl.TRIANGLES)


def _vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = vertices[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_n)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    normals = np.where(length > 1e-12, normals / np.maximum(length, 1e-12), np.array([0.0, 1.0, 0.0]))
    return normals
