"""``mocap weights``: list, import and download the authors' pretrained weights (see ``mocap_cli.weights.registry``).

Importing validates the file with the model family's own loader (strict layout check, ``weights_only``
unpickling) before anything is copied into the cache. Families without a loader yet get the weaker check
that the file is a readable checkpoint whose state dict has the registry's tensor count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from mocap_cli.weights import registry as W
from mocap_cli.commands import user_errors
from mocap_cli.errors import MocapError

app = typer.Typer(
    name="weights",
    help="Pretrained weights: list what is installed, import a downloaded file, download where a direct URL exists.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Validator = Callable[[Path], None]


# ------------------------------------------------------------------------------------------ validators


def _mixste(spec: W.WeightSpec, path: Path) -> None:
    from mocap_cli.models.lifters.loading import load_mixste

    load_mixste(path)


def _strided(spec: W.WeightSpec, path: Path) -> None:
    if spec.input.startswith("pose3d"):  # the refine MLP file
        import torch

        from mocap_cli.nets.checkpoints import load_checkpoint, strip_prefix, tensors_only
        from mocap_cli.nets.strided import RefineNet

        sd = strip_prefix(tensors_only(load_checkpoint(path), path))
        out = sd.get("post_refine.3.weight")
        refine = RefineNet(int(out.shape[0]) // 2 if isinstance(out, torch.Tensor) else 17)
        try:
            refine.load_state_dict(sd, strict=True)
        except RuntimeError as exc:
            raise MocapError(f"{path} does not match the Strided Transformer refine layout; check that it is the right file.") from exc
        return
    from mocap_cli.models.lifters.loading import load_strided

    load_strided(path)


def _maed(spec: W.WeightSpec, path: Path) -> None:
    from mocap_cli.nets.maed import load_maed

    load_maed(path)


def _int(spec: W.WeightSpec, path: Path) -> None:
    from mocap_cli.nets.int_hmr import load_int

    load_int(path)


def _hybrik(spec: W.WeightSpec, path: Path) -> None:
    try:
        from mocap_cli.nets.hybrik import build_hybrik_from_state_dict, unwrap_official
    except ImportError:  # an installation without the HybrIK network
        readable_checkpoint(spec, path)
        return
    from mocap_cli.nets.checkpoints import load_checkpoint

    build_hybrik_from_state_dict(unwrap_official(load_checkpoint(path), path))


# Loaders by registry family: each opens the file exactly as the model will (strict, weights_only).
VALIDATORS: dict[str, Callable[[W.WeightSpec, Path], None]] = {
    "mixste": _mixste,
    "strided": _strided,
    "maed": _maed,
    "int": _int,
    "hybrik": _hybrik,
}


def readable_checkpoint(spec: W.WeightSpec, path: Path) -> None:
    """The fallback check: a checkpoint that loads safely and holds a state dict of tensors in the spec's
    layout (and with its ``num_tensors``, when the registry gives it)."""
    import torch

    from mocap_cli.nets.checkpoints import load_checkpoint

    sd = W.state_dict_from_checkpoint(spec, load_checkpoint(path))
    tensors = [v for v in sd.values() if isinstance(v, torch.Tensor)]
    if not tensors or len(tensors) != len(sd):
        raise MocapError(f"{path} does not hold a state dict of weights; check that it is {spec.file_name} from {spec.page}.")
    if spec.num_tensors is not None and len(tensors) != spec.num_tensors:
        raise MocapError(
            f"{path} holds {len(tensors)} weight tensors but {spec.name} has {spec.num_tensors}; check that it is "
            f"{spec.file_name} from {spec.page}."
        )


def has_loader(spec: W.WeightSpec) -> bool:
    """Whether the family's own loader validates the file (otherwise only ``readable_checkpoint`` does)."""
    if spec.family == "hybrik":
        try:
            from mocap_cli.nets.hybrik import build_hybrik_from_state_dict  # noqa: F401
        except ImportError:
            return False
    return spec.family in VALIDATORS


def validator_for(spec: W.WeightSpec) -> Validator:
    check = VALIDATORS.get(spec.family, readable_checkpoint)
    return lambda path: check(spec, path)


# ------------------------------------------------------------------------------------------ commands


def _yes_no(value: bool) -> str:
    return "[green]yes[/]" if value else "[dim]no[/]"


@app.command("list")
@user_errors
def list_cmd() -> None:
    """Every known weights variant: installed or not, where, verified (published sha256) and validated (loaded)."""
    registry = W.load_registry()
    table = Table("name", "model", "installed", "file", "verified", "validated", "sha256", "get it",
                  title=f"weights cache: {W.cache_dir()}", title_justify="left")  # fmt: skip
    for spec in sorted(registry.values(), key=lambda s: (s.family, not s.is_default, s.name)):
        found = W.installed(spec.name)
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
    registry = W.load_registry()
    spec = W.get_spec(name, registry)
    result = W.import_weights(spec.name, file, validate=validator_for(spec), registry=registry)
    console = Console()
    console.print(f"imported [bold]{spec.name}[/]: {result.path}", highlight=False)
    console.print(f"sha256 {result.sha256}" + (" (matches the published digest)" if result.verified else ""), highlight=False)
    if not has_loader(spec):
        Console(stderr=True).print(
            f"[yellow]note:[/] mocap cannot load {spec.family} networks yet, so only the checkpoint format and "
            "tensor count were checked.", highlight=False,
        )


@app.command("download")
@user_errors
def download_cmd(
    name: str = typer.Argument(..., help="Registry name (see `mocap weights list`), or a model name for its default."),
) -> None:
    """Download NAME where a direct URL exists (resumable, sha256-checked); otherwise say where to get it."""
    registry = W.load_registry()
    spec = W.get_spec(name, registry)
    found = W.installed(spec.name)
    if found is not None and (not spec.sha256 or found.sha256 == spec.sha256):
        Console().print(f"{spec.name} is already installed: {found.path}", highlight=False)
        return
    if not spec.direct_url:
        file_hint = spec.file_name if "*" not in spec.file_name else f"the {spec.file_name} file"
        raise MocapError(
            f"{spec.name} has no direct download URL; get {file_hint} from {spec.where_to_get()} and run "
            f"`mocap weights import {spec.name} FILE`."
        )
    columns = [TextColumn(f"[bold]{spec.name}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=Console(stderr=True), transient=False) as progress:
        task = progress.add_task("download", total=None)

        def tick(done: int, total: int | None) -> None:
            progress.update(task, completed=done, total=total)

        result = W.download(spec.name, progress=tick, validate=validator_for(spec), registry=registry)
    console = Console()
    console.print(f"downloaded [bold]{spec.name}[/]: {result.path}", highlight=False)
    console.print(f"sha256 {result.sha256}" + (" (matches the published digest)" if result.verified else " (no published digest to check)"),
                  highlight=False)
