"""Is this a motion a writer can turn into a valid file? Checked when a saved motion is loaded and before
every exporter runs.

The writers trust their input: NaN or infinite values go straight into a BVH's text or a GLB's accessors
(which Blender and game engines then reject or import as garbage), a zero frame rate divides by zero, and a
broken parent list loops or indexes out of range. A Motion built by our own models is valid; one read from a
user-supplied or damaged .npz may not be, so each problem gets named here in words.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mocap_cli.core.motion import Motion

# Farther than this from the origin (metres) is not a filmed person, and float32 files (GLB) lose all
# precision long before their range ends.
MAX_DISTANCE_M = 1.0e5
# A rotation quaternion this short cannot be normalised into a rotation.
MIN_QUATERNION_NORM = 1.0e-6


class InvalidMotion(ValueError):
    """What is wrong with a motion, as a phrase that completes "the motion ..." (e.g. "has no frames")."""


def check_motion(motion: Motion) -> None:
    """Raise ``InvalidMotion`` naming the first problem: frame rate, frame count, array types and shapes,
    the skeleton's tree, non-finite or absurd values, zero-length rotations."""
    check_motion_arrays(
        motion.fps,
        motion.skeleton.parents,
        motion.skeleton.offsets,
        rotations=motion.rotations,
        root_translation=motion.root_translation,
        joints=motion.joints,
        confidence=motion.confidence,
        betas=motion.betas,
    )


def check_motion_arrays(
    fps: object,
    parents: tuple[int, ...] | np.ndarray,
    offsets: np.ndarray,
    *,
    rotations: np.ndarray,
    root_translation: np.ndarray,
    joints: np.ndarray,
    confidence: np.ndarray,
    betas: np.ndarray | None = None,
) -> None:
    """``check_motion`` on the parts of a Motion before one is built (a loaded file's raw arrays).
    Shapes: rotations (F, J, 4), root_translation (F, 3), joints (F, J, 3), confidence (F, J), offsets (J, 3),
    betas (B,)."""
    if isinstance(fps, np.ndarray) and fps.ndim == 0:
        fps = fps.item()
    if (
        isinstance(fps, bool)
        or not isinstance(fps, (int, float, np.floating, np.integer))
        or not math.isfinite(float(fps))
        or fps <= 0
    ):
        raise InvalidMotion(f"has frame rate {fps!r} (it must be a positive number of frames per second)")
    check_skeleton(parents, offsets)
    count = len(parents)
    arrays = {
        "rotations": (rotations, (count, 4)),
        "root_translation": (root_translation, (3,)),
        "joints": (joints, (count, 3)),
        "confidence": (confidence, (count,)),
    }
    frames = None
    for name, (array, tail) in arrays.items():
        _check_numeric(name, array)
        if array.ndim != 1 + len(tail) or array.shape[1:] != tail:
            want = ", ".join(("F", *(str(n) for n in tail)))
            raise InvalidMotion(f"has {name} of shape {array.shape} (it must be ({want}))")
        if frames is None:
            frames = array.shape[0]
        elif array.shape[0] != frames:
            raise InvalidMotion(f"has {array.shape[0]} frames of {name} but {frames} of rotations")
        if not np.all(np.isfinite(array)):
            raise InvalidMotion(f"has NaN or infinite values in {name}")
    if not frames:
        raise InvalidMotion("has no frames")
    if betas is not None:
        _check_numeric("betas", betas)
        if betas.ndim != 1 or not np.all(np.isfinite(betas)):
            raise InvalidMotion("has body shape coefficients (betas) that are not a finite vector")
    for name, array in (("root_translation", root_translation), ("joints", joints)):
        if np.max(np.abs(array)) > MAX_DISTANCE_M:
            raise InvalidMotion(f"has {name} farther than {MAX_DISTANCE_M:g} m from the origin")
    if np.min(np.linalg.norm(rotations, axis=-1)) < MIN_QUATERNION_NORM:
        raise InvalidMotion("has zero-length rotation quaternions")


def check_skeleton(parents: tuple[int, ...] | np.ndarray, offsets: np.ndarray) -> None:
    """One root (joint 0, parent -1), every other parent an earlier joint (so the parents form a tree whose
    joints are listed parents first), and finite rest offsets of shape (J, 3)."""
    if isinstance(parents, np.ndarray):
        _check_numeric("parents", parents)
        if parents.dtype.kind == "f" or parents.ndim != 1:
            raise InvalidMotion("has skeleton parents that are not a list of whole numbers")
    parents = tuple(int(p) for p in parents)
    if not parents:
        raise InvalidMotion("has a skeleton without joints")
    if parents[0] != -1:
        raise InvalidMotion("has a skeleton whose first joint is not the root (its parent must be -1)")
    for j, p in enumerate(parents[1:], start=1):
        if not 0 <= p < j:
            raise InvalidMotion(
                f"has a skeleton whose joint {j} has parent {p} (parents must be earlier joints, forming one tree)"
            )
    _check_numeric("offsets", offsets)
    if offsets.shape != (len(parents), 3) or not np.all(np.isfinite(offsets)):
        raise InvalidMotion(
            f"has skeleton offsets of shape {offsets.shape} or with non-finite values (they must "
            f"be finite and ({len(parents)}, 3))"
        )


def _check_numeric(name: str, array: np.ndarray) -> None:
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        kind = getattr(getattr(array, "dtype", None), "name", type(array).__name__)
        raise InvalidMotion(f"has {name} of type {kind} (it must be numbers)")
