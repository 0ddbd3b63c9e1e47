"""What every model gets and gives: the clip (video + 2D track) in, a ``Motion`` out."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Protocol

from mocap_cli.capture.detect import Track2D
from mocap_cli.capture.video import Frame, VideoInfo
from mocap_cli.core.motion import Motion
from mocap_cli.settings import DEFAULTS
from mocap_cli.solve.camera import Pinhole
from mocap_cli.solve.camera_motion import CameraMotion, camera_motion_from_pairs, estimate_camera_motion

Progress = Callable[[int, int], None]  # (done, total)


@dataclass
class Clip:
    """One person's clip as the model stage sees it. ``frames()`` decodes the (trimmed) video again, for
    models that need pixels (person crops); frames arrive one at a time so memory stays bounded."""

    video: VideoInfo
    track: Track2D
    frames: Callable[[], Iterator[Frame]]

    def camera_motion(self, camera: Pinhole) -> CameraMotion:
        """How the filming camera turned (``solve.camera_motion``), so every model undoes a pan or an orbit: from
        the background tracked during detection, or tracked now for a track made elsewhere."""
        track = self.track
        if track.background is None:
            return estimate_camera_motion(self.frames(), track.boxes, camera, float(track.fps))
        return camera_motion_from_pairs(track.background, track.num_frames, camera)


@dataclass(frozen=True)
class ModelSettings:
    """The models' view of the run settings (``settings.RunSettings.model_settings``; defaults from there)."""

    device: str = DEFAULTS.device  # auto | cpu | cuda; torch models get it resolved by ``create_model``
    fov_degrees: float = DEFAULTS.fov
    weights: Path | None = None  # --weights FILE or a registry variant name
    smpl: Path | None = None  # --smpl PATH
    batch_size: int = DEFAULTS.batch_size
    height: float | None = DEFAULTS.height  # --height: the performer's stature, metres (joint models)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def torch_device(self) -> str:
        """The concrete torch device ("cpu" or "cuda"); ``auto`` picks CUDA when a GPU is usable."""
        return resolve_device(self.device)


def resolve_device(choice: str) -> str:
    """``auto`` → cuda when a CUDA GPU is usable, else cpu; an explicit cuda without one is an error."""
    import torch

    from mocap_cli.errors import MocapError

    if choice == "cuda" and not torch.cuda.is_available():
        raise MocapError("--device cuda was asked for but no CUDA GPU is available; use --device cpu.")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


class MotionModel(Protocol):
    name: str

    def estimate(self, clip: Clip, progress: Progress | None = None) -> Motion:
        """Turn the clip into a Motion on the canonical skeleton (world frame, metres)."""
        ...


@dataclass(frozen=True)
class Readiness:
    ready: bool
    detail: str  # what is used, or what is missing and how to get it


@dataclass(frozen=True)
class ModelEntry:
    """A registry row: how to build a model and how to tell whether it can run here."""

    name: str
    summary: str
    kind: str  # "landmarks", "lifter" or "mesh"
    build: Callable[[ModelSettings], MotionModel]
    readiness: Callable[[ModelSettings], Readiness]
