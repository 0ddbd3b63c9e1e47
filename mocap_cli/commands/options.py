"""Command-line options shared by `mocap run`, `mocap export` and `mocap batch`: defined once, so the same
flag means the same thing everywhere."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from mocap_cli.solve.camera import DEFAULT_FOV_DEGREES
from mocap_cli.errors import MocapError

if TYPE_CHECKING:
    from mocap_cli.pipeline import RunOptions

Model = Annotated[str, typer.Option("--model", "-m", help="3D model (see `mocap models`).")]
Weights = Annotated[Optional[str], typer.Option(
    "--weights", help="Checkpoint file or registry variant for the model (default: the installed one).")]
Smpl = Annotated[Optional[Path], typer.Option(
    "--smpl", help="Your SMPL model file or folder (mesh models, --mesh smpl). Default: $MOCAP_SMPL_DIR or "
                   "the copy imported with `mocap smpl import`.")]
Start = Annotated[Optional[float], typer.Option(help="Start time in seconds.")]
End = Annotated[Optional[float], typer.Option(help="End time in seconds.")]
Fps = Annotated[Optional[float], typer.Option(help="Resample the output to this frame rate (default: the video's).")]
Smooth = Annotated[str, typer.Option(help="Smoothing preset: none, light, strong.")]
Preset = Annotated[str, typer.Option(help="Rig preset: blender, mixamo, ue5, unity, vrm (bone names, rest pose, units).")]
Root = Annotated[str, typer.Option(help="Root motion: world (full path), in-place (no horizontal travel), none.")]
Mesh = Annotated[str, typer.Option(help="Body mesh in GLB/FBX: auto (anny when installed), anny, smpl, none.")]
Device = Annotated[str, typer.Option(help="auto, cpu or cuda.")]
Fov = Annotated[float, typer.Option(help="Assumed camera field of view (degrees, across the longer side).")]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Windows or crops per model batch.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")]
FootLock = Annotated[str, typer.Option("--foot-lock", help="auto: detect ground contacts, pin planted feet, fit the "
                                       "floor; off: export the motion as the model gives it.")]

DEFAULTS = {"model": "mediapipe", "smooth": "light", "preset": "blender", "root": "world", "mesh": "auto",
            "device": "auto", "fov": DEFAULT_FOV_DEGREES, "batch_size": 32, "foot_lock": "auto"}


def check_device(choice: str) -> str:
    """Validate ``--device`` without importing torch; models that use torch resolve ``auto`` when built."""
    choice = choice.lower()
    if choice not in ("auto", "cpu", "cuda"):
        raise MocapError(f"Unknown device '{choice}'; use auto, cpu or cuda.")
    return choice


def weights_path(value: str | None) -> Path | None:
    """``--weights`` takes a file or a registry variant name; both travel as a Path to the model."""
    return Path(value) if value else None


@dataclass(frozen=True)
class ClipSettings:
    """Everything that decides a clip's outputs: the ``mocap run`` flags a batch shares (same defaults)."""

    formats: tuple[str, ...] = ("glb",)
    model: str = "mediapipe"
    smooth: str = "light"
    fps: float | None = None
    fov: float | None = None  # None: the camera module's default
    device: str = "auto"  # auto | cpu | cuda (torch models resolve auto when built, as in `mocap run`)
    weights: str | None = None
    smpl: Path | None = None
    preset: str = "blender"  # rig preset
    root: str = "world"
    mesh: str = "auto"
    batch_size: int = 32
    foot_lock: str = "auto"  # auto | off


def build_run_options(exports: tuple[Path, ...], settings: ClipSettings, *, start: float | None = None,
                      end: float | None = None, overwrite: bool = False) -> RunOptions:
    """``RunOptions`` from the shared flags, exactly as ``mocap run`` builds them."""
    from mocap_cli.models.base import ModelSettings
    from mocap_cli.pipeline import RunOptions

    return RunOptions(
        exports=tuple(exports), model=settings.model, start=start, end=end, fps=settings.fps,
        smooth=settings.smooth, overwrite=overwrite, preset=settings.preset, root=settings.root, mesh=settings.mesh,
        foot_lock=settings.foot_lock,
        settings=ModelSettings(
            device=check_device(settings.device),
            fov_degrees=DEFAULT_FOV_DEGREES if settings.fov is None else settings.fov,
            weights=weights_path(settings.weights), smpl=settings.smpl, batch_size=settings.batch_size,
        ),
    )
