"""``mocap export MOTION.npz --export FILE``: re-export a saved motion (other formats, rig preset, root
mode, body, frame rate) without running the model again."""

from __future__ import annotations

from pathlib import Path

import typer

from mocap_cli.commands import options as opt
from mocap_cli.commands import user_errors
from mocap_cli.commands.progress import RichReporter, console
from mocap_cli.settings import DEFAULTS, RunSettings, build_run_options, formats_of


@user_errors
def export_cmd(
    source: Path = typer.Argument(..., help="A .npz written by `mocap run --export out.npz`."),
    export: list[Path] = typer.Option([], "--export", "-e", help="Output file(s): .glb .fbx .bvh .npz."),
    fps: opt.Fps = None,
    preset: opt.Preset = DEFAULTS.preset,
    root: opt.Root = DEFAULTS.root,
    mesh: opt.Mesh = DEFAULTS.mesh,
    smpl: opt.Smpl = None,
    overwrite: opt.Overwrite = False,
    reference_pose: opt.ReferencePose = DEFAULTS.reference_pose,
) -> None:
    """Re-export a saved motion without running the model again."""
    from mocap_cli.pipeline import export_existing

    settings = RunSettings(
        formats=formats_of(export),
        fps=fps,
        preset=preset,
        root=root,
        mesh=mesh,
        smpl=smpl,
        overwrite=overwrite,
        reference_pose=reference_pose.lower(),
    )
    files = export_existing(source, build_run_options(tuple(export), settings), RichReporter(quiet=True))
    for f in files:
        console.print(f"wrote {f}")
