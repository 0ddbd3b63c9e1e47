"""``run_batch``: every clip of a folder through the same per-clip pipeline (``pipeline.run_clip``), with a
report, resume records and a log, on a local process pool or on Ray.

This module only sequences the stages of a batch; each has its own module: ``plan`` (settings check, clips,
output paths), ``state`` (resume records, the OUT_DIR lock, clean-up), ``report`` (report.json/csv and
batch.log), ``worker`` (one clip in a worker), ``pool`` (local worker processes), ``ray_backend`` (Ray tasks).
The Typer command (``commands/batch.py``) builds ``BatchOptions`` and a display; nothing here imports it.

GPU note: with ``--device cuda`` and several jobs, each worker holds its own CUDA context and copy of the
weights, and a lock keeps the "model" stage to one process at a time. The better design, batching the model
stage of several clips in one GPU process fed with the workers' 2D tracks (workers: decode + detect, parent:
batched inference, workers again: smoothing + export), needs ``run_clip`` split into a detect half and a
model half.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from mocap_cli import __version__
from mocap_cli.batch.plan import (
    BatchOptions,
    ClipJob,
    check_settings,
    default_jobs,
    plan,
)
from mocap_cli.batch.pool import run_pool
from mocap_cli.batch.ray_backend import run_ray
from mocap_cli.batch.report import (
    LOG_NAME,
    ROW_FIELDS,
    BatchLog,
    ClipOutcome,
    ClipRow,
    Report,
    now,
    row_from_outcome,
)
from mocap_cli.batch.state import (
    input_record,
    output_lock,
    remove_outputs,
    settings_record,
    sweep_partials,
    up_to_date,
    write_sidecar,
)
from mocap_cli.batch.worker import ClipFn
from mocap_cli.errors import MocapError
from mocap_cli.settings import RunSettings, build_run_options

if TYPE_CHECKING:
    from mocap_cli.pipeline import RunOptions


def clip_run_options(outputs: tuple[Path, ...], settings: RunSettings) -> RunOptions:
    """A clip's ``RunOptions``: its exports, and its preview (the last output, see ``plan.plan``) when asked for."""
    if not settings.preview:
        return build_run_options(outputs, settings, overwrite=True)
    return build_run_options(outputs[:-1], settings, overwrite=True, preview=outputs[-1])


class BatchDisplay(Protocol):
    """What the engine tells the screen (the command implements it with rich; tests may record it)."""

    def begin(self, total: int, already: int) -> None: ...
    def clip_started(self, job: ClipJob) -> None: ...
    def clip_stage(self, job: ClipJob, stage: str, done: int, total: int | None) -> None: ...
    def clip_finished(self, job: ClipJob, row: ClipRow) -> None: ...
    def end(self) -> None: ...


class NullDisplay:
    def begin(self, total: int, already: int) -> None: ...
    def clip_started(self, job: ClipJob) -> None: ...
    def clip_stage(self, job: ClipJob, stage: str, done: int, total: int | None) -> None: ...
    def clip_finished(self, job: ClipJob, row: ClipRow) -> None: ...
    def end(self) -> None: ...


@dataclass
class BatchResult:
    report: Report
    interrupted: bool = False

    @property
    def rows(self) -> list[ClipRow]:
        return self.report.rows

    @property
    def failed(self) -> int:
        return sum(r.status == "failed" for r in self.rows)

    @property
    def exit_code(self) -> int:
        return 130 if self.interrupted else (1 if self.failed else 0)


def run_batch(options: BatchOptions, display: BatchDisplay | None = None, clip_fn: ClipFn | None = None) -> BatchResult:
    """Run every clip of the folder; returns the final report (also on disk). Settings errors raise
    ``MocapError`` before any work; failing clips do not (see the report)."""
    display = display or NullDisplay()
    settings = options.settings
    gpu = check_settings(settings, local=not options.ray_address)
    if options.jobs is not None and options.jobs < 1:
        raise MocapError("--jobs must be at least 1.")
    out_dir = options.out_dir.resolve()
    if out_dir.exists() and not out_dir.is_dir():
        raise MocapError(f"--out {options.out_dir} is a file; give a folder.")
    jobs, clashes = plan(options)
    out_dir.mkdir(parents=True, exist_ok=True)
    with output_lock(out_dir):
        return _run_locked(options, out_dir, jobs, clashes, display, clip_fn, gpu)


def _run_locked(
    options: BatchOptions,
    out_dir: Path,
    jobs: list[ClipJob],
    clashes: dict[int, str],
    display: BatchDisplay,
    clip_fn: ClipFn | None,
    gpu: bool,
) -> BatchResult:
    settings = options.settings
    run_id = uuid.uuid4().hex[:8]
    log = BatchLog(out_dir / LOG_NAME, run_id)
    swept = sweep_partials(out_dir)
    record = settings_record(settings)
    rows: list[ClipRow] = []
    todo: list[ClipJob] = []
    for job in jobs:
        row = ClipRow(job.rel)
        try:
            job.input = input_record(job.source)
        except OSError as exc:  # a broken link, no permission: this clip fails, the others go on
            clashes[job.index] = f"Cannot read {job.rel} ({exc.strerror or type(exc).__name__}); check the file."
        if job.index in clashes:
            row.status, row.reason = "failed", clashes[job.index]
        elif options.resume and (done := up_to_date(job, record)) is not None:
            kept = {k: v for k, v in done.get("row", {}).items() if k in ROW_FIELDS}
            row = ClipRow(**{**kept, "clip": job.rel})
            row.status, row.reason = "skipped", f"up to date (done {done.get('finished', 'earlier')})"
        else:
            todo.append(job)
        rows.append(row)
    if not options.resume and not options.overwrite:
        existing = [p for job in todo for p in job.outputs if p.exists()]
        if existing:
            raise MocapError(
                f"{len(existing)} output file(s) already exist in {options.out_dir} (e.g. {existing[0]}); "
                "pass --resume to finish an earlier batch or --overwrite to redo every clip."
            )
    header = {
        "mocap_version": __version__,
        "run_id": run_id,
        "started": now(),
        "input": str(options.in_dir.resolve()),
        "output": str(out_dir),
        "settings": record,
        "jobs": options.jobs or default_jobs(),
        "backend": "ray" if options.ray_address else "processes",
        "gpu": gpu,
    }
    report = Report(out_dir, header, rows)
    report.save()
    log.write(
        "start",
        detail=f"{len(jobs)} clips, {len(todo)} to run, settings {json.dumps(record, sort_keys=True)}"
        + (f"; removed {len(swept)} partial file(s) of an interrupted run" if swept else ""),
    )
    for job in jobs:
        if job.index in clashes:
            log.write("failed", job.rel, clashes[job.index])
        elif rows[job.index].status == "skipped":
            log.write("skipped", job.rel, "up to date")

    run_opts = {job.index: clip_run_options(job.outputs, settings) for job in todo}

    def finished(job: ClipJob, outcome: ClipOutcome) -> None:
        row = row_from_outcome(job, out_dir, outcome)
        rows[job.index] = row
        if outcome.status == "done":
            write_sidecar(job, record, dataclasses.asdict(row), run_id, now())
            log.write("done", job.rel, f"{row.frames} frames in {row.seconds:.2f} s (pid {outcome.pid})")
        else:
            job.sidecar.unlink(missing_ok=True)
            log.write("failed", job.rel, outcome.reason)
            if outcome.traceback:
                log.write("traceback", job.rel, "\n" + outcome.traceback)
        report.save()
        display.clip_finished(job, row)

    def started(job: ClipJob) -> None:
        job.sidecar.unlink(missing_ok=True)  # a redo: the old record no longer describes the outputs
        log.write("start", job.rel)
        display.clip_started(job)

    display.begin(len(jobs), len(jobs) - len(todo))
    interrupted = False
    try:
        if todo:
            if options.ray_address:
                run_ray(todo, run_opts, options, clip_fn, started, finished, gpu)
            else:
                run_pool(todo, run_opts, options, clip_fn, started, finished, display, log, gpu)
    except KeyboardInterrupt:
        interrupted = True
        for job in todo:
            if rows[job.index].status == "pending":
                remove_outputs(job.outputs)  # stale (a redo) or possibly incomplete: none is kept
                rows[job.index].reason = "not finished: the batch was interrupted; rerun with --resume"
        log.write("interrupted", detail="Ctrl-C; unfinished clips are pending")
    finally:
        display.end()
    sweep_partials(out_dir)  # temp files of workers that died during this run (all workers are gone now)
    report.header["finished"] = now()
    report.save()
    counts = report.counts()
    log.write("end", detail=", ".join(f"{k} {v}" for k, v in counts.items()))
    return BatchResult(report, interrupted)
