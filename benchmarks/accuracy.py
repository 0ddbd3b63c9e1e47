"""Accuracy and jitter of `mocap run` on the rendered clips with exact 3D ground truth.

usage: python benchmarks/accuracy.py [--model mediapipe] [--smooth light] [--clips walk_16_32,...]

For each clip in ../shared/data/synthetic it runs the whole pipeline (decode → MediaPipe → model → smoothing)
and compares the Motion's joints with the ground-truth skeleton (gt.npz), on the 12 limb joints that
MediaPipe's published baseline uses (BASELINE.md there), so the numbers are comparable:
- MPJPE: hip-midpoint-centred (as the baseline), after ONE rotation for the whole clip (our world heading is the camera's);
- PA-MPJPE: per-frame similarity Procrustes;
- accel error: |second difference (ours) - second difference (GT)|, mm/frame², pelvis-centred;
- root path error: pelvis trajectory after one rigid transform for the clip, mm;
- foot height: ground truth and ours, median lowest-ankle height over the clip (cm), a check of the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from mocap_cli.models.base import ModelSettings
from mocap_cli.pipeline import RunOptions, run_clip

SHARED = Path(os.environ.get("MOCAP_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
LIMBS = ["left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
         "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle"]
SMPL_ORDER = ["pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
              "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
              "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
              "left_hand", "right_hand"]


def kabsch(a: np.ndarray, b: np.ndarray, scale: bool = False) -> tuple[np.ndarray, float, np.ndarray]:
    """R, s, t minimising |s R a + t - b| over points (N, 3)."""
    ma, mb = a.mean(0), b.mean(0)
    a0, b0 = a - ma, b - mb
    u, sig, vt = np.linalg.svd(a0.T @ b0)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    r = (u @ fix @ vt).T
    s = float((sig * np.diag(fix)).sum() / (a0**2).sum()) if scale else 1.0
    return r, s, mb - s * r @ ma


def evaluate(ours: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """ours, gt: (F, 24, 3) world joints in SMPL order (metres)."""
    limbs = [SMPL_ORDER.index(n) for n in LIMBS]
    # Centre on the hip midpoint as MediaPipe's baseline does (pelvis joints are defined differently).
    hips = [SMPL_ORDER.index("left_hip"), SMPL_ORDER.index("right_hip")]
    oc = ours - ours[:, hips].mean(axis=1, keepdims=True)
    gc = gt - gt[:, hips].mean(axis=1, keepdims=True)
    r, _, _ = kabsch(oc[:, limbs].reshape(-1, 3), gc[:, limbs].reshape(-1, 3))
    oc_r = oc @ r.T
    mpjpe = np.linalg.norm(oc_r[:, limbs] - gc[:, limbs], axis=-1).mean()
    pa = []
    for f in range(len(ours)):
        rf, sf, tf = kabsch(ours[f, limbs], gt[f, limbs], scale=True)
        pa.append(np.linalg.norm(sf * ours[f, limbs] @ rf.T + tf - gt[f, limbs], axis=-1).mean())
    acc_o = oc_r[2:] - 2 * oc_r[1:-1] + oc_r[:-2]
    acc_g = gc[2:] - 2 * gc[1:-1] + gc[:-2]
    accel = np.linalg.norm(acc_o[:, limbs] - acc_g[:, limbs], axis=-1).mean()
    rr, _, rt = kabsch(ours[:, 0], gt[:, 0])
    root = np.linalg.norm(ours[:, 0] @ rr.T + rt - gt[:, 0], axis=-1).mean()
    ankles = [SMPL_ORDER.index("left_ankle"), SMPL_ORDER.index("right_ankle")]
    return {
        "mpjpe_mm": 1000 * mpjpe,
        "pa_mpjpe_mm": 1000 * float(np.mean(pa)),
        "accel_mm": 1000 * accel,
        "root_path_mm": 1000 * root,
        "ankle_height_cm_ours": 100 * float(np.median(ours[:, ankles, 1].min(axis=1))),
        "ankle_height_cm_gt": 100 * float(np.median(gt[:, ankles, 1].min(axis=1))),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mediapipe")
    ap.add_argument("--smooth", default="light")
    ap.add_argument("--clips", default="")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    folders = sorted(p for p in (SHARED / "data" / "synthetic").iterdir() if (p / "gt.npz").is_file())
    if args.clips:
        folders = [f for f in folders if f.name in args.clips.split(",")]
    rows = []
    scratch = Path(tempfile.mkdtemp(prefix="mocap_accuracy_"))  # private: several runs may share /tmp
    for folder in folders:
        gt = np.load(folder / "gt.npz")
        out = scratch / f"acc_{folder.name}.npz"
        t0 = time.perf_counter()
        res = run_clip(folder / "video.mp4", RunOptions(exports=(out,), model=args.model, smooth=args.smooth,
                                                        overwrite=True, settings=ModelSettings()))
        seconds = time.perf_counter() - t0
        ours = res.motion.joints
        truth = gt["joints3d_world"][: len(ours), :24]
        row = {"clip": folder.name, "frames": res.frames, "detection_rate": res.detection_rate,
               "fps_end_to_end": res.frames / seconds, **evaluate(ours, truth)}
        rows.append(row)
        print(json.dumps(row))
    keys = ["mpjpe_mm", "pa_mpjpe_mm", "accel_mm", "root_path_mm"]
    total = sum(r["frames"] for r in rows)
    mean = {k: sum(r[k] * r["frames"] for r in rows) / total for k in keys}
    print(f"\n| clip | frames | det. rate | MPJPE mm | PA-MPJPE mm | accel mm/f² | root path mm | ankle h. ours/GT cm |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['clip']} | {r['frames']} | {r['detection_rate']:.3f} | {r['mpjpe_mm']:.1f} | {r['pa_mpjpe_mm']:.1f} | "
              f"{r['accel_mm']:.2f} | {r['root_path_mm']:.0f} | {r['ankle_height_cm_ours']:.1f}/{r['ankle_height_cm_gt']:.1f} |")
    print(f"| **mean (frame-weighted)** | {total} | | {mean['mpjpe_mm']:.1f} | {mean['pa_mpjpe_mm']:.1f} | "
          f"{mean['accel_mm']:.2f} | {mean['root_path_mm']:.0f} | |")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "mean": mean}, indent=1))


if __name__ == "__main__":
    main()
