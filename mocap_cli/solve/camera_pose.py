"""Where the filming camera sits in a Motion's world: recorded by the models, read back by the preview.

Every model builds the world the same way (``solve.posing`` and ``models.mesh.adapter``): camera-frame points
are turned into Y-up axes (``camera.CAMERA_TO_WORLD``), tilted by the gravity alignment and shifted by the
grounding. So ``p_world = R p_camera + t`` with one rotation R and one translation t for the whole clip. The
intrinsics are the pinhole of ``--fov`` on the video's frame size (``Pinhole.from_fov``), already in the
provenance as ``fov_degrees``. Recording (R, t) in ``Motion.provenance`` (strings, so it survives the .npz
and ``mocap export``) lets the preview draw the exported skeleton exactly where the pipeline put it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from mocap_cli.core.rotations import quat_to_matrix
from mocap_cli.solve.camera import CAMERA_TO_WORLD, DEFAULT_FOV_DEGREES, Pinhole

PROVENANCE_KEY = "camera_world_from_camera"


@dataclass(frozen=True)
class CameraPose:
    """world_from_camera: ``p_world = rotation @ p_camera + translation`` (rotation (3, 3), translation (3,));
    camera axes are OpenCV's (x right, y down, z forward), world axes Y up, metres."""

    rotation: np.ndarray
    translation: np.ndarray

    @classmethod
    def from_alignment(cls, tilt: np.ndarray, shift: np.ndarray) -> CameraPose:
        """The pose after ``CAMERA_TO_WORLD``, a world rotation ``tilt`` (quaternion xyzw) about the origin and
        the grounding's subtraction of ``shift`` (3,)."""
        rotation = quat_to_matrix(np.asarray(tilt, dtype=np.float64)) @ CAMERA_TO_WORLD
        return cls(rotation, -np.asarray(shift, dtype=np.float64))

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) → camera-frame points (..., 3)."""
        return (np.asarray(points, dtype=np.float64) - self.translation) @ self.rotation

    def to_json(self) -> str:
        return json.dumps({"rotation": np.round(self.rotation, 9).tolist(),
                           "translation": np.round(self.translation, 9).tolist()})

    @classmethod
    def from_json(cls, text: str) -> CameraPose:
        data = json.loads(text)
        return cls(np.asarray(data["rotation"], dtype=np.float64), np.asarray(data["translation"], dtype=np.float64))


def record_camera_pose(provenance: dict[str, str], pose: CameraPose) -> None:
    provenance[PROVENANCE_KEY] = pose.to_json()


def grounding_shift(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """The constant (3,) that grounding subtracted from a root path: ``before`` and ``after`` are (F, 3)."""
    return np.asarray(before[0], dtype=np.float64) - np.asarray(after[0], dtype=np.float64)


@dataclass(frozen=True)
class SolvedCamera:
    """The full camera of a run: intrinsics and pose. ``project`` maps world points to pixels of the source
    frames (OpenCV convention: pixel centres at integers)."""

    intrinsics: Pinhole
    pose: CameraPose

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (..., 3) → pixels (..., 2) and depth along the view axis (...,) in metres; points at or
        behind the camera get NaN pixels."""
        cam = self.pose.to_camera(points)
        z = cam[..., 2]
        safe = np.where(z > 1e-6, z, np.nan)
        u = self.intrinsics.focal * cam[..., 0] / safe + self.intrinsics.cx
        v = self.intrinsics.focal * cam[..., 1] / safe + self.intrinsics.cy
        return np.stack([u, v], axis=-1), z


def solved_camera(provenance: dict[str, str], width: int, height: int) -> SolvedCamera | None:
    """The camera a Motion was solved with, for frames of ``width`` × ``height``; None when the model did not
    record one (motions from older versions)."""
    text = provenance.get(PROVENANCE_KEY)
    if not text:
        return None
    fov = float(provenance.get("fov_degrees", DEFAULT_FOV_DEGREES))
    return SolvedCamera(Pinhole.from_fov(width, height, fov), CameraPose.from_json(text))
