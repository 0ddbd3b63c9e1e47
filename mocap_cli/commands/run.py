"""``mocap run VIDEO --export FILE``: one clip through the whole pipeline, with a progress bar per stage and a
summary table at the end."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from mocap_cli.commands import options as opt
from mocap_cli.commands import user_errors
from mocap_cli.commands.progress import RichReporter, console
from mocap_cli.errors import MocapError
from mocap_cli.settings import DEFAULTS, build_run_options, formats_of

if TYPE_CHECKING:
    from mocap_cli.people_pipeline import PeopleChoice
    from mocap_cli.pipeline import RunOptions, RunResult


@user_errors
def run(
    video: Path = typer.Argument(..., help="Input video (mp4, mov, avi, mkv, ...).", show_default=False),
    export: list[Path] = typer.Option(
        [],
        "--export",
        "-e",
        help="Output file; format from the extension (.glb .fbx .bvh .npz). Repeat for several outputs.",
    ),
    model: opt.Model = DEFAULTS.model,
    weights: opt.Weights = None,
    smpl: opt.Smpl = None,
    start: opt.Start = None,
    end: opt.End = None,
    fps: opt.Fps = None,
    smooth: opt.Smooth = DEFAULTS.smooth,
    preset: opt.Preset = DEFAULTS.preset,
    root: opt.Root = DEFAULTS.root,
    mesh: opt.Mesh = DEFAULTS.mesh,
    hands: opt.Hands = DEFAULTS.hands,
    device: opt.Device = DEFAULTS.device,
    fov: opt.Fov = DEFAULTS.fov,
    height: opt.Height = DEFAULTS.height,
    batch_size: opt.BatchSize = DEFAULTS.batch_size,
    foot_lock: opt.FootLock = DEFAULTS.foot_lock,
    overwrite: opt.Overwrite = False,
    preview: opt.Preview = None,
    reference_pose: opt.ReferencePose = DEFAULTS.reference_pose,
    people: opt.People = "largest",
    json_summary: opt.Json = False,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Turn VIDEO into animation files."""
    from mocap_cli.commands import json_report
    from mocap_cli.pipeline import run_clip
    from mocap_cli.settings import parse_people

    try:
        choice = parse_people(people)
        if not video.exists():
            raise MocapError(f"{video} does not exist; check the path.")
        settings = opt.settings_from_flags(locals(), formats=formats_of(export), preview=preview is not None)
        options = build_run_options(tuple(export), settings, preview=preview)
        if choice != "largest":
            _run_people(video, options, choice, quiet, json_summary)
            return
        result = run_clip(video, options, RichReporter(quiet))
    except MocapError as exc:
        if json_summary:
            json_report.emit(json_report.run_failure(video, exc))
        raise
    _summary(video, result)  # stderr; with --json the summary object goes to stdout as well
    if json_summary:
        json_report.emit(json_report.run_summary(video, result))


def _run_people(video: Path, options: RunOptions, choice: PeopleChoice, quiet: bool, json_summary: bool) -> None:
    from mocap_cli.commands import json_report
    from mocap_cli.commands.people import people_summary
    from mocap_cli.people_pipeline import run_people

    result = run_people(video, options, choice, RichReporter(quiet))
    people_summary(video, result)
    if json_summary:
        json_report.emit(json_report.people_run_summary(video, result))


def _summary(video: Path, result: RunResult) -> None:
    from mocap_cli.post.contacts import planted_share
    from mocap_cli.solve.camera import DEFAULT_FOV_DEGREES

    table = Table(title=f"mocap: {video.name}", show_header=False, title_justify="left")
    frames = f"{result.frames} decoded"
    if result.filled_frames:
        frames += f", {result.filled_frames} filled (missing or damaged in the video)"
    table.add_row("frames", f"{frames}, {result.motion.num_frames} written")
    table.add_row("video fps", f"{float(result.video.fps):.3f}")
    table.add_row("output fps", f"{result.motion.fps:.3f}")
    table.add_row("detection rate", f"{result.detection_rate:.1%}")
    table.add_row("model", result.motion.provenance.get("model", "?"))
    if "weights" in result.motion.provenance:
        table.add_row("weights", result.motion.provenance["weights"])
    if "fov_degrees" in result.motion.provenance:
        fov = float(result.motion.provenance["fov_degrees"])
        note = "assumed; --fov sets it" if fov == DEFAULT_FOV_DEGREES else "--fov"
        table.add_row("field of view", f"{fov:g}° ({note})")
    if "height_m" in result.motion.provenance:
        table.add_row("performer height", f"{result.motion.provenance['height_m']} m (--height)")
    if (planted := planted_share(result.motion)) is not None:
        table.add_row("feet planted", f"{planted:.0%} of frames (--foot-lock auto)")
    rate = result.frames / max(result.total_seconds, 1e-9)
    table.add_row("time", f"{result.total_seconds:.1f} s ({rate:.1f} frames/s)")
    for path in result.files:
        table.add_row("wrote", str(path))
    for w in result.warnings:
        table.add_row("[yellow]warning[/]", w)
    console.print(table)
