"""Run with the venv's Python in a subprocess: imports BVH, glTF/GLB and FBX files with Blender (bpy) the way a
user would, and reports what Blender made of them. One probe serves every format; several files are imported
in one process (the scene is reset between them), because starting Blender costs seconds.

Usage: python blender_probe.py request.json result.json
request: [{"path": str, "frames": [int, ...], "fps": float, "vertex_ids": [int, ...],
           "automatic_bone_orientation": bool, "rest_angles": bool}, or {"parse": str}, ...]
A "parse" item runs Blender's own low-level FBX reader (io_scene_fbx.parse_fbx) and returns the node tree
(name, property type codes, values) as JSON.

BVH is imported with the scene fps taken from the file, FBX sets it from the file's TimeMode, and for glTF
(which stores seconds, not frames) the scene rate is set to ``fps`` before the import. For each requested
source frame i the probe samples the scene at i / fps seconds after the action's first key (Blender frame
``first + seconds * scene fps``) and reports world bone heads (Blender's Z-up frame, Blender units) and,
for a skinned mesh, world positions of the evaluated (deformed) vertices listed in vertex_ids.
"""

from __future__ import annotations

import json
import math
import sys

import bpy


def _jsonable(value: object, code: str) -> object:
    if code == "C":  # Blender's reader keeps the raw byte
        return value[0] != 0
    if code == "S":
        return value.decode("utf-8")
    if code == "R":
        return {"bytes": value.hex()}
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def parse_tree(path: str) -> dict:
    from io_scene_fbx import parse_fbx

    root, version = parse_fbx.parse(path)

    def node(elem: object) -> dict:
        return {
            "name": elem.id.decode(),
            "types": bytes(elem.props_type).decode(),
            "props": [_jsonable(p, chr(t)) for p, t in zip(elem.props, elem.props_type)],
            "children": [node(e) for e in elem.elems],
        }

    return {"version": version, "nodes": [node(e) for e in root.elems]}


def _import(item: dict) -> set:
    path = item["path"]
    ext = path.lower().rsplit(".", 1)[-1]
    scene = bpy.context.scene
    if ext == "bvh":
        return bpy.ops.import_anim.bvh(
            filepath=path, update_scene_fps=True, update_scene_duration=True, use_fps_scale=False, rotate_mode="NATIVE"
        )
    if ext in ("glb", "gltf"):
        fps = float(item["fps"])
        scene.render.fps = round(fps)
        scene.render.fps_base = round(fps) / fps
        return bpy.ops.import_scene.gltf(filepath=path)
    if ext == "fbx":
        return bpy.ops.import_scene.fbx(
            filepath=path, automatic_bone_orientation=item.get("automatic_bone_orientation", False)
        )
    raise SystemExit(f"unknown extension {ext}")


def probe(item: dict) -> dict:
    if "parse" in item:
        return parse_tree(item["parse"])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    out: dict = {"import_result": sorted(_import(item))}
    scene = bpy.context.scene
    out["fps"] = scene.render.fps
    out["fps_base"] = scene.render.fps_base
    out["scene_range"] = [scene.frame_start, scene.frame_end]
    arms = [o for o in scene.objects if o.type == "ARMATURE"]
    # Bone display shapes (the glTF importer adds an icosphere for them) are not part of the file's content.
    shapes = {pb.custom_shape.name for a in arms for pb in a.pose.bones if pb.custom_shape}
    meshes = [o for o in scene.objects if o.type == "MESH" and o.name not in shapes]
    out["armatures"] = [a.name for a in arms]
    out["meshes"] = [m.name for m in meshes]
    if not arms:
        return out
    arm = arms[0]
    out["bones"] = {b.name: (b.parent.name if b.parent else None) for b in arm.data.bones}
    out["rest_heads"] = {b.name: list(arm.matrix_world @ b.head_local) for b in arm.data.bones}
    out["bone_axes"] = {
        b.name: list((arm.matrix_world.to_3x3() @ (b.tail_local - b.head_local)).normalized()) for b in arm.data.bones
    }
    action = arm.animation_data.action if arm.animation_data else None
    out["action_frame_range"] = list(action.frame_range) if action else None
    out["armature_scale"] = list(arm.matrix_world.to_scale())
    first = out["action_frame_range"][0] if action else float(scene.frame_start)
    scene_fps = (
        scene.render.fps / scene.render.fps_base
        if item["path"].lower().endswith((".glb", ".gltf"))
        else scene.render.fps
    )  # the BVH/FBX importers place keys with the rounded integer rate
    frames = {}
    for i in item.get("frames", []):
        blender_frame = first + i / item["fps"] * scene_fps
        whole = math.floor(blender_frame + 1e-9)
        scene.frame_set(whole, subframe=max(0.0, blender_frame - whole))
        depsgraph = bpy.context.evaluated_depsgraph_get()
        heads = {pb.name: list(arm.matrix_world @ pb.head) for pb in arm.pose.bones}
        entry: dict = {"blender_frame": blender_frame, "heads": heads}
        if item.get("rest_angles"):  # each bone's rotation away from its rest orientation, degrees
            entry["rest_angles"] = {
                pb.name: math.degrees(pb.matrix_basis.to_quaternion().angle) for pb in arm.pose.bones
            }
        if meshes and item.get("vertex_ids"):
            ev = meshes[0].evaluated_get(depsgraph)
            me = ev.to_mesh()
            entry["vertices"] = [list(ev.matrix_world @ me.vertices[v].co) for v in item["vertex_ids"]]
            ev.to_mesh_clear()
        frames[str(i)] = entry
    out["frames"] = frames
    info = []
    scene.frame_set(int(first))
    depsgraph = bpy.context.evaluated_depsgraph_get()
    for ob in meshes:
        ev = ob.evaluated_get(depsgraph)
        me = ev.to_mesh()
        posed_z = [(ev.matrix_world @ v.co).z for v in me.vertices]
        ev.to_mesh_clear()
        rest_z = [(ob.matrix_world @ v.co).z for v in ob.data.vertices]
        sums = [sum(g.weight for g in v.groups) for v in ob.data.vertices]
        info.append(
            {
                "name": ob.name,
                "parent": ob.parent.name if ob.parent else None,
                "modifiers": [(m.type, m.object.name if getattr(m, "object", None) else None) for m in ob.modifiers],
                "vertex_groups": [g.name for g in ob.vertex_groups],
                "num_vertices": len(ob.data.vertices),
                "weight_sum_min": min(sums) if sums else 0.0,
                "weight_sum_max": max(sums) if sums else 0.0,
                "rest_height": max(rest_z) - min(rest_z) if rest_z else 0.0,
                "first_frame_height": max(posed_z) - min(posed_z) if posed_z else 0.0,
            }
        )
    out["mesh_info"] = info
    if info:  # the first mesh's fields at top level (what single-mesh checks read)
        for key in ("modifiers", "vertex_groups", "num_vertices", "weight_sum_min", "weight_sum_max", "rest_height"):
            out[key] = info[0][key]
        out["mesh_parent"] = info[0]["parent"]
    return out


def main() -> None:
    with open(sys.argv[1]) as fh:
        request = json.load(fh)
    results = [probe(item) for item in request]
    with open(sys.argv[2], "w") as fh:
        json.dump(results, fh)


if __name__ == "__main__":
    main()
