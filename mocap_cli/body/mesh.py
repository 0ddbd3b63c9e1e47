"""The skinned body mesh type shared by body models and exporters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class SkinnedMesh:
    """A triangle mesh bound to a skeleton with up to four joint influences per vertex.

    ``vertices`` (V, 3) float, metres, in the rest pose world frame of the skeleton it is bound to;
    ``faces`` (T, 3) int vertex indices; ``joints`` (V, 4) int indices into the skeleton's joints;
    ``weights`` (V, 4) float, each row summing to 1."""

    vertices: np.ndarray
    faces: np.ndarray
    joints: np.ndarray
    weights: np.ndarray
    name: str = "body"
