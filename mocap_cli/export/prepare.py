"""One step between the estimate and the writers: root motion, body mesh and rig preset.

``prepare_export`` returns the Motion to write and the ExportOptions that go with it; every output file of
a run (BVH, GLB, FBX, NPZ) is then written from the same pair, so they describe the same animation.
"""

from __future__ import annotations

from pathlib import Path

from mocap_cli.body.select import mesh_for
from mocap_cli.core.hand_skeleton import HAND_JOINT_NAMES, has_fingers
from mocap_cli.core.motion import Motion
from mocap_cli.core.skeleton import JOINT_NAMES, Skeleton
from mocap_cli.export import ExportOptions
from mocap_cli.export.reference_pose import with_reference_frame
from mocap_cli.export.rig_presets import DEFAULT_RIG, apply_rig_preset, load_rig_preset, repose_mesh
from mocap_cli.export.root_motion import apply_root_mode


def prepare_export(
    motion: Motion,
    *,
    preset: str = DEFAULT_RIG,
    root: str = "world",
    mesh: str | None = "auto",
    smpl: Path | None = None,
    reference_pose: str = "none",
) -> tuple[Motion, ExportOptions]:
    """``motion`` (canonical skeleton, metres, Y up) → (Motion on the preset's rig, options for the writers).

    preset: a ``presets/rig/<name>.toml`` name (blender, mixamo, ue5, unity, vrm); root: world, in-place or
    none (``mocap_cli.export.root_motion``); mesh: auto (= anny, the shipped body), anny, smpl or none; smpl: the
    ``--smpl`` path for ``mesh="smpl"``; reference_pose: none, t or a (``export.reference_pose``). Errors are
    MocapErrors naming the valid choices."""
    rig = load_rig_preset(preset)
    moved = with_reference_frame(apply_root_mode(motion, root), reference_pose, rig)
    body = mesh_for(moved, mesh, smpl)
    if body is not None:
        names = HAND_JOINT_NAMES if has_fingers(moved.skeleton) else JOINT_NAMES
        body = repose_mesh(body, Skeleton(names, moved.skeleton.parents, moved.skeleton.offsets), rig)
    rigged = apply_rig_preset(moved, rig)
    options = ExportOptions(mesh=body, unit_scale=rig.unit_scale, up_axis=rig.up_axis, armature_name=rig.armature_name)
    return rigged, options


__all__ = ["prepare_export"]
