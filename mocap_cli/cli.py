"""The ``mocap`` command line: thin wrappers that turn flags into options and report with rich."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from mocap_cli import __version__
from mocap_cli.camera import DEFAULT_FOV_DEGREES
from mocap_cli.errors import MocapError

app = typer.Typer(
    name="mocap",
    help="Turn a video of a person into character animation (BVH, glTF/GLB, NPZ).",
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


def _fail(exc: MocapError) -> None:
    console.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(exc.exit_code)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mocap {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """mocap: video → 2D detection → 3D model → smoothing → export."""


def _device(choice: str) -> str:
    import torch

    choice = choice.lower()
    if choice not in ("auto", "cpu", "cuda"):
        raise MocapError(f"Unknown device '{choice}'; use auto, cpu or cuda.")
    if choice == "cuda" and not torch.cuda.is_available():
        raise MocapError("--device cuda was asked for but no CUDA GPU is available; use --device cpu.")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return choice


@app.command()
def run(
    video: Path = typer.Argument(..., help="Input video (mp4, mov, avi, mkv, ...).", show_default=False),
    export: list[Path] = typer.Option([], "--export", "-e", help="Output file; format from the extension "
                                      "(.glb .bvh .npz). Repeat for several outputs."),
    model: str = typer.Option("mediapipe", "--model", "-m", help="3D model (see `mocap models`)."),
    start: Optional[float] = typer.Option(None, help="Start time in seconds."),
    end: Optional[float] = typer.Option(None, help="End time in seconds."),
    fps: Optional[float] = typer.Option(None, help="Resample the output to this frame rate (default: the video's)."),
    smooth: str = typer.Option("light", help="Smoothing preset: none, light, strong."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    fov: float = typer.Option(DEFAULT_FOV_DEGREES, help="Assumed camera field of view (degrees, longer side)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Turn VIDEO into animation files."""
    try:
        from mocap_cli.models.base import ModelSettings
        from mocap_cli.pipeline import RunOptions, run_clip

        if not video.exists():
            raise MocapError(f"{video} does not exist; check the path.")
        options = RunOptions(
            exports=tuple(export), model=model, start=start, end=end, fps=fps, smooth=smooth,
            overwrite=overwrite, settings=ModelSettings(device=_device(device), fov_degrees=fov),
        )
        result = run_clip(video, options, RichReporter(quiet))
    except MocapError as exc:
        _fail(exc)
        return
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; no partial output was left.[/]")
        raise typer.Exit(130)
    _summary(video, result)


def _summary(video: Path, result) -> None:
    table = Table(title=f"mocap: {video.name}", show_header=False, title_justify="left")
    table.add_row("frames", str(result.frames))
    table.add_row("video fps", f"{float(result.video.fps):.3f}")
    table.add_row("output fps", f"{result.motion.fps:.3f}")
    table.add_row("detection rate", f"{result.detection_rate:.1%}")
    table.add_row("model", result.motion.provenance.get("model", "?"))
    table.add_row("time", f"{result.total_seconds:.1f} s ({result.frames / max(result.total_seconds, 1e-9):.1f} frames/s)")
    for path in result.files:
        table.add_row("wrote", str(path))
    for w in result.warnings:
        table.add_row("[yellow]warning[/]", w)
    console.print(table)


@app.command("export")
def export_cmd(
    source: Path = typer.Argument(..., help="A .npz written by `mocap run --export out.npz`."),
    export: list[Path] = typer.Option([], "--export", "-e", help="Output file(s): .glb .bvh .npz."),
    fps: Optional[float] = typer.Option(None, help="Resample to this frame rate."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing output files."),
) -> None:
    """Re-export a saved motion without running the model again."""
    try:
        from mocap_cli.pipeline import RunOptions, export_existing

        if not export:
            raise MocapError("No output given; add --export FILE (e.g. --export out.bvh).")
        files = export_existing(source, RunOptions(exports=tuple(export), fps=fps, overwrite=overwrite),
                                RichReporter(quiet=True))
    except MocapError as exc:
        _fail(exc)
        return
    for f in files:
        console.print(f"wrote {f}")


@app.command()
def models() -> None:
    """List every model, whether it is ready to run here and, if not, what is missing."""
    from mocap_cli.models import registry
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


def main() -> None:
    _route_native_stderr_away()
    try:
        app()
    except MocapError as exc:  # a command that forgot to catch still gets one sentence, no traceback
        console.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
