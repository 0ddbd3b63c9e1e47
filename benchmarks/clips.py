"""`mocap run` over every real clip: outcome, frames, detection rate, and end-to-end speed against
MediaPipe alone (decode + detect, the floor any MediaPipe-based tool pays) on the same clip.

usage: python benchmarks/clips.py [FOLDER] [--model mediapipe] [--only NAME,...]
FOLDER defaults to ../shared/data/videos. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from mocap_cli.capture.detect import detect
from mocap_cli.errors import MocapError
from mocap_cli.models.base import ModelSettings
from mocap_cli.pipeline import RunOptions, run_clip
from mocap_cli.capture.video import iter_frames, probe

VIDEO_EXTENSIONS = {".mp4", ".avi", ".mov", ".mkv", ".webm"}


def mediapipe_only(path: Path) -> tuple[int, float]:
    t0 = time.perf_counter()
    info = probe(path)
    track = detect(iter_frames(path, info=info), info)
    return track.num_frames, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("folder", nargs="?", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/videos")
    ap.add_argument("--model", default="mediapipe")
    ap.add_argument("--only", default="")
    ap.add_argument("--hands", default="auto", choices=["auto", "off"])
    args = ap.parse_args()
    clips = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
    if args.only:
        clips = [c for c in clips if c.name in args.only.split(",")]
    print("| clip | outcome | frames | fps | detection rate | MediaPipe-only frames/s | end-to-end frames/s | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for clip in clips:
        with tempfile.TemporaryDirectory() as tmp:
            outs = tuple(Path(tmp) / f"out{ext}" for ext in (".glb", ".bvh", ".npz"))
            try:
                mp_frames, mp_seconds = mediapipe_only(clip)
                t0 = time.perf_counter()
                res = run_clip(clip, RunOptions(exports=outs, model=args.model, settings=ModelSettings(),
                                                hands=args.hands))
                seconds = time.perf_counter() - t0
            except MocapError as exc:
                print(f"| {clip.name} | error: {exc} | | | | | | |")
                continue
        mp_fps, e2e_fps = mp_frames / mp_seconds, res.frames / seconds
        print(f"| {clip.name} | wrote glb, bvh, npz | {res.frames} | {float(res.video.fps):.3f} | "
              f"{res.detection_rate:.3f} | {mp_fps:.1f} | {e2e_fps:.1f} | {e2e_fps / mp_fps:.2f} |", flush=True)


if __name__ == "__main__":
    main()
