"""Several people in one file: a .glb with one armature (skin), body mesh and animation per person.

Each person's motion is prepared exactly as a single-person export (rig preset, root mode, body mesh) and
the characters are written side by side, named ``person_1``, ``person_2``, … (Blender's glTF importer names
each armature after its skin). Written atomically like every export.
"""

from __future__ import annotations

from pathlib import Path

from mocap_cli.body.select import MeshChoice
from mocap_cli.core.atomic import atomic_path
from mocap_cli.core.motion import Motion
from mocap_cli.export.gltf import write_glb_characters
from mocap_cli.export.prepare import prepare_export
from mocap_cli.export.root_motion import RootMode


def write_people_glb(
    motions: list[Motion],
    path: Path,
    *,
    preset: str,
    root: RootMode,
    mesh: MeshChoice,
    smpl: Path | None,
    reference_pose: str = "none",
    overwrite: bool = True,
) -> None:
    characters = []
    for i, motion in enumerate(motions):
        prepared, options = prepare_export(
            motion, preset=preset, root=root, mesh=mesh, smpl=smpl, reference_pose=reference_pose
        )
        characters.append((prepared, options.mesh, f"person_{i + 1}"))
    with atomic_path(path, overwrite=overwrite) as tmp:
        write_glb_characters(characters, tmp)
