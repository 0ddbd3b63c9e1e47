"""The summary `mocap run --people all|N` prints: the people found, then the files written."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from mocap_cli.commands.progress import console
from mocap_cli.people_pipeline import PeopleResult


def people_summary(video: Path, result: PeopleResult) -> None:
    people = Table(title=f"mocap: {video.name}: {len(result.people)} people", title_justify="left")
    for column in ("ID", "frames present", "first-last frame", "mean size (share of frame height)"):
        people.add_column(column)
    for p in result.people:
        people.add_row(
            p.name, f"{p.frames} of {result.frames}", f"{p.first_frame}-{p.last_frame}", f"{p.mean_height:.0%}"
        )
    console.print(people)
    table = Table(show_header=False)
    rate = result.frames / max(result.total_seconds, 1e-9)
    table.add_row("time", f"{result.total_seconds:.1f} s ({rate:.1f} frames/s)")
    for path in result.files:
        table.add_row("wrote", str(path))
    console.print(table)
