"""`mocap run` over every real clip: outcome, frames, detection rate, and end-to-end speed against
MediaPipe alone (decode + detect, the floor any MediaPipe-based tool pays) on the same clip.

usage: python benchmarks/clips.py [FOLDER] [--model mediapipe] [--only NAME,...] [--preview]
FOLDER defaults to ../shared/data/videos. Prints a markdown table.

--preview adds a second table: each clip run again with ``--preview`` (and a GLB, so the body silhouette is drawn
when anny is installed); the preview stage's time against the rest of the same run (same machine load), and
the two runs' end-to-end times. Target: the preview adds at most 25 % at 720p with the default model.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from mocap_cli.capture.detect import detect
from mocap_cli.capture.video import iter_frames, probe
from mocap_cli.errors import MocapError
from mocap_cli.models.base import ModelSettings
from mocap_cli.pipeline import RunOptions, run_clip

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
    ap.add_argument("--preview", action="store_true", help="also measure what --preview adds")
    ap.add_argument("--hands", default="auto", choices=["auto", "off"])
    args = ap.parse_args()
    clips = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in VIDEO_EXTENSIONS)
    if args.only:
        clips = [c for c in clips if c.name in args.only.split(",")]
    print("| clip | outcome | frames | fps | detection rate | MediaPipe-only frames/s | end-to-end frames/s | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    preview_rows: list[str] = []
    for clip in clips:
        with tempfile.TemporaryDirectory() as tmp:
            outs = tuple(Path(tmp) / f"out{ext}" for ext in (".glb", ".bvh", ".npz"))
            try:
                mp_frames, mp_seconds = mediapipe_only(clip)
                t0, c0 = time.perf_counter(), cpu_seconds()
                res = run_clip(
                    clip, RunOptions(exports=outs, model=args.model, settings=ModelSettings(), hands=args.hands)
                )
                seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            except MocapError as exc:
                print(f"| {clip.name} | error: {exc} | | | | | | |")
                continue
        mp_fps, e2e_fps = mp_frames / mp_seconds, res.frames / seconds
        print(
            f"| {clip.name} | wrote glb, bvh, npz | {res.frames} | {float(res.video.fps):.3f} | "
            f"{res.detection_rate:.3f} | {mp_fps:.1f} | {e2e_fps:.1f} | {e2e_fps / mp_fps:.2f} |",
            flush=True,
        )
        if args.preview:
            preview_rows.append(preview_row(clip, args.model, args.hands, seconds, cpu))
    if args.preview:
        print(
            "\n| clip | size | frames | run without preview (s) | run with preview (s) | preview stage (s) | "
            "preview / rest of its run | CPU without / with preview (s) | CPU added |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for row in preview_rows:
            print(row)


def cpu_seconds() -> float:
    """CPU time of this process (all threads) and of its finished children (the ffmpeg decoders and encoders)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def preview_row(clip: Path, model: str, hands: str, plain_seconds: float, plain_cpu: float) -> str:
    """``--preview`` added to the same clip: the stage's share of its own run, wall times, and CPU time (the
    least sensitive to other work on the machine)."""
    info = probe(clip)
    with tempfile.TemporaryDirectory() as tmp:
        options = RunOptions(
            exports=(Path(tmp) / "out.glb", Path(tmp) / "out.bvh", Path(tmp) / "out.npz"),
            model=model,
            settings=ModelSettings(),
            preview=Path(tmp) / "preview.mp4",
            hands=hands,
        )
        t0, c0 = time.perf_counter(), cpu_seconds()
        try:
            res = run_clip(clip, options)
        except MocapError as exc:
            return f"| {clip.name} | {info.width}x{info.height} | error: {exc} | | | | | | |"
        seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    stage = res.seconds["preview"]
    rest = sum(v for k, v in res.seconds.items() if k != "preview")
    return (
        f"| {clip.name} | {info.width}x{info.height} | {res.frames} | {plain_seconds:.1f} | {seconds:.1f} | "
        f"{stage:.1f} | {stage / rest:.0%} | {plain_cpu:.1f} / {cpu:.1f} | {cpu / plain_cpu - 1:.0%} |"
    )


if __name__ == "__main__":
    main()
