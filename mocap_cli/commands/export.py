"""``mocap export MOTION.npz --export FILE``: re-export a saved motion (other formats, rig preset, root
mode, body, frame rate) without running the model again. Several people (``out.person_1.npz``, … as
``mocap run --people all -e out.npz`` writes them, or ``out.npz`` naming them all) are exported together:
one .glb/.fbx with everyone, .bvh/.npz per person."""

from __future__ import annotations

from pathlib import Path

import typer

from mocap_cli.commands import options as opt
from mocap_cli.commands import user_errors
from mocap_cli.commands.progress import RichReporter, console
from mocap_cli.settings import DEFAULTS, RunSettings, build_run_options, formats_of


@user_errors
def export_cmd(
    source: list[Path] = typer.Argument(
        ...,
        help="A .npz written by `mocap run --export out.npz`; several "
        "people's .npz files (or out.npz for out.person_*.npz) export together.",
    ),
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
    from mocap_cli.people_pipeline import export_people, people_sources
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
    options = build_run_options(tuple(export), settings)
    sources = people_sources(list(source))
    if len(sources) == 1:
        files = export_existing(sources[0], options, RichReporter(quiet=True))
    else:
        files = export_people(sources, options, RichReporter(quiet=True))
    for f in files:
        console.print(f"wrote {f}")
