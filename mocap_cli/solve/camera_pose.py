"""Where the filming camera sits in a Motion's world: recorded by the models, read back by the preview.

Every model builds the world the same way (``solve.posing`` and ``models.mesh.adapter``): camera-frame points
are turned into Y-up axes (``camera.CAMERA_TO_WORLD``), tilted by the gravity alignment and shifted by the
grounding, so ``p_world = R p_camera + t``. For a still camera that is one rotation R and one translation t for
the whole clip. When the camera turned or travelled (``camera_motion``), ``posing.undo_camera_rotation`` first
maps each frame's camera axes into frame 0's, ``p_0 = turn_f p_f + origin_f``, so each frame has its own pose
``R_f = R turn_f``, ``t_f = R origin_f + t``. The intrinsics are the pinhole of ``--fov`` on the video's frame
size (``Pinhole.from_fov``), already in the provenance as ``fov_degrees``. Recording the pose in
``Motion.provenance`` (strings, so it survives the .npz and ``mocap export``) lets the preview draw the exported
skeleton exactly where the pipeline put it.

Per-frame poses are indexed by the frames the model saw (the clip's decoded frames, in order), not by Motion
frames: resampling the Motion (``--fps``, a variable-rate source) changes its frames but not the video's, and
the preview, which walks the video's frames, picks the pose of the frame it draws.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from mocap_cli.core.rotations import quat_to_matrix
from mocap_cli.errors import MocapError
from mocap_cli.solve.camera import CAMERA_TO_WORLD, DEFAULT_FOV_DEGREES, Pinhole

PROVENANCE_KEY = "camera_world_from_camera"


@dataclass(frozen=True)
class CameraPose:
    """world_from_camera: ``p_world = rotation @ p_camera + translation``; camera axes are OpenCV's (x right,
    y down, z forward), world axes Y up, metres. Either one pose for the clip (rotation (3, 3), translation
    (3,)) or one per video frame (rotation (F, 3, 3), translation (F, 3))."""

    rotation: np.ndarray
    translation: np.ndarray

    def __post_init__(self) -> None:
        r, t = np.shape(self.rotation), np.shape(self.translation)
        if not (r == (3, 3) and t == (3,) or len(r) == 3 and r[1:] == (3, 3) and t == (r[0], 3) and r[0] > 0):
            raise ValueError(
                f"a camera pose needs rotation (3, 3) + translation (3,) or (F, 3, 3) + (F, 3), not {r} + {t}"
            )

    @property
    def per_frame(self) -> bool:
        return np.ndim(self.rotation) == 3

    @classmethod
    def from_alignment(
        cls, tilt: np.ndarray, shift: np.ndarray, turns: np.ndarray | None = None, origins: np.ndarray | None = None
    ) -> CameraPose:
        """The pose after ``CAMERA_TO_WORLD``, a world rotation ``tilt`` (quaternion xyzw) about the origin and
        the grounding's subtraction of ``shift`` (3,). With ``turns`` (F, 3, 3) and ``origins`` (F, 3), camera
        frame f was first mapped into frame 0's camera axes by ``p_0 = turns[f] @ p_f + origins[f]``
        (``posing.undo_camera_rotation``): the result has one pose per frame."""
        rotation = quat_to_matrix(np.asarray(tilt, dtype=np.float64)) @ CAMERA_TO_WORLD
        translation = -np.asarray(shift, dtype=np.float64)
        if turns is None:
            return cls(rotation, translation)
        assert origins is not None, "per-frame turns need their origins"
        return cls(
            rotation @ np.asarray(turns, dtype=np.float64),
            np.asarray(origins, dtype=np.float64) @ rotation.T + translation,
        )

    def at(self, frame: int) -> CameraPose:
        """The single pose of video frame ``frame`` (frames past the last keep the last pose)."""
        if not self.per_frame:
            return self
        f = min(max(int(frame), 0), len(self.rotation) - 1)
        return CameraPose(self.rotation[f], self.translation[f])

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points → camera-frame points: (..., 3) with one pose; (F, ..., 3), frame first, per frame."""
        p = np.asarray(points, dtype=np.float64)
        if not self.per_frame:
            return (p - self.translation) @ self.rotation
        if len(p) != len(self.rotation):
            raise ValueError(f"{len(p)} frames of points for {len(self.rotation)} camera poses")
        flat = p.reshape(len(p), -1, 3) - self.translation[:, None]
        return np.einsum("fnj,fjk->fnk", flat, self.rotation).reshape(p.shape)

    def to_json(self) -> str:
        return json.dumps(
            {"rotation": np.round(self.rotation, 9).tolist(), "translation": np.round(self.translation, 9).tolist()},
            separators=(",", ":"),
        )

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

    def at(self, frame: int) -> SolvedCamera:
        """The camera of video frame ``frame`` (itself when the pose is one for the clip)."""
        return self if not self.pose.per_frame else SolvedCamera(self.intrinsics, self.pose.at(frame))

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World points (..., 3) → pixels (..., 2) and depth along the view axis (...,) in metres; points at or
        behind the camera get NaN pixels. A per-frame pose needs points (F, ..., 3), frame first."""
        cam = self.pose.to_camera(points)
        z = cam[..., 2]
        safe = np.where(z > 1e-6, z, np.nan)
        u = self.intrinsics.focal * cam[..., 0] / safe + self.intrinsics.cx
        v = self.intrinsics.focal * cam[..., 1] / safe + self.intrinsics.cy
        return np.stack([u, v], axis=-1), z


def recorded_pose(provenance: dict[str, str]) -> CameraPose | None:
    """The camera pose a Motion's model recorded in its provenance; None when it recorded none (motions from
    older versions). Raises ValueError, KeyError or TypeError when the record is damaged."""
    text = provenance.get(PROVENANCE_KEY)
    return CameraPose.from_json(text) if text else None


def solved_camera(provenance: dict[str, str], width: int, height: int) -> SolvedCamera | None:
    """The camera a Motion was solved with, for frames of ``width`` × ``height``; None when the model did not
    record one (motions from older versions)."""
    try:
        pose = recorded_pose(provenance)
    except (ValueError, KeyError, TypeError) as exc:
        raise MocapError(
            "The motion's recorded camera pose is damaged, so no preview can be drawn; run the clip again."
        ) from exc
    if pose is None:
        return None
    fov = float(provenance.get("fov_degrees", DEFAULT_FOV_DEGREES))
    return SolvedCamera(Pinhole.from_fov(width, height, fov), pose)
