"""The skinned-mesh type that body models produce and exporters write."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SkinnedMesh:
    """A triangle mesh bound to a skeleton's rest pose.

    vertices: (V, 3) metres, rest pose, world frame. faces: (T, 3) vertex indices.
    joints: (V, 4) skeleton joint indices; weights: (V, 4) their skinning weights, summing to 1.
    """

    vertices: np.ndarray
    faces: np.ndarray
    joints: np.ndarray
    weights: np.ndarray
    name: str = "body"
