"""2D error of the lifters' H36M-17 input against the rendered clips' ground truth, for the input rules.

For each rendered clip in shared/data/synthetic: our detector (``capture.detect``, the settings of ``mocap
run``) once per clip, cached in ``--cache`` (npz per clip); the clip's exact camera-frame H36M joints
(gt.npz ``h36m17``) projected with its intrinsics ``K`` are the truth. Compared, in pixels (640×480 clips):

* gap rule (issue 15 item 3), derived joints as before (``rule="midpoints"``): ``positions``
(``keypoints.lifter_input``: the detector's positions as they are,
  only frames without a detection interpolated) vs ``interpolate`` (the former rule: joints below 0.5
  visibility replaced by interpolation over time, the last value held at the ends);
* derived joints (item 4): ``ours`` (``keypoints.mediapipe_to_h36m(rule="midpoints")``) vs ``demo`` (the
  Strided Transformer demo's COCO rules, ``keypoints.coco_to_h36m`` on the COCO-17 points MediaPipe has);
* the new default (``lifter_input``: positions, demo spine/thorax, our neck/nose and head).

Prints markdown tables: mean joint error per clip (all 17 joints; and on the joint-frames below 0.5
visibility, where the gap rules differ), and per derived joint per rule.

usage: python benchmarks/lifter_input.py [--cache /tmp/mocap_lifter_input_tracks]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from mocap_cli.capture.keypoints import (
    H36M,
    coco_to_h36m,
    fill_low_confidence,
    lifter_input,
    mediapipe_to_coco,
    mediapipe_to_h36m,
)
from mocap_cli.capture.track_file import detect_cached

SHARED = Path(os.environ.get("MOCAP_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
VISIBILITY_THRESHOLD = 0.5  # the former rule's threshold
DERIVED = ("spine", "thorax", "neck_nose", "head")


def ground_truth_2d(gt: dict[str, np.ndarray]) -> np.ndarray:
    """(F, 17, 2) pixels: the camera-frame ``h36m17`` joints through the clip's intrinsics."""
    proj = gt["h36m17"].astype(np.float64) @ gt["K"].astype(np.float64).T
    return proj[..., :2] / proj[..., 2:]


def former_rule(track: dict[str, np.ndarray]) -> np.ndarray:
    """The input before issue 15: gaps filled, then joints below 0.5 visibility interpolated (ends held)."""
    detected = track["detected"].astype(bool)
    vis = np.where(detected[:, None], np.nan_to_num(track["visibility"]), 0.0)
    kp, conf = mediapipe_to_h36m(track["landmarks"][..., :2], vis, rule="midpoints")
    conf = np.where(detected[:, None], conf, 0.0)
    kp = fill_low_confidence(kp, np.where(np.isfinite(kp).all(axis=-1), 1.0, 0.0), 0.5)
    return fill_low_confidence(kp, conf, VISIBILITY_THRESHOLD)


def coco_demo(track: dict[str, np.ndarray]) -> np.ndarray:
    """The Strided demo's own COCO → H36M conversion on MediaPipe's COCO points (gaps filled as lifter_input)."""
    coco = mediapipe_to_coco(track["landmarks"][..., :2]).astype(np.float64)
    good = np.isfinite(coco).all(axis=(1, 2)) & track["detected"].astype(bool)
    coco = fill_low_confidence(coco, np.repeat(good[:, None], 17, axis=1).astype(float), 0.5)
    return coco_to_h36m(coco.astype(np.float32)).astype(np.float64)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--synthetic", type=Path, default=SHARED / "data" / "synthetic")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/mocap_lifter_input_tracks"))
    args = ap.parse_args()
    gap_rows, derived_rows = [], []
    totals: dict[str, list[float]] = {}
    for folder in sorted(p for p in args.synthetic.iterdir() if (p / "gt.npz").is_file()):
        gt = dict(np.load(folder / "gt.npz"))
        track = vars(detect_cached(folder / "video.mp4", args.cache))
        truth = ground_truth_2d(gt)
        n = min(len(truth), len(track["detected"]))
        truth = truth[:n]

        def err(kp: np.ndarray, n: int = n, truth: np.ndarray = truth) -> np.ndarray:
            return np.linalg.norm(kp[:n] - truth, axis=-1)  # (n, 17) px

        vis = np.where(track["detected"][:, None], np.nan_to_num(track["visibility"]), 0.0)
        _, conf = mediapipe_to_h36m(track["landmarks"][..., :2], vis, rule="midpoints")
        low = (conf < VISIBILITY_THRESHOLD)[:n]
        e_old = err(former_rule(track))
        e_pos = err(lifter_input(track["landmarks"], track["visibility"], track["detected"], rule="midpoints")[0])
        e_new = err(lifter_input(track["landmarks"], track["visibility"], track["detected"])[0])
        e_coco = err(coco_demo(track))
        values = {
            "interpolate": e_old.mean(),
            "positions": e_pos.mean(),
            "default": e_new.mean(),
            "interpolate_low": e_old[low].mean() if low.any() else np.nan,
            "positions_low": e_pos[low].mean() if low.any() else np.nan,
        }
        for k, v in values.items():
            if np.isfinite(v):
                totals.setdefault(k, []).append(float(v))
        gap_rows.append(
            f"| {folder.name} | {n} | {low.mean():.1%} | {values['interpolate']:.2f} | {values['positions']:.2f} | "
            f"{values['interpolate_low']:.2f} | {values['positions_low']:.2f} | {values['default']:.2f} |"
        )
        cells = []
        for name in DERIVED:
            j = H36M[name]
            ours, demo = float(e_pos[:, j].mean()), float(e_coco[:, j].mean())
            totals.setdefault(f"midpoints_{name}", []).append(ours)
            totals.setdefault(f"demo_{name}", []).append(demo)
            cells += [f"{ours:.2f}", f"{demo:.2f}"]
        derived_rows.append(f"| {folder.name} | " + " | ".join(cells) + " |")
    m = {k: _mean(v) for k, v in totals.items()}
    print("## Gap rule (item 3): mean H36M-17 input error vs gt h36m17 (px), derived joints as before\n")
    print(
        "| clip | frames | joint-frames < 0.5 vis | interpolate (former) | positions | interpolate, low-vis only | "
        "positions, low-vis only | new default (positions + demo spine/thorax) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(gap_rows))
    print(
        f"| **mean** | | | {m['interpolate']:.2f} | {m['positions']:.2f} | {m['interpolate_low']:.2f} | "
        f"{m['positions_low']:.2f} | {m['default']:.2f} |"
    )
    print("\n## Derived joints (item 4): mean error per joint (px), ours (midpoints) / Strided demo (coco_to_h36m)\n")
    print("| clip | " + " | ".join(f"{n} ours | {n} demo" for n in DERIVED) + " |")
    print("|---|" + "---|" * (2 * len(DERIVED)))
    print("\n".join(derived_rows))
    print("| **mean** | " + " | ".join(f"{m[f'midpoints_{n}']:.2f} | {m[f'demo_{n}']:.2f}" for n in DERIVED) + " |")


if __name__ == "__main__":
    main()
