"""The ``mocap`` command line: thin wrappers that turn flags into options and report with rich."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mocap_cli import __version__
from mocap_cli.commands import options as opt
from mocap_cli.commands import print_error, user_errors
from mocap_cli.errors import MocapError

app = typer.Typer(
    name="mocap",
    help="Turn a video of a person into character animation (GLB, FBX, BVH, NPZ).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


class RichReporter:
    """A progress bar per stage, with frames per second."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    @contextmanager
    def stage(self, name: str, total: int | None) -> Iterator:
        if self.quiet:
            yield lambda done, total=None: None
            return
        columns = [
            TextColumn("[bold]{task.description:<16}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
        ]
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task(name, total=total, rate="")

            def tick(done: int, new_total: int | None = None) -> None:
                elapsed = progress.tasks[0].elapsed or 0.0
                rate = f"{done / elapsed:6.1f} it/s" if elapsed > 0 and done else ""
                progress.update(task, completed=done, total=new_total or total, rate=rate)

            yield tick
            t = progress.tasks[0]
            if t.total is None or t.completed < t.total:
                progress.update(task, total=max(t.completed, 1), completed=max(t.completed, 1))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mocap {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """mocap: video → 2D detection → 3D model → smoothing → export."""


@app.command()
@user_errors
def run(
    video: Path = typer.Argument(..., help="Input video (mp4, mov, avi, mkv, ...).", show_default=False),
    export: list[Path] = typer.Option([], "--export", "-e", help="Output file; format from the extension "
                                      "(.glb .fbx .bvh .npz). Repeat for several outputs."),
    model: opt.Model = opt.DEFAULTS["model"],
    weights: opt.Weights = None,
    smpl: opt.Smpl = None,
    start: opt.Start = None,
    end: opt.End = None,
    fps: opt.Fps = None,
    smooth: opt.Smooth = opt.DEFAULTS["smooth"],
    preset: opt.Preset = opt.DEFAULTS["preset"],
    root: opt.Root = opt.DEFAULTS["root"],
    mesh: opt.Mesh = opt.DEFAULTS["mesh"],
    device: opt.Device = opt.DEFAULTS["device"],
    fov: opt.Fov = opt.DEFAULTS["fov"],
    batch_size: opt.BatchSize = opt.DEFAULTS["batch_size"],
    foot_lock: opt.FootLock = opt.DEFAULTS["foot_lock"],
    overwrite: opt.Overwrite = False,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Turn VIDEO into animation files."""
    from mocap_cli.pipeline import run_clip

    if not video.exists():
        raise MocapError(f"{video} does not exist; check the path.")
    flags = opt.ClipSettings(model=model, smooth=smooth, fps=fps, fov=fov, device=device, weights=weights, smpl=smpl,
                             preset=preset, root=root, mesh=mesh, batch_size=batch_size,
                             foot_lock=foot_lock)
    options = opt.build_run_options(tuple(export), flags, start=start, end=end, overwrite=overwrite)
    _summary(video, run_clip(video, options, RichReporter(quiet)))


def _summary(video: Path, result) -> None:
    from mocap_cli.post.contacts import planted_share

    table = Table(title=f"mocap: {video.name}", show_header=False, title_justify="left")
    table.add_row("frames", str(result.frames))
    table.add_row("video fps", f"{float(result.video.fps):.3f}")
    table.add_row("output fps", f"{result.motion.fps:.3f}")
    table.add_row("detection rate", f"{result.detection_rate:.1%}")
    table.add_row("model", result.motion.provenance.get("model", "?"))
    if (planted := planted_share(result.motion)) is not None:
        table.add_row("feet planted", f"{planted:.0%} of frames (--foot-lock auto)")
    table.add_row("time", f"{result.total_seconds:.1f} s ({result.frames / max(result.total_seconds, 1e-9):.1f} frames/s)")
    for path in result.files:
        table.add_row("wrote", str(path))
    for w in result.warnings:
        table.add_row("[yellow]warning[/]", w)
    console.print(table)


@app.command("export")
@user_errors
def export_cmd(
    source: Path = typer.Argument(..., help="A .npz written by `mocap run --export out.npz`."),
    export: list[Path] = typer.Option([], "--export", "-e", help="Output file(s): .glb .fbx .bvh .npz."),
    fps: opt.Fps = None,
    preset: opt.Preset = opt.DEFAULTS["preset"],
    root: opt.Root = opt.DEFAULTS["root"],
    mesh: opt.Mesh = opt.DEFAULTS["mesh"],
    smpl: opt.Smpl = None,
    overwrite: opt.Overwrite = False,
) -> None:
    """Re-export a saved motion without running the model again."""
    from mocap_cli.models.base import ModelSettings
    from mocap_cli.pipeline import RunOptions, export_existing

    options = RunOptions(exports=tuple(export), fps=fps, overwrite=overwrite, preset=preset, root=root,
                         mesh=mesh, settings=ModelSettings(smpl=smpl))
    files = export_existing(source, options, RichReporter(quiet=True))
    for f in files:
        console.print(f"wrote {f}")


@app.command()
def models() -> None:
    """List every model, whether it is ready to run here and, if not, what is missing."""
    from mocap_cli.models.registry import registry
    from mocap_cli.models.base import ModelSettings

    table = Table("model", "kind", "ready", "details")
    for entry in registry().values():
        ready = entry.readiness(ModelSettings())
        table.add_row(entry.name, entry.kind, "[green]yes[/]" if ready.ready else "[red]no[/]",
                      f"{entry.summary}\n[dim]{ready.detail}[/]")
    Console().print(table)


def _route_native_stderr_away() -> None:
    """MediaPipe's C++ side prints start-up notices straight to file descriptor 2. Keep Python's stderr (our
    progress, errors, click's usage messages) on the terminal and send fd 2 itself to /dev/null, unless
    MOCAP_VERBOSE is set."""
    if os.environ.get("MOCAP_VERBOSE"):
        return
    try:
        sys.stderr.flush()
        terminal = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding or "utf-8",
                             errors="replace")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        return
    sys.stderr = terminal
    console.file = terminal


def _mount_subcommands() -> None:
    from mocap_cli.commands import batch as batch_cmd
    from mocap_cli.commands import smpl as smpl_cmd
    from mocap_cli.commands import train as train_cmd
    from mocap_cli.commands import weights as weights_cmd

    app.command("batch", help="Run every clip of a folder: mirrored outputs, a report, resume, parallel jobs.")(
        batch_cmd.batch)
    app.add_typer(weights_cmd.app, name="weights", help="List, import and download model weights.")
    app.add_typer(smpl_cmd.app, name="smpl", help="Import your SMPL body model file; show where it is found.")
    app.add_typer(train_cmd.app, name="train", help="Train a model on clips with 3D ground truth (UNSPAT).")


_mount_subcommands()


def main() -> None:
    _route_native_stderr_away()
    try:
        app()
    except MocapError as exc:  # a command that forgot to catch still gets one sentence, no traceback
        print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; outputs are written whole or not at all.[/]")
        sys.exit(130)


if __name__ == "__main__":
    main()
