"""``mocap batch IN_DIR --out OUT_DIR``: every clip of a folder, with a report (engine: ``mocap_cli.batch``)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from mocap_cli.batch.plan import DEFAULT_PATTERNS, BatchOptions
from mocap_cli.batch.report import LOG_NAME, REPORT_CSV, REPORT_JSON
from mocap_cli.batch.run import BatchResult, run_batch
from mocap_cli.commands import json_report, user_errors
from mocap_cli.commands import options as opt
from mocap_cli.commands.progress import RichBatchDisplay, console
from mocap_cli.errors import MocapError
from mocap_cli.settings import DEFAULTS, parse_formats


def summary_table(result: BatchResult, out_dir: Path) -> Table:
    counts = result.report.counts()
    title = f"mocap batch: {counts['done']} done, {counts['skipped']} up to date, {counts['failed']} failed" + (
        f", {counts['pending']} not finished" if counts["pending"] else ""
    )
    table = Table(
        "clip", "status", "frames", "det.", "people", "time", "frames/s", "notes", title=title, title_justify="left"
    )
    style = {"done": "green", "skipped": "cyan", "failed": "red", "pending": "yellow"}
    for row in result.rows:
        fresh = row.status == "done"
        notes = "; ".join(row.warnings) if row.status in ("done", "skipped") else "see below"
        table.add_row(
            row.clip,
            f"[{style.get(row.status, 'white')}]{row.status}[/]",
            "" if row.frames is None else str(row.frames),
            "" if row.detection_rate is None else f"{row.detection_rate:.0%}",
            "" if row.people is None else f"{row.people} ({', '.join(map(str, row.person_frames))} frames)",
            f"{row.seconds:.1f} s" if fresh and row.seconds is not None else "",
            f"{row.frames_per_second:.1f}" if fresh and row.frames_per_second is not None else "",
            notes,
        )
    return table


def print_summary(result: BatchResult, out_dir: Path) -> None:
    console.print(summary_table(result, out_dir))
    for row in result.rows:
        if row.status in ("failed", "pending"):
            console.print(f"[red]{row.status}[/] {row.clip}: {row.reason}", highlight=False)
    console.print(f"report: {out_dir / REPORT_JSON} and {REPORT_CSV}; log: {out_dir / LOG_NAME}", highlight=False)


@user_errors
def batch(
    in_dir: Path = typer.Argument(..., help="Folder of clips.", show_default=False),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output folder; mirrors IN_DIR's sub-folders.", show_default=False
    ),
    export_format: str = typer.Option(
        "glb", "--export-format", "-f", help="Comma-separated output formats: glb, fbx, bvh, npz."
    ),
    model: opt.Model = DEFAULTS.model,
    weights: opt.Weights = None,
    smpl: opt.Smpl = None,
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
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Include clips in sub-folders."),
    pattern: Optional[str] = typer.Option(
        None, help=f"Comma-separated file name globs (default: {','.join(DEFAULT_PATTERNS)})."
    ),
    jobs: Optional[int] = typer.Option(
        None, "--jobs", "-j", min=1, help="Clips processed at once (default: CPU cores)."
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Skip clips already done with the same input and settings; redo the rest."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo every clip, replacing existing outputs."),
    ray: Optional[str] = typer.Option(
        None,
        "--ray",
        help="Run clips as Ray tasks: 'auto', a cluster address or 'local' "
        "(needs the ray extra; IN_DIR and OUT on a shared filesystem).",
    ),
    preview: bool = typer.Option(
        False, "--preview", help="Also write <clip>.preview.mp4 beside each clip's outputs (see `mocap run --preview`)."
    ),
    reference_pose: opt.ReferencePose = DEFAULTS.reference_pose,
    people: opt.People = DEFAULTS.people,
    json_summary: opt.Json = False,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress display (the summary is still shown)."),
) -> None:
    """Turn every clip in IN_DIR into animation files in OUT; a failing clip is reported, the batch goes on."""
    patterns = tuple(p.strip() for p in pattern.split(",") if p.strip()) if pattern else DEFAULT_PATTERNS
    try:  # run_batch raises only before the first clip starts (settings, folders); failing clips are reported
        settings = opt.settings_from_flags(locals(), formats=parse_formats(export_format))
        options = BatchOptions(
            in_dir=in_dir,
            out_dir=out,
            settings=settings,
            patterns=patterns,
            recursive=recursive,
            jobs=jobs,
            resume=resume,
            overwrite=overwrite,
            ray_address=ray,
        )
        result = run_batch(options, RichBatchDisplay(quiet))
    except MocapError as exc:
        if json_summary:
            json_report.emit(json_report.batch_failure(in_dir, exc))
        raise
    print_summary(result, out.resolve())  # stderr; with --json the summary object goes to stdout as well
    if json_summary:
        json_report.emit(json_report.batch_summary(result))
    if result.interrupted:
        console.print(
            "[yellow]interrupted; finished clips are kept, no partial file was left. "
            "Rerun with --resume to finish the rest.[/]"
        )
    raise typer.Exit(result.exit_code)


def main() -> None:
    """``python -m mocap_cli.commands.batch``: the command on its own (until the CLI mounts it)."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(batch)
    app()


if __name__ == "__main__":
    main()
