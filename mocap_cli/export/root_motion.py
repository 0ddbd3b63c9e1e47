"""Root motion options for export (``--root``): what happens to the root joint's (pelvis') world path.

- ``world`` (default): the full path as estimated: the character walks through the scene.
- ``in-place``: the horizontal path (X, Z) is removed, the character stays over the origin; height is
  kept, so jumps, crouches and sitting still move the body up and down. Turning (the root's rotation) is
  kept. This is what game engines call an in-place clip: the engine moves the character.
- ``none``: no root translation at all: the pelvis stays at the skeleton's rest height over the origin on
  every frame (like exporters that drop translation). Jumps and crouches then float or sink; use it only
  for upper-body or on-the-spot clips.
"""

from __future__ import annotations

from typing import Literal, get_args

import numpy as np

from mocap_cli.core.motion import Motion
from mocap_cli.errors import MocapError

RootMode = Literal["world", "in-place", "none"]
ROOT_MODES: tuple[str, ...] = get_args(RootMode)


def check_root_mode(mode: str) -> None:
    if mode not in ROOT_MODES:
        raise MocapError(f"Unknown root motion mode '{mode}'; choose one of {', '.join(ROOT_MODES)}.")


def apply_root_mode(motion: Motion, mode: str) -> Motion:
    """``motion`` with its root path changed according to ``mode`` (see the module notes)."""
    check_root_mode(mode)
    if mode == "world":
        return motion
    root = motion.root_translation.copy()
    if mode == "in-place":
        root[:, 0] = 0.0
        root[:, 2] = 0.0
    else:
        root[:] = np.array([0.0, float(motion.skeleton.offsets[0, 1]), 0.0])
    out = motion.with_rotations(motion.rotations, root)
    out.provenance = {**motion.provenance, "root_motion": mode}
    return out


__all__ = ["RootMode", "ROOT_MODES", "apply_root_mode", "check_root_mode"]
