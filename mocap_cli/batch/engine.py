"""``mocap batch``: every clip of a folder through the same per-clip pipeline (``pipeline.run_clip``).

Design (why, not what):

* **Isolation**: every clip runs in a worker process (also with ``--jobs 1``), so a clip that raises, or a
  native crash or out-of-memory kill of a worker, costs that clip only. A raised ``MocapError`` becomes the
  clip's one-sentence reason; any other exception becomes a short generic sentence naming its type, with
  the full traceback in ``OUT_DIR/batch.log``. A failed clip leaves none of its outputs behind.
* **No partial files**: exports are atomic (temp ``.NAME.XXXX.part`` + rename). A worker killed mid-write
  leaves its temp file; every run sweeps ``.*.part`` files out of OUT_DIR at its start and after Ctrl-C
  (a lock file in ``OUT_DIR/.mocap/`` keeps two batches from sharing an output folder, so the sweep never
  deletes a live temp file). The report and sidecars are written the same atomic way.
* **Resume**: a clip is skipped when a sidecar ``OUT_DIR/.mocap/<clip path>.json`` says it was done with
  the same input and settings and all its outputs still exist with the recorded sizes. The input is
  identified by size + mtime (ns) + SHA-256 of its first and last MiB: cheap on folders of multi-GB clips
  (a full hash would read every byte on every resume), and any edit changes the mtime; a copy that does
  not preserve mtimes is redone (safe side). Settings = model, weights (name or file size+mtime), formats,
  smoothing preset (name and values), output fps, field of view, rig preset, mocap version. Anything
  else is redone. The sidecar is written only after all outputs of a clip exist.
* **Progress** from workers through a multiprocessing queue: (clip, stage, frames done, total); a clip's
  "start" message also tells the parent which clips a dead worker was running.
* **GPU**: with ``--device cuda`` and several jobs, the "model" stage of each clip takes a lock shared by
  all workers, so one process at a time computes on the GPU while the others decode and detect (CPU).
  Each worker still holds its own CUDA context and copy of the weights. The better design, batching the
  model stage of several clips in one GPU process fed with the workers' 2D tracks (workers: decode +
  detect, parent: batched inference, workers again: smoothing + export), needs ``run_clip`` split into a
  detect half and a model half; until then the lock keeps GPU work to one process at a time.
* **Ray** (optional, ``--ray ADDRESS|auto|local``): the same per-clip function (``run_job`` → ``run_clip``) as
  Ray tasks, one CPU each and ``num_gpus=1`` with ``--device cuda`` (a torch model); a task whose worker
  dies is retried once by Ray. The parent writes the same report, sidecars and log. IN_DIR and OUT_DIR must
  be visible at the same paths on every node (shared filesystem); ``local`` starts Ray on this machine.
  Stage progress is not forwarded from Ray tasks (the overall bar counts clips).
"""

from __future__ import annotations

import csv
import dataclasses
import fnmatch
import hashlib
import io
import json
import os
import signal
import tempfile
import threading
import time
import traceback
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol

from mocap_cli import __version__
from mocap_cli.commands.options import ClipSettings, build_run_options
from mocap_cli.errors import MocapError

if TYPE_CHECKING:
    from mocap_cli.pipeline import RunOptions, RunResult

DEFAULT_PATTERNS = ("*.mp4", "*.mov", "*.m4v", "*.avi", "*.mkv", "*.webm", "*.mpg", "*.mpeg", "*.wmv")
STATE_DIR = ".mocap"
REPORT_JSON = "report.json"
REPORT_CSV = "report.csv"
LOG_NAME = "batch.log"
SIDECAR_FORMAT = 1
_HASH_SPAN = 1 << 20  # bytes hashed at each end of an input
# Lower-body warning: knees and ankles confident (>= this) in fewer than this fraction of detected frames.
LEG_CONFIDENCE = 0.5
LEG_VISIBLE_FRACTION = 0.5
_TICK_INTERVAL_S = 0.25  # most progress messages a worker sends per clip stage and second (plus the last)

ClipFn = Callable[..., "RunResult"]  # (video, RunOptions, reporter) -> RunResult, pipeline.run_clip's shape


# -- settings -----------------------------------------------------------------------------------------


def parse_formats(text: str) -> tuple[str, ...]:
    """``"glb,bvh"`` → ("glb", "bvh"); unknown formats fail before any work."""
    from mocap_cli.export import supported_extensions

    known = [e.lstrip(".") for e in supported_extensions()]
    formats: list[str] = []
    for part in text.split(","):
        fmt = part.strip().lower().lstrip(".")
        if not fmt:
            continue
        if fmt not in known:
            raise MocapError(f"Unknown export format '{fmt}'; use a comma-separated list of {', '.join(known)}.")
        if fmt not in formats:
            formats.append(fmt)
    if not formats:
        raise MocapError(f"No export format given; use e.g. --export-format glb (known: {', '.join(known)}).")
    return tuple(formats)


def check_settings(settings: ClipSettings, local: bool = True) -> bool:
    """Everything about the settings that can fail, checked before any clip starts (the same checks as
    ``pipeline.validate`` plus the model's readiness). Returns whether the model will compute on a GPU.
    ``local=False`` (Ray): the GPUs are on the cluster, so ``--device cuda`` is not checked here."""
    from mocap_cli.body.select import check_mesh_choice
    from mocap_cli.models.registry import model_entry
    from mocap_cli.models.base import resolve_device
    from mocap_cli.export.rig_presets import load_rig_preset
    from mocap_cli.export.root_motion import check_root_mode
    from mocap_cli.post.foot_lock import check_foot_lock_mode
    from mocap_cli.post.smoothing import load_smoothing_preset

    parse_formats(",".join(settings.formats))
    entry = model_entry(settings.model)
    load_smoothing_preset(settings.smooth)
    load_rig_preset(settings.preset)
    check_root_mode(settings.root)
    check_mesh_choice(settings.mesh)
    check_foot_lock_mode(settings.foot_lock)
    if settings.fps is not None and not settings.fps > 0:
        raise MocapError("--fps must be a positive number of frames per second.")
    if settings.fov is not None and not 1.0 <= settings.fov <= 179.0:
        raise MocapError("--fov must be between 1 and 179 degrees.")
    model_settings = build_run_options((), settings).settings
    gpu = False
    if entry.kind != "landmarks":  # torch models run on a concrete device (as create_model decides)
        if local:
            model_settings = dataclasses.replace(model_settings, device=resolve_device(model_settings.device))
            gpu = model_settings.device == "cuda"
        else:
            gpu = model_settings.device == "cuda"
            model_settings = dataclasses.replace(model_settings, device="cpu")
    ready = entry.readiness(model_settings)
    if not ready.ready:
        raise MocapError(f"Model '{entry.name}' cannot run: {ready.detail}.")
    return gpu


def _file_record(path: Path | str | None) -> Any:
    """A path as given, plus size and mtime when it names a file or folder here (so a replaced file counts)."""
    if path is None:
        return None
    p = Path(path)
    if not p.exists():
        return str(path)  # e.g. a registry variant name
    st = p.stat()
    return {"path": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def settings_record(settings: ClipSettings) -> dict[str, Any]:
    """What a sidecar stores about the settings; two runs with equal records give the same outputs.
    Presets are recorded by content, so editing a preset file redoes the clips that used it."""
    from mocap_cli.core.preset_files import preset_dir
    from mocap_cli.post.smoothing import load_smoothing_preset

    rig = preset_dir("rig") / f"{settings.preset}.toml"
    return {
        "mocap_version": __version__,
        "model": settings.model.lower(),
        "weights": _file_record(settings.weights),
        "smpl": _file_record(settings.smpl),
        "formats": sorted(settings.formats),
        "smooth": dataclasses.asdict(load_smoothing_preset(settings.smooth)),
        "preset": {"name": settings.preset, "sha256": hashlib.sha256(rig.read_bytes()).hexdigest()},
        "root": settings.root,
        "mesh": settings.mesh,
        "fps": settings.fps,
        "fov": build_run_options((), settings).settings.fov_degrees,
        "foot_lock": settings.foot_lock if settings.foot_lock == "off" else {
            "mode": settings.foot_lock,
            "sha256": hashlib.sha256((preset_dir("contact") / "default.toml").read_bytes()).hexdigest()},
    }


def input_record(path: Path) -> dict[str, Any]:
    """Identity of an input file: size, mtime (ns) and SHA-256 of its first and last MiB."""
    st = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(_HASH_SPAN))
        if st.st_size > _HASH_SPAN:
            f.seek(max(_HASH_SPAN, st.st_size - _HASH_SPAN))
            digest.update(f.read(_HASH_SPAN))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "head_tail_sha256": digest.hexdigest()}


# -- discovery and plan -------------------------------------------------------------------------------


def find_clips(in_dir: Path, patterns: tuple[str, ...] = DEFAULT_PATTERNS, recursive: bool = False,
               exclude: Path | None = None) -> list[Path]:
    """Files under ``in_dir`` whose name (or relative path, for patterns with '/') matches a pattern,
    case-insensitively; hidden files and folders and anything under ``exclude`` are left out. Sorted."""
    if not in_dir.is_dir():
        raise MocapError(f"Input folder {in_dir} does not exist or is not a folder; check the path.")
    in_dir = in_dir.resolve()
    exclude = exclude.resolve() if exclude is not None and exclude.resolve() != in_dir else None
    found: list[Path] = []
    for root, dirs, files in os.walk(in_dir):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (exclude is None or here / d != exclude))
        if not recursive:
            dirs[:] = []
        for name in sorted(files):
            if name.startswith("."):
                continue
            rel = (here / name).relative_to(in_dir).as_posix()
            if any(fnmatch.fnmatch((rel if "/" in p else name).lower(), p.lower()) for p in patterns):
                found.append(here / name)
    return sorted(found, key=lambda p: p.relative_to(in_dir).as_posix())


@dataclass
class ClipJob:
    """One clip to run: where it is, where its outputs and sidecar go."""

    index: int
    source: Path
    rel: str  # path relative to IN_DIR, posix
    outputs: tuple[Path, ...]
    sidecar: Path
    input: dict[str, Any] = field(default_factory=dict)


@dataclass
class ClipOutcome:
    """What a worker sends back about one clip (small and picklable; no Motion)."""

    status: str  # "done" or "failed"
    reason: str = ""
    frames: int | None = None
    source_fps: float | None = None
    detection_rate: float | None = None
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error_type: str | None = None
    traceback: str | None = None
    pid: int = 0


ROW_FIELDS = ("clip", "status", "reason", "frames", "source_fps", "detection_rate", "seconds",
              "frames_per_second", "outputs", "warnings")


@dataclass
class ClipRow:
    """One row of the report: status is done, failed, skipped (up to date from an earlier run) or pending."""

    clip: str
    status: str = "pending"
    reason: str = ""
    frames: int | None = None
    source_fps: float | None = None
    detection_rate: float | None = None
    seconds: float | None = None
    frames_per_second: float | None = None
    outputs: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def output_paths(out_dir: Path, rel: str, formats: tuple[str, ...]) -> tuple[Path, ...]:
    stem = out_dir / Path(rel).with_suffix("")
    return tuple(stem.with_name(f"{stem.name}.{fmt}") for fmt in formats)


def sidecar_path(out_dir: Path, rel: str) -> Path:
    return out_dir / STATE_DIR / f"{rel}.json"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def up_to_date(job: ClipJob, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The sidecar of a clip that needs no redo (same input, same settings, outputs intact), else None."""
    record = _read_json(job.sidecar)
    if not record or record.get("format") != SIDECAR_FORMAT:
        return None
    if record.get("input") != job.input or record.get("settings") != settings:
        return None
    sizes = record.get("outputs", {})
    for path in job.outputs:
        key = path.name
        if key not in sizes or not path.is_file() or path.stat().st_size != sizes[key]:
            return None
    return record


# -- files -------------------------------------------------------------------------------------------


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so readers see the old or the new content, never a mix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sweep_partials(out_dir: Path) -> list[Path]:
    """Delete temp files (``.NAME.XXXX.part``) that killed workers or an interrupted run left in OUT_DIR."""
    removed: list[Path] = []
    if not out_dir.is_dir():
        return removed
    for root, _dirs, files in os.walk(out_dir):
        for name in files:
            if name.startswith(".") and name.endswith(".part"):
                path = Path(root) / name
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def remove_outputs(paths: tuple[Path, ...] | list[Path]) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)


@contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Exclusive use of OUT_DIR by this batch (an advisory lock the OS drops if the process dies)."""
    import fcntl

    state = out_dir / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise MocapError(f"Another mocap batch is writing to {out_dir}; wait for it or choose another --out.") from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class BatchLog:
    """Append-only ``batch.log``: one line per clip event, full tracebacks of unexpected errors."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id

    def write(self, event: str, clip: str = "", detail: str = "") -> None:
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        line = f"{stamp} run={self.run_id} {event}" + (f" {clip}" if clip else "") + (f": {detail}" if detail else "")
        with open(self.path, "a") as f:
            f.write(line.rstrip("\n") + "\n")


# -- report -------------------------------------------------------------------------------------------


class Report:
    """``report.json`` + ``report.csv``, rewritten atomically every time a clip finishes."""

    def __init__(self, out_dir: Path, header: dict[str, Any], rows: list[ClipRow]) -> None:
        self.out_dir = out_dir
        self.header = header
        self.rows = rows

    def counts(self) -> dict[str, int]:
        counts = {s: 0 for s in ("done", "failed", "skipped", "pending")}
        for row in self.rows:
            counts[row.status] = counts.get(row.status, 0) + 1
        return counts

    def save(self) -> None:
        data = dict(self.header, updated=_now(), summary=self.counts(), clips=[dataclasses.asdict(r) for r in self.rows])
        write_atomic(self.out_dir / REPORT_JSON, json.dumps(data, indent=2) + "\n")
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(ROW_FIELDS)
        for row in self.rows:
            values = dataclasses.asdict(row)
            writer.writerow(["; ".join(values[k]) if isinstance(values[k], list) else
                             ("" if values[k] is None else values[k]) for k in ROW_FIELDS])
        write_atomic(self.out_dir / REPORT_CSV, buf.getvalue())


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def row_from_outcome(job: ClipJob, out_dir: Path, outcome: ClipOutcome) -> ClipRow:
    fps = outcome.frames / outcome.seconds if outcome.frames and outcome.seconds > 0 else None
    return ClipRow(
        clip=job.rel, status=outcome.status, reason=outcome.reason, frames=outcome.frames,
        source_fps=_round(outcome.source_fps, 4), detection_rate=_round(outcome.detection_rate, 4),
        seconds=_round(outcome.seconds, 3), frames_per_second=_round(fps, 2),
        outputs=[Path(f).relative_to(out_dir).as_posix() if Path(f).is_relative_to(out_dir) else str(f)
                 for f in outcome.files],
        warnings=list(outcome.warnings),
    )


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(float(x), digits)


# -- warnings -----------------------------------------------------------------------------------------


def lower_body_warning(confidence: Any, names: tuple[str, ...] | list[str]) -> str | None:
    """A warning when knees and ankles were confidently seen in under half of the frames with a person.

    ``confidence`` is a Motion's (F, J) joint confidence on the canonical skeleton (0 on frames without a
    detection)."""
    import numpy as np

    conf = np.asarray(confidence, dtype=np.float64)
    legs = [list(names).index(n) for n in ("left_knee", "right_knee", "left_ankle", "right_ankle") if n in names]
    seen = conf.max(axis=1) > 0
    if not legs or not seen.any():
        return None
    visible = float(np.mean(conf[seen][:, legs].min(axis=1) >= LEG_CONFIDENCE))
    if visible >= LEG_VISIBLE_FRACTION:
        return None
    return (f"knees/ankles were clearly visible in only {visible:.0%} of the frames with a person; "
            "the legs are mostly guessed")


def clip_warnings(result: Any) -> list[str]:
    """run_clip's own warnings plus what the batch can tell from the result's joint confidence."""
    warnings = list(result.warnings)
    motion = result.motion
    leg = lower_body_warning(motion.confidence, tuple(motion.skeleton.names))
    if leg:
        warnings.append(leg)
    return warnings


# -- worker side --------------------------------------------------------------------------------------


class _Cancelled(BaseException):
    """Raised in a worker by SIGTERM (the parent's Ctrl-C) so the clip unwinds and cleans its temp files."""


# Process-local state of a worker process (set once by the pool initializer; never shared).
_worker: dict[str, Any] = {"events": None, "gpu_lock": None, "busy": False}


def _on_sigterm(signum: int, frame: Any) -> None:
    if _worker["busy"]:
        raise _Cancelled()
    os._exit(0)


def _watch_parent(parent: int) -> None:
    """Stop this worker (as the parent's Ctrl-C would) once the parent is gone: a killed batch must not leave
    workers behind, and idle pool workers would otherwise wait for work forever."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)
    # The SIGTERM handler normally ends the process; if the exception it raises is swallowed (it can land in a
    # finaliser, where Python only prints it), end the worker anyway; the next run sweeps any temp file.
    time.sleep(10.0)
    os._exit(1)


def _init_worker(events: Any, gpu_lock: Any, threads: int, parent: int) -> None:
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
    signal.signal(signal.SIGTERM, _on_sigterm)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="mocap-parent-watch").start()
    _worker["events"] = events
    _worker["gpu_lock"] = gpu_lock
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))


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


def run_job(job: ClipJob, options: "RunOptions", clip_fn: ClipFn | None = None, events: Any = None,
            gpu_lock: Any = None) -> ClipOutcome:
    """Run one clip and describe the result; never raises for a failing clip (the batch goes on)."""
    if clip_fn is None:
        from mocap_cli.pipeline import run_clip as clip_fn
    reporter = WorkerReporter(job.index, events, gpu_lock)
    reporter._send("start", os.getpid())
    t0 = time.perf_counter()
    _worker["busy"] = True
    try:
        for path in job.outputs:
            path.parent.mkdir(parents=True, exist_ok=True)
        result = clip_fn(job.source, options, reporter)
        outcome = ClipOutcome(
            "done", frames=int(result.frames), source_fps=float(result.video.fps),
            detection_rate=float(result.detection_rate), seconds=time.perf_counter() - t0,
            files=[str(p) for p in result.files], warnings=clip_warnings(result), pid=os.getpid(),
        )
    except _Cancelled:
        remove_outputs(job.outputs)
        os._exit(0)
    except MocapError as exc:
        remove_outputs(job.outputs)
        outcome = ClipOutcome("failed", reason=str(exc), seconds=time.perf_counter() - t0, pid=os.getpid(),
                              error_type=type(exc).__name__)
    except Exception as exc:  # noqa: BLE001 - isolation: any bug or library error costs this clip only
        remove_outputs(job.outputs)
        outcome = ClipOutcome(
            "failed", reason=f"Unexpected error while processing this clip ({type(exc).__name__}); "
            f"details are in {LOG_NAME}.", seconds=time.perf_counter() - t0, pid=os.getpid(),
            error_type=type(exc).__name__, traceback=traceback.format_exc(),
        )
    finally:
        _worker["busy"] = False
    reporter._send("end", outcome.status)
    return outcome


def _pool_task(job: ClipJob, options: "RunOptions", clip_fn: ClipFn | None) -> ClipOutcome:
    return run_job(job, options, clip_fn, _worker["events"], _worker["gpu_lock"])


# -- parent side --------------------------------------------------------------------------------------


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
class BatchOptions:
    in_dir: Path
    out_dir: Path
    settings: ClipSettings = field(default_factory=ClipSettings)
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    recursive: bool = False
    jobs: int | None = None  # None: one per CPU core
    resume: bool = False
    overwrite: bool = False
    ray_address: str | None = None  # None: local process pool; "auto", "local" or an address: Ray


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


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def plan(options: BatchOptions) -> tuple[list[ClipJob], dict[int, str]]:
    """The clips to consider, and the ones that cannot run at all (output name clash) with their reason."""
    out_dir = options.out_dir.resolve()
    sources = find_clips(options.in_dir, options.patterns, options.recursive, exclude=out_dir)
    if not sources:
        where = "under" if options.recursive else "in"
        raise MocapError(f"No clips matching {', '.join(options.patterns)} {where} {options.in_dir}; "
                         "check the folder, --pattern or --recursive.")
    in_dir = options.in_dir.resolve()
    jobs: list[ClipJob] = []
    clashes: dict[int, str] = {}
    owners: dict[Path, str] = {}
    for i, source in enumerate(sources):
        rel = source.relative_to(in_dir).as_posix()
        outputs = output_paths(out_dir, rel, options.settings.formats)
        jobs.append(ClipJob(i, source, rel, outputs, sidecar_path(out_dir, rel)))
        for path in outputs:
            if path in owners:
                clashes[i] = (f"Its output {path.name} would overwrite that of {owners[path]}; "
                              "rename one of the two clips.")
            owners.setdefault(path, rel)
    return jobs, clashes


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


def _run_locked(options: BatchOptions, out_dir: Path, jobs: list[ClipJob], clashes: dict[int, str],
                display: BatchDisplay, clip_fn: ClipFn | None, gpu: bool) -> BatchResult:
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
            raise MocapError(f"{len(existing)} output file(s) already exist in {options.out_dir} (e.g. {existing[0]}); "
                             "pass --resume to finish an earlier batch or --overwrite to redo every clip.")
    header = {
        "mocap_version": __version__, "run_id": run_id, "started": _now(),
        "input": str(options.in_dir.resolve()), "output": str(out_dir), "settings": record,
        "jobs": options.jobs or default_jobs(), "backend": "ray" if options.ray_address else "processes",
        "gpu": gpu,
    }
    report = Report(out_dir, header, rows)
    report.save()
    log.write("start", detail=f"{len(jobs)} clips, {len(todo)} to run, settings {json.dumps(record, sort_keys=True)}"
              + (f"; removed {len(swept)} partial file(s) of an interrupted run" if swept else ""))
    for job in jobs:
        if job.index in clashes:
            log.write("failed", job.rel, clashes[job.index])
        elif rows[job.index].status == "skipped":
            log.write("skipped", job.rel, "up to date")

    run_opts = {job.index: build_run_options(job.outputs, settings, overwrite=True) for job in todo}

    def finished(job: ClipJob, outcome: ClipOutcome) -> None:
        row = row_from_outcome(job, out_dir, outcome)
        rows[job.index] = row
        if outcome.status == "done":
            sizes = {p.name: p.stat().st_size for p in job.outputs if p.is_file()}
            sidecar = {"format": SIDECAR_FORMAT, "clip": job.rel, "input": job.input, "settings": record,
                       "outputs": sizes, "row": dataclasses.asdict(row), "run_id": run_id, "finished": _now()}
            write_atomic(job.sidecar, json.dumps(sidecar, indent=2) + "\n")
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
                _run_ray(todo, run_opts, options, clip_fn, started, finished, gpu)
            else:
                _run_pool(todo, run_opts, options, clip_fn, started, finished, display, log, gpu)
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
    report.header["finished"] = _now()
    report.save()
    counts = report.counts()
    log.write("end", detail=", ".join(f"{k} {v}" for k, v in counts.items()))
    return BatchResult(report, interrupted)


def _run_pool(todo: list[ClipJob], run_opts: dict[int, "RunOptions"], options: BatchOptions, clip_fn: ClipFn | None,
              started: Callable[[ClipJob], None], finished: Callable[[ClipJob, ClipOutcome], None],
              display: BatchDisplay, log: BatchLog, gpu: bool) -> None:
    """Process pool (spawn). A worker that dies breaks the pool: the clips it was running get one retry in a
    fresh pool, a clip running twice when a worker died fails; clips not yet started are simply resubmitted."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    n_jobs = min(options.jobs or default_jobs(), len(todo))
    threads = max(1, default_jobs() // n_jobs)
    by_index = {job.index: job for job in todo}
    remaining = list(todo)
    deaths: dict[int, int] = {}
    while remaining:
        # A SimpleQueue writes synchronously (no feeder thread), so a clip's "start" is in the pipe before the
        # clip runs, even if its worker is killed a moment later: the parent always knows who was running.
        events = ctx.SimpleQueue()
        gpu_lock = ctx.Lock() if gpu and n_jobs > 1 else None
        executor = ProcessPoolExecutor(n_jobs, mp_context=ctx, initializer=_init_worker,
                                       initargs=(events, gpu_lock, threads, os.getpid()))
        futures: dict[Future, ClipJob] = {}
        running: set[int] = set()
        try:
            for job in remaining:
                futures[executor.submit(_pool_task, job, run_opts[job.index], clip_fn)] = job
            remaining = []
            broken = False
            while futures:
                _drain(events, by_index, running, started, display)
                done, _ = wait(futures, timeout=0.1, return_when=FIRST_COMPLETED)
                for fut in done:
                    job = futures.pop(fut)
                    try:
                        outcome = fut.result()
                    except BrokenProcessPool:
                        broken = True
                        remaining.append(job)
                        continue
                    _drain(events, by_index, running, started, display)
                    running.discard(job.index)
                    finished(job, outcome)
            if broken:
                _drain(events, by_index, running, started, display)
                retry: list[ClipJob] = []
                for job in remaining:
                    if job.index in running:
                        deaths[job.index] = deaths.get(job.index, 0) + 1
                        if deaths[job.index] >= 2:
                            remove_outputs(job.outputs)
                            finished(job, ClipOutcome("failed", reason="The worker process died twice while "
                                     "processing this clip (killed, out of memory or a crash in native code)."))
                            continue
                        log.write("worker-died", job.rel, "retrying once in a fresh worker")
                    retry.append(job)
                remaining = retry
        except BaseException:
            _stop_workers(executor)
            raise
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
            events.close()


def _drain(events: Any, by_index: dict[int, ClipJob], running: set[int], started: Callable[[ClipJob], None],
           display: BatchDisplay) -> None:
    while True:
        try:
            if events.empty():
                return
            message = events.get()
        except (OSError, ValueError, EOFError):
            return
        index, kind, *rest = message
        job = by_index.get(index)
        if job is None:
            continue
        if kind == "start":
            running.add(index)
            started(job)
        elif kind == "stage":
            display.clip_stage(job, rest[0], rest[1], rest[2])


def _stop_workers(executor: ProcessPoolExecutor, grace_s: float = 10.0) -> None:
    """SIGTERM every worker (a busy one unwinds its clip, deleting temp files), then SIGKILL stragglers."""
    processes = list(getattr(executor, "_processes", {}).values())  # private, but the only handle there is
    for p in processes:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(1.0)


def _run_ray(todo: list[ClipJob], run_opts: dict[int, "RunOptions"], options: BatchOptions, clip_fn: ClipFn | None,
             started: Callable[[ClipJob], None], finished: Callable[[ClipJob, ClipOutcome], None],
             gpu: bool) -> None:
    """Ray tasks running ``run_job``; at most ``--jobs`` in flight when given, else all (Ray schedules)."""
    try:
        import ray
    except ImportError as exc:
        raise MocapError("--ray needs Ray; install it with `pip install 'mocap-cli[ray]'`.") from exc
    if not ray.is_initialized():
        try:
            address = None if options.ray_address == "local" else options.ray_address  # None: start one here
            ray.init(address=address, log_to_driver=False)
        except Exception as exc:  # noqa: BLE001 - connection errors come in many types
            raise MocapError(f"Could not connect to Ray at '{options.ray_address}' ({type(exc).__name__}); "
                             "check the address or use --ray auto on a cluster node.") from exc
    gpus = 1 if gpu else 0
    task = ray.remote(run_job).options(num_cpus=1, num_gpus=gpus, max_retries=1)
    limit = options.jobs or len(todo)
    queue_jobs = list(todo)
    refs: dict[Any, ClipJob] = {}
    try:
        while queue_jobs or refs:
            while queue_jobs and len(refs) < limit:
                job = queue_jobs.pop(0)
                started(job)
                refs[task.remote(job, run_opts[job.index], clip_fn)] = job
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.2)
            for ref in ready:
                job = refs.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a worker died twice or Ray failed the task
                    remove_outputs(job.outputs)
                    outcome = ClipOutcome("failed", reason=f"The Ray task for this clip failed ({type(exc).__name__}); "
                                          f"details are in {LOG_NAME}.", traceback=str(exc))
                finished(job, outcome)
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
