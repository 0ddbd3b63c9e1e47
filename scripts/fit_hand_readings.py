"""Fit MediaPipe's reading of our rig's relaxed thumb → mocap_cli/solve/mediapipe_thumb.json.

usage: python scripts/fit_hand_readings.py [--work /tmp/mocap_hand_fit] [--out mocap_cli/solve/mediapipe_thumb.json]

Renders the shipped body with relaxed hands (``tests/hand_render.py``: bpy + the anny body) seen three-quarter on,
with hands 120 and 200 px tall (the finger test renders side and front views at 150 px, so none of its frames is
used here), runs our hand stage on it as ``mocap run`` does (``capture.detect`` + ``capture.hands`` +
``hand_ik.lift_track``), and fits the direction MediaPipe's landmarks give for the base bone of the rig's relaxed
thumb (``hand_ik.fit_thumb_reading``). The first and last frame of each held pose are left out (the trackers take a
frame to follow a pose change).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from mocap_cli.capture.detect import detect
from mocap_cli.capture.hands import SIDES, detect_hands
from mocap_cli.capture.video import iter_frames, probe
from mocap_cli.core.hand_skeleton import with_fingers
from mocap_cli.core.skeleton import canonical_skeleton
from mocap_cli.solve import hand_ik

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from hand_render import hand_clip  # noqa: E402

VIEW, SIZES, HOLD = "three_quarter", [120.0, 200.0], 8


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/mocap_hand_fit"))
    ap.add_argument("--out", type=Path, default=hand_ik.THUMB_READING_FILE)
    args = ap.parse_args()
    clip, scene = hand_clip(args.work, SIZES, [VIEW], hold=HOLD)
    info = probe(clip)
    track = detect(iter_frames(clip, info=info), info)
    hands = detect_hands(iter_frames(clip, info=info), track)
    frame = np.arange(len(scene["poses"]))
    relaxed = (scene["poses"] == "relaxed") & (frame % HOLD != 0) & (frame % HOLD != HOLD - 1)
    rest = with_fingers(canonical_skeleton()).rest_positions()
    points, sides, used = [], [], {}
    for s, side in enumerate(SIDES):
        seen = hands.seen(hand_ik.MIN_CONFIDENCE)[:, s]
        lifted = hand_ik.lift_track(hands, s, seen)  # bone lengths from every frame the hand is seen, as in a run
        keep = relaxed[seen]
        points.append(lifted[keep])
        sides.append(side)
        used[side] = int(keep.sum())
    reading = hand_ik.fit_thumb_reading(points, rest, sides)
    rig = hand_ik._rest_directions(rest, "left", "thumb")[0]
    off = float(np.degrees(np.arccos(np.clip(reading @ rig, -1, 1))))
    args.out.write_text(
        json.dumps(
            {
                "about": "MediaPipe's reading of the rig's relaxed left thumb: the unit direction of its base bone "
                "(CMC to MCP landmark) in the wrist's rest frame (scripts/fit_hand_readings.py)",
                "render": f"tests/hand_render.py, view {VIEW}, hands {SIZES} px, relaxed pose, frames per hand {used}",
                "degrees_from_rig": round(off, 1),
                "direction": [round(float(v), 5) for v in reading],
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {args.out}: the thumb's base bone reads {off:.1f} degrees off the rig's")


if __name__ == "__main__":
    main()
