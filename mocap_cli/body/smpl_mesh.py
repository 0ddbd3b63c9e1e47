"""The shaped SMPL body of a motion, as the skinned mesh the GLB/FBX writers bind to its skeleton."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mocap_cli.body.mesh import SkinnedMesh
from mocap_cli.body.smpl_body import smpl_rest
from mocap_cli.body.smpl_files import find_smpl, load_smpl, missing_smpl_message
from mocap_cli.errors import MocapError
from mocap_cli.motion import Motion

# Rest joints that differ by more than this are a different body (another SMPL file or no SMPL at all).
_SKELETON_TOLERANCE_M = 1e-4


def require_smpl(explicit: Path | None = None) -> Path:
    """The SMPL file for ``--mesh smpl`` (``--smpl``, ``$MOCAP_SMPL_DIR``, the imported cache), or a one-sentence
    ``MocapError`` telling the user how to provide it."""
    found = find_smpl(explicit)
    if found is None:
        raise MocapError(missing_smpl_message())
    return found


def smpl_mesh_for(motion: Motion, smpl_path: Path) -> SkinnedMesh:
    """The SMPL mesh with the motion's shape (``motion.betas``), bound to its skeleton (top-4 weights).

    The motion must have been made on that SMPL model's rest skeleton (a mesh model run with the same SMPL
    file); otherwise the mesh would not follow the bones, and a one-sentence ``MocapError`` says so."""
    if motion.betas is None:
        raise MocapError(
            "--mesh smpl needs a motion from an SMPL mesh model (e.g. --model maed or --model int), which "
            "estimates the body shape; use --mesh anny for other models."
        )
    skeleton, mesh = smpl_rest(load_smpl(Path(smpl_path)), np.asarray(motion.betas, dtype=np.float64))
    ours = motion.skeleton
    if ours.names != skeleton.names or not np.allclose(ours.offsets, skeleton.offsets, atol=_SKELETON_TOLERANCE_M):
        raise MocapError(
            "This motion was not made on this SMPL model's skeleton (it ran without SMPL files or with other "
            "ones); run it again with the same --smpl file to export the SMPL mesh."
        )
    return mesh
