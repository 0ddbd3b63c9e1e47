"""The local backend of a batch: clips run in worker processes (spawned; also with ``--jobs 1``), so a native
crash or an out-of-memory kill costs one clip, never the batch.

The pool is ours rather than a ``ProcessPoolExecutor``: each worker has its own pipe, over which it gets one
clip at a time and sends back progress and the clip's outcome. So the parent always knows which clip each
worker holds (a worker that dies costs exactly that clip one retry in a fresh worker; a clip whose worker
dies twice fails) and owns every worker process it must stop on Ctrl-C. One pipe per worker also means a
worker killed in the middle of a message cannot block the others.

GPU (``--device cuda``, several jobs): the parent hands out turns on the GPU for the "model" stage (one
worker at a time computes there while the others decode and detect on the CPU). The parent, not a shared
lock, keeps the turn, so a worker killed on the GPU (out of memory) passes its turn on by dying.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any, Callable

from mocap_cli.batch.plan import default_jobs
from mocap_cli.batch.report import ClipOutcome
from mocap_cli.batch.state import remove_outputs
from mocap_cli.batch.worker import GPU_ACQUIRE, GPU_GRANTED, GPU_RELEASE, worker_main

if TYPE_CHECKING:
    from multiprocessing.process import BaseProcess

    from mocap_cli.batch.plan import BatchOptions, ClipJob
    from mocap_cli.batch.report import BatchLog
    from mocap_cli.batch.run import BatchDisplay
    from mocap_cli.batch.worker import ClipFn
    from mocap_cli.pipeline import RunOptions

_STOP_GRACE_S = 10.0  # how long a cancelled worker gets to unwind its clip before SIGKILL
_DEATH_LIMIT = 2  # a clip whose worker dies this often fails


@dataclass
class _Worker:
    """One worker process, its end of the pipe, and the clip it holds (None: idle)."""

    process: BaseProcess
    conn: Connection
    job: ClipJob | None = None


@dataclass
class _GpuTurns:
    """Which worker may compute on the GPU now, and who waits (first come, first served). The parent keeps
    this, so a worker that dies holding the GPU frees it with its death."""

    holder: _Worker | None = None
    waiting: deque[_Worker] = field(default_factory=deque)

    def ask(self, w: _Worker) -> None:
        self.waiting.append(w)
        self._grant()

    def give_back(self, w: _Worker) -> None:
        if self.holder is w:
            self.holder = None
        if w in self.waiting:
            self.waiting.remove(w)
        self._grant()

    def _grant(self) -> None:
        while self.holder is None and self.waiting:
            w = self.waiting.popleft()
            try:
                w.conn.send(GPU_GRANTED)
                self.holder = w
            except OSError:  # it died while waiting; the next one gets the GPU
                continue


def run_pool(
    todo: list[ClipJob],
    run_opts: dict[int, RunOptions],
    options: BatchOptions,
    clip_fn: ClipFn | None,
    started: Callable[[ClipJob], None],
    finished: Callable[[ClipJob, ClipOutcome], None],
    display: BatchDisplay,
    log: BatchLog,
    gpu: bool,
) -> None:
    """Run ``todo`` on ``--jobs`` workers; ``started``/``finished`` are called in this (the parent) process."""
    ctx = multiprocessing.get_context("spawn")
    n_jobs = min(options.jobs or default_jobs(), len(todo))
    threads = max(1, default_jobs() // n_jobs)
    turns = _GpuTurns() if gpu and n_jobs > 1 else None
    queue = deque(todo)
    deaths: dict[int, int] = {}
    workers: list[_Worker] = []

    def worker_died(job: ClipJob) -> None:
        deaths[job.index] = deaths.get(job.index, 0) + 1
        if deaths[job.index] >= _DEATH_LIMIT:
            remove_outputs(job.outputs)
            finished(
                job,
                ClipOutcome(
                    "failed",
                    reason="The worker process died twice while processing this clip "
                    "(killed, out of memory or a crash in native code).",
                ),
            )
        else:
            log.write("worker-died", job.rel, "retrying once in a fresh worker")
            queue.appendleft(job)

    try:
        while queue or any(w.job is not None for w in workers):
            busy = sum(w.job is not None for w in workers)
            while len(workers) < min(n_jobs, busy + len(queue)):
                workers.append(_start_worker(ctx, turns is not None, threads))
            for w in workers:
                if w.job is None and queue:
                    job = queue.popleft()
                    try:
                        w.conn.send((job, run_opts[job.index], clip_fn))
                        w.job = job
                    except OSError:  # the worker died idle: the clip never reached it
                        queue.appendleft(job)
            wait([w.conn for w in workers] + [w.process.sentinel for w in workers], timeout=0.5)
            for w in list(workers):
                alive = _read_messages(w, started, finished, display, turns)
                if alive and w.process.is_alive():
                    continue
                _read_messages(w, started, finished, display, turns)  # what it sent just before it ended
                _reap(w)
                workers.remove(w)
                if turns is not None:
                    turns.give_back(w)
                if w.job is not None:
                    worker_died(w.job)
    except BaseException:
        _stop_workers(workers)
        raise
    finally:
        for w in workers:
            _reap(w, ask=True)


def _start_worker(ctx: Any, gpu: bool, threads: int) -> _Worker:
    parent_end, child_end = ctx.Pipe(duplex=True)
    process = ctx.Process(target=worker_main, args=(child_end, gpu, threads, os.getpid()), name="mocap-batch-worker")
    process.start()
    child_end.close()  # only the worker holds it now, so its death reads as end-of-file here
    return _Worker(process, parent_end)


def _read_messages(
    w: _Worker,
    started: Callable[[ClipJob], None],
    finished: Callable[[ClipJob, ClipOutcome], None],
    display: BatchDisplay,
    turns: _GpuTurns | None,
) -> bool:
    """Handle everything ``w`` has sent so far; False once its pipe is closed (the worker is gone)."""
    try:
        while w.conn.poll():
            index, kind, *rest = w.conn.recv()
            if kind == GPU_ACQUIRE and turns is not None:
                turns.ask(w)
                continue
            if kind == GPU_RELEASE and turns is not None:
                turns.give_back(w)
                continue
            job = w.job
            if job is None or index != job.index:
                continue
            if kind == "start":
                started(job)
            elif kind == "stage":
                display.clip_stage(job, rest[0], rest[1], rest[2])
            elif kind == "result":
                w.job = None
                finished(job, rest[0])
    except (EOFError, OSError):
        return False
    return True


def _reap(w: _Worker, ask: bool = False, timeout: float = _STOP_GRACE_S) -> None:
    """Wait for ``w`` to end (``ask``: tell an idle worker to stop first); SIGKILL it if it does not."""
    if ask:
        try:
            w.conn.send(None)
        except OSError:
            pass
    w.process.join(timeout)
    if w.process.is_alive():
        w.process.kill()
        w.process.join(1.0)
    w.conn.close()


def _stop_workers(workers: list[_Worker]) -> None:
    """SIGTERM every worker (a busy one unwinds its clip, deleting temp files), then SIGKILL stragglers."""
    for w in workers:
        if w.process.is_alive():
            w.process.terminate()
    deadline = time.monotonic() + _STOP_GRACE_S
    for w in workers:
        _reap(w, timeout=max(0.0, deadline - time.monotonic()))
    workers.clear()
