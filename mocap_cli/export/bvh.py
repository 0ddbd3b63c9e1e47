"""BVH writer.

Layout follows what Blender's line-based importer and common mocap tools expect: one token group per
line, ``{`` on its own line, the root with ``Xposition Yposition Zposition Zrotation Xrotation Yrotation``
and every other joint with ``Zrotation Xrotation Yrotation`` (the CMU mocap convention: intrinsic Z, then
X, then Y, degrees, local to the parent). Y up, the body facing +Z; lengths in the unit the caller picks
(metres by default, centimetres for engine presets). The root channels carry its absolute position, with
a zero root OFFSET, so importers that add OFFSET to the position (Blender does) agree with ones that don't.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import numpy as np

from mocap_cli.core.motion import Motion
from mocap_cli.core.rotations import euler_from_matrix, quat_to_matrix
from mocap_cli.core.skeleton import Skeleton, leaf_tip

ROTATION_ORDER = "ZXY"
_CHANNEL = {"X": "Xrotation", "Y": "Yrotation", "Z": "Zrotation"}


def unwrap_degrees(angles: np.ndarray) -> np.ndarray:
    """Remove 360° jumps along time so interpolating importers don't spin joints between frames."""
    return np.degrees(np.unwrap(np.radians(angles), axis=0))


def euler_channels(rotations: np.ndarray) -> np.ndarray:
    """(F, J, 4) local quaternions → (F, J, 3) Euler degrees in ``ROTATION_ORDER``."""
    return unwrap_degrees(np.degrees(euler_from_matrix(quat_to_matrix(rotations), ROTATION_ORDER)))


def depth_first_order(skeleton: Skeleton) -> list[int]:
    order: list[int] = []

    def visit(j: int) -> None:
        order.append(j)
        for c in skeleton.children(j):
            visit(c)

    for root in (j for j, p in enumerate(skeleton.parents) if p < 0):
        visit(root)
    return order


def write_bvh(motion: Motion, path: Path, *, scale: float = 1.0) -> None:
    """Write ``motion`` as BVH; ``scale`` multiplies all lengths (1 = metres, 100 = centimetres)."""
    with open(path, "w", newline="\n") as fh:
        fh.write("HIERARCHY\n")
        _write_joint(fh, motion, 0, 0, scale)
        fh.write("MOTION\n")
        fh.write(f"Frames: {motion.num_frames}\n")
        fh.write(f"Frame Time: {1.0 / motion.fps:.10f}\n")
        # Channel columns follow the hierarchy as written (depth first), not the joint index order.
        euler = euler_channels(motion.rotations)[:, depth_first_order(motion.skeleton)]
        root = motion.root_translation * scale
        rows = np.concatenate([root, euler.reshape(motion.num_frames, -1)], axis=1)
        for row in rows:
            fh.write(" ".join(f"{v:.6f}" for v in row))
            fh.write("\n")


def _write_joint(fh: TextIO, motion: Motion, j: int, depth: int, scale: float) -> None:
    sk = motion.skeleton
    pad = "  " * depth
    channels = " ".join(_CHANNEL[a] for a in ROTATION_ORDER)
    if sk.parents[j] < 0:
        fh.write(f"ROOT {sk.names[j]}\n{pad}{{\n")
        fh.write(f"{pad}  OFFSET 0.000000 0.000000 0.000000\n")
        fh.write(f"{pad}  CHANNELS 6 Xposition Yposition Zposition {channels}\n")
    else:
        x, y, z = sk.offsets[j] * scale
        fh.write(f"{pad}JOINT {sk.names[j]}\n{pad}{{\n")
        fh.write(f"{pad}  OFFSET {x:.6f} {y:.6f} {z:.6f}\n")
        fh.write(f"{pad}  CHANNELS 3 {channels}\n")
    children = sk.children(j)
    for c in children:
        _write_joint(fh, motion, c, depth + 1, scale)
    if not children:
        known = leaf_tip(sk, j)
        tip = (np.array([0.0, 0.05, 0.0]) if known is None else known) * scale
        fh.write(f"{pad}  End Site\n{pad}  {{\n{pad}    OFFSET {tip[0]:.6f} {tip[1]:.6f} {tip[2]:.6f}\n{pad}  }}\n")
    fh.write(f"{pad}}}\n")
