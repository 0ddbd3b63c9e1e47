"""Command-line options shared by `mocap run`, `mocap export` and `mocap batch`: defined once, so the same
flag means the same thing everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from mocap_cli.solve.camera import DEFAULT_FOV_DEGREES

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

DEFAULTS = {"model": "mediapipe", "smooth": "light", "preset": "blender", "root": "world", "mesh": "auto",
            "device": "auto", "fov": DEFAULT_FOV_DEGREES, "batch_size": 32}
