"""``mocap`` sub-commands written as Typer sub-apps (mounted by ``mocap_cli.cli``), and what they share."""

from __future__ import annotations

import functools
from typing import Callable, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from mocap_cli.errors import MocapError

F = TypeVar("F", bound=Callable[..., object])


def print_error(exc: MocapError) -> None:
    """``error: <message>`` in red on stderr (the message is one sentence, no traceback)."""
    Console(stderr=True, soft_wrap=True).print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)


def user_errors(command: F) -> F:
    """Decorate a Typer command so a ``MocapError`` prints as one red line on stderr and exits non-zero."""

    @functools.wraps(command)
    def wrapper(*args: object, **kwargs: object) -> object:
        try:
            return command(*args, **kwargs)
        except MocapError as exc:
            print_error(exc)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]
