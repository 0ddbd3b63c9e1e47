"""The ``mocap`` command line: mounts the commands (one module each under ``mocap_cli.commands``) and turns
anything that escapes them into one sentence and an exit code (``commands.crash`` logs the unforeseen)."""

from __future__ import annotations

import os
import sys

import typer

from mocap_cli import __version__
from mocap_cli.commands import print_error
from mocap_cli.commands.crash import crash_sentence, debug_enabled
from mocap_cli.commands.progress import console
from mocap_cli.errors import MocapError, os_error_sentence

app = typer.Typer(
    name="mocap",
    help="Turn a video of a person into character animation (GLB, FBX, BVH, NPZ).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mocap {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """mocap: video → 2D detection → 3D model → smoothing → export."""


def _route_native_stderr_away() -> None:
    """MediaPipe's C++ side prints start-up notices straight to file descriptor 2. Keep Python's stderr (our
    progress, errors, click's usage messages) on the terminal and send fd 2 itself to /dev/null, unless
    MOCAP_VERBOSE is set."""
    if os.environ.get("MOCAP_VERBOSE"):
        return
    try:
        sys.stderr.flush()
        terminal = os.fdopen(os.dup(2), "w", buffering=1, encoding=sys.stderr.encoding or "utf-8", errors="replace")
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    except OSError:
        return
    sys.stderr = terminal
    console.file = terminal


def _mount_subcommands() -> None:
    from mocap_cli.commands import batch as batch_cmd
    from mocap_cli.commands import export as export_cmd
    from mocap_cli.commands import models as models_cmd
    from mocap_cli.commands import run as run_cmd
    from mocap_cli.commands import smpl as smpl_cmd
    from mocap_cli.commands import train as train_cmd
    from mocap_cli.commands import weights as weights_cmd

    app.command("run")(run_cmd.run)
    app.command("export")(export_cmd.export_cmd)
    app.command("models")(models_cmd.models)
    app.command("batch", help="Run every clip of a folder: mirrored outputs, a report, resume, parallel jobs.")(
        batch_cmd.batch
    )
    app.add_typer(weights_cmd.app, name="weights", help="List, import and download model weights.")
    app.add_typer(smpl_cmd.app, name="smpl", help="Import your SMPL body model file; show where it is found.")
    app.add_typer(train_cmd.app, name="train", help="Train a model on clips with 3D ground truth (UNSPAT).")


_mount_subcommands()


def main(argv: list[str] | None = None) -> None:
    """The ``mocap`` entry point (``argv``: the arguments, default ``sys.argv[1:]``). Whatever happens, the
    user sees one sentence and the process exits 0 (done), 1 (failed) or 2 (usage error); set
    MOCAP_DEBUG=1 to get the traceback of an unexpected failure instead."""
    _route_native_stderr_away()
    try:
        app(args=argv, prog_name="mocap")
    except MocapError as exc:  # a command that forgot to catch still gets one sentence, no traceback
        print_error(exc)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted; outputs are written whole or not at all.[/]")
        sys.exit(130)
    except OSError as exc:  # disk full, read-only, permissions: the system's words, not a traceback
        if debug_enabled():
            raise
        print_error(MocapError(os_error_sentence(exc)))
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - the last resort: one sentence, the traceback in a log file
        if debug_enabled():
            raise
        print_error(MocapError(crash_sentence(exc)))
        sys.exit(1)


if __name__ == "__main__":
    main()
