"""Progress on the terminal, for one clip (`mocap run`: a bar per stage) and for a folder (`mocap batch`: a
bar of clips plus a line per running clip). Both draw the same rich bar on the same stderr console, so
stdout stays free for results and the two displays look alike.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from mocap_cli.batch.plan import ClipJob
    from mocap_cli.batch.report import ClipRow
    from mocap_cli.pipeline import StageTicker

# Where every progress display and summary of the commands goes (``cli.main`` may point it at the terminal
# when it moves native libraries' stderr out of the way).
console = Console(stderr=True)


def progress_bar(label: str, note: str, *, transient: bool) -> Progress:
    """A rich ``Progress``: label, bar, done/total, the task's ``note`` field, elapsed time."""
    return Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(f"{{task.fields[{note}]}}"),
        TimeElapsedColumn(),
        console=console,
        transient=transient,
    )


def short_name(text: str, width: int = 40) -> str:
    """``text`` cut from the left to ``width`` characters (a long clip path keeps its file name)."""
    return text if len(text) <= width else "…" + text[-(width - 1) :]


class RichReporter:
    """A ``pipeline.Reporter`` for one clip: a progress bar per stage, with items per second."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    @contextmanager
    def stage(self, name: str, total: int | None) -> Iterator[StageTicker]:
        if self.quiet:
            yield lambda done, total=None: None
            return
        with progress_bar("[bold]{task.description:<16}", "rate", transient=False) as progress:
            task = progress.add_task(name, total=total, rate="")

            def tick(done: int, new_total: int | None = None) -> None:
                elapsed = progress.tasks[0].elapsed or 0.0
                rate = f"{done / elapsed:6.1f} it/s" if elapsed > 0 and done else ""
                progress.update(task, completed=done, total=new_total or total, rate=rate)

            yield tick
            t = progress.tasks[0]
            if t.total is None or t.completed < t.total:
                progress.update(task, total=max(t.completed, 1), completed=max(t.completed, 1))


class RichBatchDisplay:
    """A ``batch.run.BatchDisplay``: an overall bar (clips) plus one line per running clip with its stage
    and frames; a line per finished clip stays above the bars."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.progress = progress_bar("{task.description}", "note", transient=True)
        self.overall: TaskID | None = None
        self.lines: dict[int, TaskID] = {}

    def begin(self, total: int, already: int) -> None:
        if self.quiet:
            return
        self.progress.start()
        note = f"{already} up to date" if already else ""
        self.overall = self.progress.add_task("[bold]clips", total=total, completed=already, note=note)

    def clip_started(self, job: ClipJob) -> None:
        if self.quiet or job.index in self.lines:
            return
        self.lines[job.index] = self.progress.add_task(f"  {short_name(job.rel)}", total=None, note="starting")

    def clip_stage(self, job: ClipJob, stage: str, done: int, total: int | None) -> None:
        if self.quiet:
            return
        if job.index not in self.lines:
            self.clip_started(job)
        self.progress.update(self.lines[job.index], completed=done, total=total, note=stage)

    def clip_finished(self, job: ClipJob, row: ClipRow) -> None:
        if self.quiet:
            return
        task = self.lines.pop(job.index, None)
        if task is not None:
            self.progress.remove_task(task)
        if self.overall is not None:
            self.progress.advance(self.overall)
        if row.status == "done":
            extra = f" [yellow]({'; '.join(row.warnings)})[/]" if row.warnings else ""
            self.progress.console.print(
                f"[green]done[/]   {job.rel}: {row.frames} frames, {row.seconds:.1f} s{extra}", highlight=False
            )
        else:
            self.progress.console.print(f"[red]failed[/] {job.rel}: {row.reason}", highlight=False)

    def end(self) -> None:
        if not self.quiet:
            self.progress.stop()
