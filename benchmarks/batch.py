"""Throughput of ``mocap batch`` with 1..N parallel jobs: clips/s, frames/s and scaling efficiency vs one job.

usage: python benchmarks/batch.py [--clips 4] [--videos a.mp4,b.mp4] [--jobs 1,2] [--model mediapipe]
                                  [--formats glb] [--json out.json]

The input folder holds ``--clips`` symlinks cycling through ``--videos`` (default: the 40-frame 3DPW clip from
../shared/data/videos). Each ``--jobs`` value runs the whole batch into a fresh output folder, timed end to end
(worker start-up, imports and model creation included: that is what a user waits for). Efficiency =
(frames/s with j jobs) / (j * frames/s with 1 job).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from mocap_cli.batch.plan import BatchOptions, default_jobs
from mocap_cli.batch.run import run_batch
from mocap_cli.settings import RunSettings

SHARED = Path(__file__).resolve().parents[2] / "shared"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--videos", default="3dpw_courtyard_basketball_portrait.mp4")
    parser.add_argument("--jobs", default=",".join(str(j) for j in range(1, default_jobs() + 1)))
    parser.add_argument("--model", default="mediapipe")
    parser.add_argument("--formats", default="glb")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    videos = [SHARED / "data" / "videos" / v for v in args.videos.split(",")]
    for v in videos:
        if not v.is_file():
            raise SystemExit(f"missing test clip {v}")
    jobs_list = [int(j) for j in args.jobs.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="mocap-batch-bench-") as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        for i in range(args.clips):
            video = videos[i % len(videos)]
            (src / f"clip{i:03d}{video.suffix}").symlink_to(video)
        for jobs in jobs_list:
            out = Path(tmp) / f"out-j{jobs}"
            settings = RunSettings(formats=tuple(args.formats.split(",")), model=args.model)
            t0 = time.perf_counter()
            result = run_batch(BatchOptions(src, out, settings, jobs=jobs))
            wall = time.perf_counter() - t0
            done = [r for r in result.rows if r.status == "done"]
            if len(done) != args.clips:
                raise SystemExit(f"{args.clips - len(done)} clip(s) failed: {[r.reason for r in result.rows]}")
            frames = sum(r.frames or 0 for r in done)
            rows.append(
                {
                    "jobs": jobs,
                    "clips": len(done),
                    "frames": frames,
                    "seconds": wall,
                    "clips_per_s": len(done) / wall,
                    "frames_per_s": frames / wall,
                }
            )
    base = next((r for r in rows if r["jobs"] == 1), rows[0])
    for r in rows:
        r["efficiency"] = r["frames_per_s"] / (base["frames_per_s"] * r["jobs"] / base["jobs"])
    print(
        f"{args.clips} clips ({args.videos}), model {args.model}, formats {args.formats}, "
        f"{os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}"
    )
    print("| jobs | clips | frames | wall s | clips/s | frames/s | efficiency |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['jobs']} | {r['clips']} | {r['frames']} | {r['seconds']:.1f} | {r['clips_per_s']:.3f} | "
            f"{r['frames_per_s']:.1f} | {r['efficiency']:.0%} |"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
