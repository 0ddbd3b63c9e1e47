"""Several people in one file: a .glb or .fbx with one armature, body mesh and animation per person.

Each person's motion is prepared exactly as a single-person export (rig preset, root mode, body mesh) and
the characters are written side by side, named ``person_1``, ``person_2``, … (Blender's glTF importer names
each armature after its skin, its FBX importer after the armature node). Written atomically like every
export. BVH and NPZ hold one skeleton each, so those stay one file per person (``export.person_files``).
"""

from __future__ import annotations

from pathlib import Path

from mocap_cli.body.select import MeshChoice
from mocap_cli.core.atomic import atomic_path
from mocap_cli.core.motion import Motion
from mocap_cli.errors import MocapError
from mocap_cli.export.person_files import SHARED_FORMATS, person_name
from mocap_cli.export.prepare import prepare_export
from mocap_cli.export.root_motion import RootMode


def write_people_file(
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
    """Every person in one .glb or .fbx (by ``path``'s extension)."""
    suffix = path.suffix.lower()
    if suffix not in SHARED_FORMATS:
        raise MocapError(
            f"Cannot write several people into one {suffix or 'extensionless'} file; use {' or '.join(SHARED_FORMATS)}."
        )
    prepared = [
        prepare_export(m, preset=preset, root=root, mesh=mesh, smpl=smpl, reference_pose=reference_pose)
        for m in motions
    ]
    with atomic_path(path, overwrite=overwrite) as tmp:
        if suffix == ".glb":
            from mocap_cli.export.gltf import write_glb_characters

            write_glb_characters([(m, o.mesh, person_name(i + 1)) for i, (m, o) in enumerate(prepared)], tmp)
        else:
            from mocap_cli.export.fbx import FbxCharacter, write_fbx_characters

            first = prepared[0][1]
            characters = [
                FbxCharacter(
                    m, o.mesh, person_name(i + 1), None if o.mesh is None else f"{person_name(i + 1)}_{o.mesh.name}"
                )
                for i, (m, o) in enumerate(prepared)
            ]
            write_fbx_characters(
                characters, tmp, unit="cm" if first.unit_scale == 100.0 else "m", up_axis=first.up_axis
            )  # type: ignore[arg-type]
