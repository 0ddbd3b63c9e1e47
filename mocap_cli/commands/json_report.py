"""``--json``: the machine-readable summary ``mocap run`` and ``mocap batch`` print on stdout.

One JSON object per command, always with ``command``, ``status`` (ok / failed) and ``exit_code``; the shapes
are fixed by the schemas shipped next to this module (``schema/run.schema.json``, ``schema/batch.schema.json``)
so scripts can rely on them. Paths are as given on the command line (run) or relative to the output folder
(batch, as in its report.json). A failure the command reports (exit code 1: a bad input or setting, a clip that
failed) prints a failure object; errors the argument parser itself raises (exit code 2: an unknown flag, a value
out of range or not among the choices) print only its usage text.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mocap_cli import __version__
from mocap_cli.errors import MocapError

if TYPE_CHECKING:
    from mocap_cli.batch.run import BatchResult
    from mocap_cli.people_pipeline import PeopleResult
    from mocap_cli.pipeline import RunResult

SCHEMA_DIR = Path(__file__).with_name("schema")
FORMAT_VERSION = 1


def schema(command: str) -> dict[str, Any]:
    """The JSON schema of ``command``'s summary (run or batch)."""
    return json.loads((SCHEMA_DIR / f"{command}.schema.json").read_text(encoding="utf-8"))


def _base(command: str, status: str, exit_code: int) -> dict[str, Any]:
    return {
        "command": command,
        "format_version": FORMAT_VERSION,
        "mocap_version": __version__,
        "status": status,
        "exit_code": exit_code,
    }


def run_summary(video: Path, result: RunResult) -> dict[str, Any]:
    motion = result.motion
    return {
        **_base("run", "ok", 0),
        "input": str(video),
        "files": [str(p) for p in result.files],
        "frames": int(result.frames),
        "video_fps": float(result.video.fps),
        "output_fps": float(motion.fps),
        "output_frames": int(motion.num_frames),
        "detection_rate": round(float(result.detection_rate), 4),
        "people": 1,  # the pipeline follows one person per clip
        "model": motion.provenance.get("model", ""),
        "warnings": list(result.warnings),
        "timings": {name: round(float(s), 4) for name, s in result.seconds.items()},
        "total_seconds": round(float(result.total_seconds), 4),
    }


def people_run_summary(video: Path, result: PeopleResult) -> dict[str, Any]:
    """``run --people all|N``: the same object as ``run_summary``; frames and rates are the clip's, the
    detection rate is the share of frames with at least one of the people kept."""
    motion = result.motions[0]
    return {
        **_base("run", "ok", 0),
        "input": str(video),
        "files": [str(p) for p in result.files],
        "frames": int(result.frames),
        "video_fps": float(result.video_fps),
        "output_fps": float(motion.fps),
        "output_frames": int(motion.num_frames),
        "detection_rate": round(float(result.detection_rate), 4),
        "people": len(result.people),
        "model": motion.provenance.get("model", ""),
        "warnings": [],
        "timings": {name: round(float(s), 4) for name, s in result.seconds.items()},
        "total_seconds": round(float(result.total_seconds), 4),
    }


def run_failure(video: Path, error: MocapError) -> dict[str, Any]:
    return {**_base("run", "failed", error.exit_code), "input": str(video), "error": str(error)}


def batch_summary(result: BatchResult) -> dict[str, Any]:
    header = result.report.header
    clips = []
    for row in result.rows:
        clips.append(
            {
                "clip": row.clip,
                "status": row.status,
                "reason": row.reason,
                "files": list(row.outputs),
                "frames": row.frames,
                "video_fps": row.source_fps,
                "detection_rate": row.detection_rate,
                "people": 1 if row.status in ("done", "skipped") else 0,
                "warnings": list(row.warnings),
                "seconds": row.seconds,
            }
        )
    code = result.exit_code
    return {
        **_base("batch", "ok" if code == 0 else "failed", code),
        "input": str(header.get("input", "")),
        "output": str(header.get("output", "")),
        "summary": result.report.counts(),
        "interrupted": bool(result.interrupted),
        "clips": clips,
    }


def batch_failure(in_dir: Path, error: MocapError) -> dict[str, Any]:
    return {**_base("batch", "failed", error.exit_code), "input": str(in_dir), "error": str(error)}


def emit(data: dict[str, Any]) -> None:
    """Write one summary object on stdout (one line, so it can be piped into ``jq`` or parsed line-wise)."""
    sys.stdout.write(json.dumps(data, sort_keys=False) + "\n")
    sys.stdout.flush()
