"""The worker side of a batch: one clip through ``pipeline.run_clip``, turned into a small ``ClipOutcome``.

* **Isolation**: a clip that raises costs that clip only. A ``MocapError`` becomes the clip's one-sentence
  reason; any other exception a short generic sentence naming its type, with the full traceback for
  ``batch.log``. A failed clip leaves none of its outputs behind.
* **Cancellation**: the parent's Ctrl-C reaches a pool worker as SIGTERM; a busy worker unwinds its clip
  (the atomic writers delete their temp files, the clip's outputs are removed) and exits, an idle one exits
  at once. A worker whose parent is gone (killed) stops itself the same way.
* **Progress** goes to the parent as ``(clip, kind, ...)`` messages: ``start`` (with the worker's pid),
  ``stage`` (name, frames done, total; at most a few per second) and ``end``.
* **GPU**: with several workers on one GPU, the "model" stage of each clip holds a lock (in a pool worker, a
  turn handed out by the parent: ``ParentGpuLock``), so one process at a time computes on the GPU while
  the others decode and detect on the CPU.

``run_job`` is also what a Ray task runs; ``worker_main`` is the loop of a pool worker process
(``batch.pool``), which owns its state (``WorkerState``) instead of keeping it in module globals.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

from mocap_cli.batch.report import LOG_NAME, ClipOutcome, clip_warnings
from mocap_cli.batch.state import remove_outputs
from mocap_cli.errors import MocapError

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from mocap_cli.batch.plan import ClipJob
    from mocap_cli.pipeline import RunOptions, RunResult

ClipFn = Callable[..., "RunResult"]  # (video, RunOptions, reporter) -> RunResult, pipeline.run_clip's shape

_TICK_INTERVAL_S = 0.25  # most progress messages a worker sends per clip stage and second (plus the last)


class Cancelled(BaseException):
    """Raised in a worker by SIGTERM (the parent's Ctrl-C) so the clip unwinds and cleans its temp files."""


@dataclass
class WorkerState:
    """Whether this worker process is inside a clip: decides what SIGTERM does (unwind or just exit)."""

    busy: bool = False

    def on_sigterm(self, signum: int, frame: Any) -> None:
        if self.busy:
            raise Cancelled()
        os._exit(0)


class PipeEvents:
    """The ``put`` a ``WorkerReporter`` sends progress with, over this worker's own pipe to the parent (a
    pipe per worker: a worker killed mid-message cannot block the others, as it could on a shared queue)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def put(self, message: tuple[Any, ...]) -> None:
        self.conn.send(message)


GPU_ACQUIRE = "gpu-acquire"
GPU_RELEASE = "gpu-release"
GPU_GRANTED = "gpu-granted"


class ParentGpuLock:
    """The GPU lock of a pool worker, kept by the parent: ``acquire`` asks over this worker's pipe and waits for
    the grant. Unlike a shared ``multiprocessing.Lock``, it cannot stay held by a worker that was killed in
    the model stage (the parent sees the death and grants the GPU to the next worker)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def acquire(self) -> None:
        self.conn.send((-1, GPU_ACQUIRE))
        reply = self.conn.recv()
        if reply != GPU_GRANTED:  # only the grant can come while this worker is inside a clip
            raise RuntimeError(f"unexpected message from the batch parent while waiting for the GPU: {reply!r}")

    def release(self) -> None:
        self.conn.send((-1, GPU_RELEASE))


class WorkerReporter:
    """A ``pipeline.Reporter`` that forwards stages to the parent and holds the GPU lock for "model"."""

    def __init__(self, clip: int, events: Any = None, gpu_lock: Any = None) -> None:
        self.clip = clip
        self.events = events
        self.gpu_lock = gpu_lock

    def _send(self, *message: Any) -> None:
        if self.events is not None:
            try:
                self.events.put((self.clip, *message))
            except Exception:  # progress is best effort; never fail a clip over it
                pass

    @contextmanager
    def stage(self, name: str, total: int | None) -> Iterator[Callable[..., None]]:
        lock = self.gpu_lock if name == "model" else None
        if lock is not None:
            self._send("stage", f"{name} (waiting for GPU)", 0, total)
            lock.acquire()
        try:
            self._send("stage", name, 0, total)
            last = [0.0]

            def tick(done: int, new_total: int | None = None) -> None:
                now = time.monotonic()
                t = new_total if new_total is not None else total
                if now - last[0] >= _TICK_INTERVAL_S or (t is not None and done >= t):
                    last[0] = now
                    self._send("stage", name, done, t)

            yield tick
        finally:
            if lock is not None:
                lock.release()


def run_job(
    job: ClipJob,
    options: RunOptions,
    clip_fn: ClipFn | None = None,
    events: Any = None,
    gpu_lock: Any = None,
    state: WorkerState | None = None,
) -> ClipOutcome:
    """Run one clip and describe the result; never raises for a failing clip (the batch goes on).
    ``state`` is the pool worker's (SIGTERM cancels the clip while it is busy); a Ray task has none."""
    if clip_fn is None:
        from mocap_cli.pipeline import run_clip as clip_fn
    state = state or WorkerState()
    reporter = WorkerReporter(job.index, events, gpu_lock)
    reporter._send("start", os.getpid())
    t0 = time.perf_counter()
    state.busy = True
    try:
        for path in job.outputs:
            path.parent.mkdir(parents=True, exist_ok=True)
        result = clip_fn(job.source, options, reporter)
        outcome = ClipOutcome(
            "done",
            frames=int(result.frames),
            source_fps=float(result.video.fps),
            detection_rate=float(result.detection_rate),
            seconds=time.perf_counter() - t0,
            files=[str(p) for p in result.files],
            warnings=clip_warnings(result),
            pid=os.getpid(),
        )
    except Cancelled:
        remove_outputs(job.outputs)
        os._exit(0)
    except MocapError as exc:
        remove_outputs(job.outputs)
        outcome = ClipOutcome(
            "failed", reason=str(exc), seconds=time.perf_counter() - t0, pid=os.getpid(), error_type=type(exc).__name__
        )
    except Exception as exc:  # noqa: BLE001 - isolation: any bug or library error costs this clip only
        remove_outputs(job.outputs)
        outcome = ClipOutcome(
            "failed",
            reason=f"Unexpected error while processing this clip ({type(exc).__name__}); details are in {LOG_NAME}.",
            seconds=time.perf_counter() - t0,
            pid=os.getpid(),
            error_type=type(exc).__name__,
            traceback=traceback.format_exc(),
        )
    finally:
        state.busy = False
    reporter._send("end", outcome.status)
    return outcome


def worker_main(conn: Connection, gpu: bool, threads: int, parent: int) -> None:
    """A pool worker process: receive ``(job, options, clip_fn)`` tasks on ``conn``, run each, send back
    ``(clip, "result", outcome)``; ``None`` or a closed pipe ends it. ``gpu``: share the GPU with the other
    workers through the parent (``ParentGpuLock``)."""
    # Ctrl-C is the parent's to handle: it stops us with SIGTERM. Our own process group keeps the terminal's
    # SIGINT away from us and from our ffmpeg children (which would otherwise die and fail the clip).
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if not os.environ.get("MOCAP_VERBOSE"):
        # Native libraries (MediaPipe's C++ logging) write start-up notices straight to fd 2; a worker reports
        # everything through its result and batch.log, so its fd 2 goes to /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
    state = WorkerState()
    signal.signal(signal.SIGTERM, state.on_sigterm)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="mocap-parent-watch").start()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    events = PipeEvents(conn)
    gpu_lock = ParentGpuLock(conn) if gpu else None
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        job, options, clip_fn = task
        outcome = run_job(job, options, clip_fn, events, gpu_lock, state)
        try:
            conn.send((job.index, "result", outcome))
        except OSError:  # the parent is gone; the watcher ends this process
            return


def _watch_parent(parent: int) -> None:
    """Stop this worker (as the parent's Ctrl-C would) once the parent is gone: a killed batch must not leave
    workers behind."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)
    # The SIGTERM handler normally ends the process; if the exception it raises is swallowed (it can land in a
    # finaliser, where Python only prints it), end the worker anyway; the next run sweeps any temp file.
    time.sleep(10.0)
    os._exit(1)
