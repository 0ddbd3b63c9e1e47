"""``mocap smpl``: bring the user's SMPL body model in once, and show which file the tool will use."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from mocap_cli.commands import user_errors

app = typer.Typer(
    name="smpl",
    help="The SMPL body model (downloaded by you from https://smpl.is.tue.mpg.de): import it, see where it is.",
    no_args_is_help=True,
)
console = Console()


@app.command("import")
@user_errors
def import_(
    file: Path = typer.Argument(
        ...,
        help="The SMPL .pkl as downloaded (e.g. basicModel_neutral_lbs_10_207_0_v1.0.0.pkl) or a converted .npz.",
        show_default=False,
    ),
    gender: Optional[str] = typer.Option(None, help="neutral, male or female (default: from the file name)."),
) -> None:
    """Convert the SMPL file once (safely, without running its pickle code) into mocap's cache."""
    from mocap_cli.body.smpl_files import import_smpl

    target = import_smpl(file, gender=gender.lower() if gender else None)
    console.print(f"imported {file} → {target}")


@app.command()
@user_errors
def show(
    smpl: Optional[Path] = typer.Option(None, "--smpl", help="Check this file or folder instead of the defaults."),
) -> None:
    """Where the SMPL model files are found (--smpl, $MOCAP_SMPL_DIR, the imported cache)."""
    from mocap_cli.body.smpl_files import GENDERS, SMPL_DIR_ENV, find_smpl, load_smpl, smpl_cache_dir

    console.print(f"cache: {smpl_cache_dir()}   (${SMPL_DIR_ENV} is searched first)")
    if smpl is not None and smpl.is_file():
        load_smpl(smpl)
        console.print(f"given    {smpl}")
        return
    found_any = False
    for gender in GENDERS:
        path = find_smpl(smpl, gender=gender)
        if path is None:
            console.print(f"{gender:8s} not found")
            continue
        load_smpl(path)  # validates: a broken file is reported here, not mid-run
        found_any = True
        console.print(f"{gender:8s} {path}")
    if not found_any:
        from mocap_cli.body.smpl_files import missing_smpl_message

        console.print(f"[yellow]{missing_smpl_message()}[/]")
