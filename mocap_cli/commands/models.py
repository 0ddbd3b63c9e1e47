"""``mocap models``: every model of the registry, whether it can run here and, if not, what is missing."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def models() -> None:
    """List every model, whether it is ready to run here and, if not, what is missing."""
    from mocap_cli.models.base import ModelSettings
    from mocap_cli.models.registry import registry

    table = Table("model", "kind", "ready", "details")
    for entry in registry().values():
        ready = entry.readiness(ModelSettings())
        table.add_row(
            entry.name,
            entry.kind,
            "[green]yes[/]" if ready.ready else "[red]no[/]",
            f"{entry.summary}\n[dim]{ready.detail}[/]",
        )
    Console().print(table)
