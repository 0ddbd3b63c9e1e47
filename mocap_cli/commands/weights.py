"""``mocap weights``: list, import and download the authors' pretrained weights (see ``mocap_cli.weights``).

Importing validates the file with the model family's own loader, the one its ``weights/<family>.toml``
names (``mocap_cli.weights.validate``), before anything is copied into the cache.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from mocap_cli.commands import user_errors
from mocap_cli.errors import MocapError
from mocap_cli.weights.cache import cache_dir, import_weights, installed
from mocap_cli.weights.download import download
from mocap_cli.weights.registry import get_spec, load_registry
from mocap_cli.weights.validate import has_loader, validator_for

app = typer.Typer(
    name="weights",
    help="Pretrained weights: list what is installed, import a downloaded file, download where a direct URL exists.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# ------------------------------------------------------------------------------------------ commands


def _yes_no(value: bool) -> str:
    return "[green]yes[/]" if value else "[dim]no[/]"


@app.command("list")
@user_errors
def list_cmd() -> None:
    """Every known weights variant: installed or not, where, verified (published sha256) and validated (loaded)."""
    registry = load_registry()
    table = Table("name", "model", "installed", "file", "verified", "validated", "sha256", "get it",
                  title=f"weights cache: {cache_dir()}", title_justify="left")  # fmt: skip
    for spec in sorted(registry.values(), key=lambda s: (s.family, not s.is_default, s.name)):
        found = installed(spec.name)
        name = spec.name + (" [dim](default)[/]" if spec.is_default else "")
        get = "download" if spec.direct_url else "import"
        if found is None:
            sha = spec.sha256[:12] if spec.sha256 else "-"
            table.add_row(name, spec.model, "[red]no[/]", "-", "-", "-", sha, get)
        else:
            table.add_row(name, spec.model, "[green]yes[/]", str(found.path), _yes_no(found.verified),
                          _yes_no(found.validated), found.sha256[:12], get)  # fmt: skip
    Console(soft_wrap=True).print(table)


@app.command("import")
@user_errors
def import_cmd(
    name: str = typer.Argument(..., help="Registry name (see `mocap weights list`), or a model name for its default."),
    file: Path = typer.Argument(..., help="The checkpoint file you downloaded."),
) -> None:
    """Check FILE loads as NAME (layout, safe unpickling), record its sha256 and copy it into the cache."""
    registry = load_registry()
    spec = get_spec(name, registry)
    result = import_weights(spec.name, file, validate=validator_for(spec), registry=registry)
    console = Console()
    console.print(f"imported [bold]{spec.name}[/]: {result.path}", highlight=False)
    console.print(
        f"sha256 {result.sha256}" + (" (matches the published digest)" if result.verified else ""), highlight=False
    )
    if not has_loader(spec):
        Console(stderr=True).print(
            f"[yellow]note:[/] mocap cannot load {spec.family} networks yet, so only the checkpoint format and "
            "tensor count were checked.",
            highlight=False,
        )


@app.command("download")
@user_errors
def download_cmd(
    name: str = typer.Argument(..., help="Registry name (see `mocap weights list`), or a model name for its default."),
) -> None:
    """Download NAME where a direct URL exists (resumable, sha256-checked); otherwise say where to get it."""
    registry = load_registry()
    spec = get_spec(name, registry)
    found = installed(spec.name)
    if found is not None and (not spec.sha256 or found.sha256 == spec.sha256):
        Console().print(f"{spec.name} is already installed: {found.path}", highlight=False)
        return
    if not spec.direct_url:
        file_hint = spec.file_name if "*" not in spec.file_name else f"the {spec.file_name} file"
        raise MocapError(
            f"{spec.name} has no direct download URL; get {file_hint} from {spec.where_to_get()} and run "
            f"`mocap weights import {spec.name} FILE`."
        )
    columns = [
        TextColumn(f"[bold]{spec.name}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task("download", total=None)

        def tick(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        result = download(spec.name, progress=tick, validate=validator_for(spec), registry=registry)
    console = Console()
    console.print(f"downloaded [bold]{spec.name}[/]: {result.path}", highlight=False)
    console.print(
        f"sha256 {result.sha256}"
        + (" (matches the published digest)" if result.verified else " (no published digest to check)"),
        highlight=False,
    )
