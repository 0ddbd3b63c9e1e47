"""Sub-commands of ``mocap`` (Typer sub-apps the CLI mounts) and what they share."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console

from mocap_cli.errors import MocapError

err_console = Console(stderr=True)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a ``MocapError`` into its one sentence on stderr and the error's exit code (no traceback)."""
    try:
        yield
    except MocapError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        raise typer.Exit(exc.exit_code) from None
