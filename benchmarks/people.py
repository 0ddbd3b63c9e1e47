"""`--people all` speed on real clips: multi-person detection+tracking frames/s against the single-person
MediaPipe path on the same clip, people found, and the model+export cost of each extra person.

usage: python benchmarks/people.py [--only NAME,...] [FOLDER]   (FOLDER defaults to $MOCAP_SHARED_DIR/data/videos,
else ../shared/data/videos)
Prints a markdown table. Timings depend on the machine; state which one with the numbers.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from mocap_cli.capture.detect import detect
from mocap_cli.capture.video import iter_frames, probe
from mocap_cli.people_pipeline import run_people
from mocap_cli.pipeline import RunOptions, run_clip

TWO_PERSON_CLIPS = "two_people_interaction_lab.mp4,3dpw_courtyard_two_people_portrait.mp4,two_kids_jumping_bed.mp4"


def main() -> None:
    ap = argparse.ArgumentParser()
    shared = Path(os.environ.get("MOCAP_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
    ap.add_argument("folder", nargs="?", type=Path, default=shared / "data" / "videos")
    ap.add_argument("--only", default=TWO_PERSON_CLIPS)
    args = ap.parse_args()
    print(
        "| clip | frames | single-person detect frames/s | single-person end-to-end frames/s "
        "| people | people detect+track frames/s | --people all end-to-end frames/s | s per person (model+export) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in args.only.split(","):
        clip = args.folder / name
        info = probe(clip)
        t0 = time.perf_counter()
        frames = detect(iter_frames(clip, info=info), info).num_frames
        single_detect = frames / (time.perf_counter() - t0)
        with tempfile.TemporaryDirectory() as tmp:
            one = run_clip(clip, RunOptions(exports=(Path(tmp) / "a.bvh",)))
            many = run_people(clip, RunOptions(exports=(Path(tmp) / "b.bvh",)), "all")
        n = len(many.people)
        per_person = (many.seconds["model"] + many.seconds["export"]) / max(n, 1)
        print(
            f"| {name} | {frames} | {single_detect:.2f} | {one.frames / one.total_seconds:.2f} | {n} "
            f"| {many.frames / many.seconds['decode + detect']:.2f} | {many.frames / many.total_seconds:.2f} "
            f"| {per_person:.2f} |"
        )


if __name__ == "__main__":
    main()
