"""Run inside a subprocess with ``bpy``: import an animation file the way a user would and report what
Blender made of it as JSON on stdout (after a marker line).

usage: python blender_probe.py FILE FPS FRAME [FRAME ...]
FPS is set as the scene rate before a glTF import (glTF stores seconds, not frames); BVH and FBX set it
themselves. FRAME numbers are our 0-based motion frames; the script finds Blender's frame for each.
"""

import json
import sys

import bpy


def main() -> None:
    path, fps = sys.argv[1], float(sys.argv[2])
    frames = [int(f) for f in sys.argv[3:]]
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    ext = path.lower().rsplit(".", 1)[-1]
    if ext == "bvh":
        bpy.ops.import_anim.bvh(filepath=path, update_scene_fps=True, update_scene_duration=True,
                                use_fps_scale=False, rotate_mode="NATIVE")
        first = 1  # the BVH importer puts the first frame at 1
    elif ext in ("glb", "gltf"):
        scene.render.fps = round(fps)
        scene.render.fps_base = round(fps) / fps
        bpy.ops.import_scene.gltf(filepath=path)
        first = None
    elif ext == "fbx":
        bpy.ops.import_scene.fbx(filepath=path, automatic_bone_orientation=False)
        first = None
    else:
        raise SystemExit(f"unknown extension {ext}")

    arm = next(o for o in scene.objects if o.type == "ARMATURE")
    action = arm.animation_data.action if arm.animation_data else None
    frame_range = [float(v) for v in action.frame_range] if action else None
    if first is None:
        first = int(round(frame_range[0])) if frame_range else 0
    meshes = [o for o in scene.objects if o.type == "MESH"]
    out = {
        "bones": [b.name for b in arm.data.bones],
        "parents": {b.name: (b.parent.name if b.parent else None) for b in arm.data.bones},
        "fps": scene.render.fps / scene.render.fps_base,
        "frame_range": frame_range,
        "scene_range": [scene.frame_start, scene.frame_end],
        "first_frame": first,
        "positions": {},
        "meshes": [],
    }
    for f in frames:
        scene.frame_set(first + f)
        bpy.context.view_layer.update()
        out["positions"][str(f)] = {pb.name: list(arm.matrix_world @ pb.head) for pb in arm.pose.bones}
    for m in meshes:
        deps = bpy.context.evaluated_depsgraph_get()
        scene.frame_set(first)
        ev = m.evaluated_get(deps)
        coords = [ev.matrix_world @ v.co for v in ev.data.vertices]
        zs = [c.z for c in coords]
        out["meshes"].append({
            "name": m.name,
            "parent": m.parent.name if m.parent else None,
            "armature_modifiers": [md.object.name for md in m.modifiers if md.type == "ARMATURE" and md.object],
            "vertex_groups": len(m.vertex_groups),
            "height": (max(zs) - min(zs)) if zs else 0.0,
        })
    print("@@PROBE@@" + json.dumps(out))


main()
