"""Blender subprocess for test_multi_person: import one .glb, report every armature, its action and the
lowest bone head over the action (active, or its unmuted NLA strip) (Blender's Z-up world). Usage: python
multi_probe.py in.glb fps out.json"""

from __future__ import annotations

import json
import sys

import bpy

path, fps, out_path = sys.argv[1], float(sys.argv[2]), sys.argv[3]
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.context.scene.render.fps = round(fps)
bpy.ops.import_scene.gltf(filepath=path)
scene = bpy.context.scene
report = []
for arm in [o for o in scene.objects if o.type == "ARMATURE"]:
    # Blender makes one action per glTF animation, stashed as an NLA strip on its armature (which plays it);
    # only the first armature also gets it as the active action.
    data = arm.animation_data
    strips = [s for t in data.nla_tracks if not t.mute for s in t.strips] if data else []
    action = data.action if data and data.action else (strips[0].action if strips else None)
    lo, hi = (int(v) for v in action.frame_range) if action else (scene.frame_start, scene.frame_start)
    if action is not None and data.action_slot is not None:
        # One action may animate several armatures (a slot each): this armature's own keyed range.
        bag = action.layers[0].strips[0].channelbag(data.action_slot)
        keys = [k.co.x for fc in bag.fcurves for k in fc.keyframe_points]
        lo, hi = round(min(keys)), round(max(keys))
    lowest, centre = [], []
    for f in range(lo, hi + 1):
        scene.frame_set(f)
        heads = [arm.matrix_world @ pb.head for pb in arm.pose.bones]
        lowest.append(min(h.z for h in heads))
        centre.append(list(arm.matrix_world @ arm.pose.bones[0].head))
    meshes = [o.name for o in scene.objects if o.type == "MESH" and o.find_armature() == arm]
    report.append(
        {
            "name": arm.name,
            "action": action.name if action else None,
            "range": [lo, hi],
            "lowest": lowest,
            "root": centre,
            "bones": len(arm.pose.bones),
            "meshes": meshes,
        }
    )
with open(out_path, "w") as fh:
    json.dump(report, fh)
