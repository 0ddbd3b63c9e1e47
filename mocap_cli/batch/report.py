"""What a batch tells its user: ``report.json`` + ``report.csv`` (one row per clip, rewritten atomically each
time a clip finishes, so a studio script can read them during the run) and the append-only ``batch.log``
(one line per clip event, with the full traceback of any unexpected error).

A row also carries warnings the batch can tell from a finished clip's result, e.g. legs that were mostly
out of view (the model then guesses them).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mocap_cli.core.atomic import write_text_atomic

if TYPE_CHECKING:
    from mocap_cli.batch.plan import ClipJob

REPORT_JSON = "report.json"
REPORT_CSV = "report.csv"
LOG_NAME = "batch.log"
# Lower-body warning: knees and ankles confident (>= this) in fewer than this fraction of detected frames.
LEG_CONFIDENCE = 0.5
LEG_VISIBLE_FRACTION = 0.5

ROW_FIELDS = (
    "clip",
    "status",
    "reason",
    "frames",
    "source_fps",
    "detection_rate",
    "seconds",
    "frames_per_second",
    "outputs",
    "warnings",
)


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


def now() -> str:
    """A UTC timestamp as the report and log write it."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


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
        data = dict(self.header, updated=now(), summary=self.counts(), clips=[dataclasses.asdict(r) for r in self.rows])
        write_text_atomic(self.out_dir / REPORT_JSON, json.dumps(data, indent=2) + "\n")
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(ROW_FIELDS)
        for row in self.rows:
            values = dataclasses.asdict(row)
            writer.writerow(
                [
                    "; ".join(values[k]) if isinstance(values[k], list) else ("" if values[k] is None else values[k])
                    for k in ROW_FIELDS
                ]
            )
        write_text_atomic(self.out_dir / REPORT_CSV, buf.getvalue())


class BatchLog:
    """Append-only ``batch.log``: one line per clip event, full tracebacks of unexpected errors."""

    def __init__(self, path: Path, run_id: str) -> None:
        self.path = path
        self.run_id = run_id

    def write(self, event: str, clip: str = "", detail: str = "") -> None:
        line = f"{now()} run={self.run_id} {event}" + (f" {clip}" if clip else "") + (f": {detail}" if detail else "")
        with open(self.path, "a") as f:
            f.write(line.rstrip("\n") + "\n")


def row_from_outcome(job: ClipJob, out_dir: Path, outcome: ClipOutcome) -> ClipRow:
    fps = outcome.frames / outcome.seconds if outcome.frames and outcome.seconds > 0 else None
    return ClipRow(
        clip=job.rel,
        status=outcome.status,
        reason=outcome.reason,
        frames=outcome.frames,
        source_fps=_round(outcome.source_fps, 4),
        detection_rate=_round(outcome.detection_rate, 4),
        seconds=_round(outcome.seconds, 3),
        frames_per_second=_round(fps, 2),
        outputs=[
            Path(f).relative_to(out_dir).as_posix() if Path(f).is_relative_to(out_dir) else str(f)
            for f in outcome.files
        ],
        warnings=list(outcome.warnings),
    )


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(float(x), digits)


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
    return (
        f"knees/ankles were clearly visible in only {visible:.0%} of the frames with a person; "
        "the legs are mostly guessed"
    )


def clip_warnings(result: Any) -> list[str]:
    """run_clip's own warnings plus what the batch can tell from the result's joint confidence."""
    warnings = list(result.warnings)
    motion = result.motion
    leg = lower_body_warning(motion.confidence, tuple(motion.skeleton.names))
    if leg:
        warnings.append(leg)
    return warnings
