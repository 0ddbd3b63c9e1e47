"""Run with the venv's Python in a subprocess: imports FBX files with Blender (bpy) and reports what it sees.

Usage: python blender_fbx_probe.py request.json result.json
request: [{"path": str, "frames": [int, ...], "fps": float, "vertex_ids": [int, ...],
           "automatic_bone_orientation": bool}, or {"parse": str}, ...]
A "parse" item runs Blender's own low-level reader (io_scene_fbx.parse_fbx) and returns the node tree
(name, property type codes, values) as JSON.
For each requested source frame i it samples the scene at i / fps seconds (Blender keys land at
1 + seconds * scene.render.fps, the importer's mapping) and reports world bone heads (metres, Blender's Z-up
frame) and, for a skinned mesh, world positions of the evaluated (deformed) vertices listed in vertex_ids.
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
        return {"name": elem.id.decode(), "types": bytes(elem.props_type).decode(),
                "props": [_jsonable(p, chr(t)) for p, t in zip(elem.props, elem.props_type)], "children": [node(e) for e in elem.elems]}

    return {"version": version, "nodes": [node(e) for e in root.elems]}


def probe(item: dict) -> dict:
    if "parse" in item:
        return parse_tree(item["parse"])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    result = bpy.ops.import_scene.fbx(filepath=item["path"],
                                      automatic_bone_orientation=item.get("automatic_bone_orientation", False))
    out: dict = {"import_result": sorted(result)}
    scene = bpy.context.scene
    out["fps"] = scene.render.fps
    out["fps_base"] = scene.render.fps_base
    arms = [o for o in scene.objects if o.type == "ARMATURE"]
    meshes = [o for o in scene.objects if o.type == "MESH"]
    out["armatures"] = [a.name for a in arms]
    out["meshes"] = [m.name for m in meshes]
    if not arms:
        return out
    arm = arms[0]
    out["bones"] = {b.name: (b.parent.name if b.parent else None) for b in arm.data.bones}
    out["bone_axes"] = {b.name: list((arm.matrix_world.to_3x3() @ (b.tail_local - b.head_local)).normalized()) for b in arm.data.bones}
    action = arm.animation_data.action if arm.animation_data else None
    out["action_frame_range"] = list(action.frame_range) if action else None
    out["armature_scale"] = list(arm.matrix_world.to_scale())
    frames = {}
    for i in item["frames"]:
        blender_frame = 1.0 + i / item["fps"] * scene.render.fps
        whole = math.floor(blender_frame + 1e-9)
        scene.frame_set(whole, subframe=max(0.0, blender_frame - whole))
        depsgraph = bpy.context.evaluated_depsgraph_get()
        heads = {pb.name: list(arm.matrix_world @ pb.head) for pb in arm.pose.bones}
        entry: dict = {"blender_frame": blender_frame, "heads": heads}
        if meshes and item.get("vertex_ids"):
            ob = meshes[0]
            ev = ob.evaluated_get(depsgraph)
            me = ev.to_mesh()
            entry["vertices"] = [list(ev.matrix_world @ me.vertices[v].co) for v in item["vertex_ids"]]
            ev.to_mesh_clear()
        frames[str(i)] = entry
    out["frames"] = frames
    if meshes:
        ob = meshes[0]
        out["mesh_parent"] = ob.parent.name if ob.parent else None
        out["modifiers"] = [(m.type, m.object.name if getattr(m, "object", None) else None) for m in ob.modifiers]
        out["vertex_groups"] = [g.name for g in ob.vertex_groups]
        sums = [sum(g.weight for g in v.groups) for v in ob.data.vertices]
        out["num_vertices"] = len(ob.data.vertices)
        out["weight_sum_min"] = min(sums)
        out["weight_sum_max"] = max(sums)
        zs = [(ob.matrix_world @ v.co).z for v in ob.data.vertices]
        out["rest_height"] = max(zs) - min(zs)
    return out


def main() -> None:
    with open(sys.argv[1]) as fh:
        request = json.load(fh)
    results = [probe(item) for item in request]
    with open(sys.argv[2], "w") as fh:
        json.dump(results, fh)


if __name__ == "__main__":
    main()
