"""Accuracy and jitter of `mocap run` on the rendered clips with exact 3D ground truth.

usage: python benchmarks/accuracy.py [--model mediapipe] [--weights FILE] [--smooth light] [--foot-lock auto|off]
                                    [--clips walk_16_32,...] [--cache DIR] [--json out.json] [--hands auto|off]
                                    [--height model|truth] [--fov default|truth]

For each clip in ../shared/data/synthetic it runs the whole pipeline (decode → MediaPipe → model → smoothing)
and compares the Motion's joints with the ground-truth skeleton (gt.npz), on the 12 limb joints that
MediaPipe's published baseline uses (BASELINE.md there), so the numbers are comparable:
- MPJPE: hip-midpoint-centred (as the baseline), after ONE rotation for the whole clip (our world heading is the
camera's);
- PA-MPJPE: per-frame similarity Procrustes;
- accel error: |second difference (ours) - second difference (GT)|, mm/frame², pelvis-centred;
- root path error: pelvis trajectory after one rigid transform for the clip, mm;
- foot height: ground truth and ours, median lowest-ankle height over the clip (cm), a check of the floor;
- floor tilt: the angle between our floor's normal and the true one, both seen from the camera (our recorded
  camera pose, gt.npz ``R``) at the first frame, degrees: a tilted floor makes a travelling body climb or sink.

Ground contact (issue 11's definitions, so numbers compare across branches). A foot joint (left/right ankle,
left/right foot = ball) is *planted* in frame f when its GT speed between f-1 and f is below 1 cm/frame and its
GT height is within 6 cm of that joint's lowest GT height in the clip:
- foot skate: mean horizontal (XZ) speed of our same joint over planted frames, mm/frame;
- penetration: share of frames whose lowest foot joint (ours) is more than 2 cm below the floor y = 0;
- float: median over planted frames of our joint's height minus the GT joint's height, cm (signed; part of it
  is the constant difference between MediaPipe's and Anny's ankle/toe definitions);
- contact precision/recall: our Motion.contacts (>= 0.5) on the four foot joints against the planted frames.

``--height truth`` gives each clip's performer's stature (gt.npz ``body_height``) as `mocap run --height` would
(a user who measured them); the default ``model`` leaves the size to the model, as a plain `mocap run` does.
``--fov truth`` gives each clip's true field of view (from gt.npz ``K``) as `mocap run --fov` would (a user who
knows the lens); the default assumes ``DEFAULT_FOV_DEGREES``, as a plain `mocap run` does.

``--cache DIR`` keeps each clip's MediaPipe track (the slow part) in DIR, keyed by the video's size and mtime,
so re-runs only time and measure the stages after detection ("fps_end_to_end" then excludes detection).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from mocap_cli import pipeline
from mocap_cli.capture.detect import Track2D
from mocap_cli.capture.track_file import cached_track_path, load_track, save_track
from mocap_cli.core.alignment import procrustes_errors, similarity_align
from mocap_cli.core.skeleton import JOINT_NAMES
from mocap_cli.models.base import ModelSettings
from mocap_cli.pipeline import RunOptions, run_clip
from mocap_cli.solve.camera import DEFAULT_FOV_DEGREES
from mocap_cli.solve.camera_pose import recorded_pose

SHARED = Path(os.environ.get("MOCAP_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
LIMBS = [
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
]
SMPL_ORDER = list(JOINT_NAMES)  # the GT files use the SMPL-24 order of our skeleton
FEET = ["left_ankle", "right_ankle", "left_foot", "right_foot"]
PLANTED_SPEED_M = 0.01  # per frame
PLANTED_HEIGHT_M = 0.06  # above the joint's lowest GT height in the clip
PENETRATION_M = 0.02


def evaluate(ours: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """ours, gt: (F, 24, 3) world joints in SMPL order (metres)."""
    limbs = [SMPL_ORDER.index(n) for n in LIMBS]
    # Centre on the hip midpoint as MediaPipe's baseline does (pelvis joints are defined differently).
    hips = [SMPL_ORDER.index("left_hip"), SMPL_ORDER.index("right_hip")]
    oc = ours - ours[:, hips].mean(axis=1, keepdims=True)
    gc = gt - gt[:, hips].mean(axis=1, keepdims=True)
    r, _, _ = similarity_align(oc[:, limbs].reshape(-1, 3), gc[:, limbs].reshape(-1, 3))
    oc_r = oc @ r.T
    mpjpe = np.linalg.norm(oc_r[:, limbs] - gc[:, limbs], axis=-1).mean()
    pa = procrustes_errors(ours[:, limbs], gt[:, limbs]).mean(axis=1)
    acc_o = oc_r[2:] - 2 * oc_r[1:-1] + oc_r[:-2]
    acc_g = gc[2:] - 2 * gc[1:-1] + gc[:-2]
    accel = np.linalg.norm(acc_o[:, limbs] - acc_g[:, limbs], axis=-1).mean()
    rr, _, rt = similarity_align(ours[:, 0], gt[:, 0])
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


def floor_tilt(motion, gt) -> float:
    """Degrees between our world's up and the true one, both in the camera's axes at the first frame."""
    pose = recorded_pose(motion.provenance)
    if pose is None:
        return float("nan")
    ours = pose.at(0).rotation.T @ np.array([0.0, 1.0, 0.0])
    truth = np.asarray(gt["R"])[0] @ np.array([0.0, 1.0, 0.0])
    return float(np.degrees(np.arccos(np.clip(ours @ truth, -1.0, 1.0))))


def true_fov(gt) -> float:
    """The rendering camera's field of view across the longer image side, degrees (what `--fov` takes)."""
    return float(2.0 * np.degrees(np.arctan(0.5 * max(gt["image_size"]) / float(gt["K"][0, 0]))))


def planted_mask(gt: np.ndarray) -> np.ndarray:
    """(F, 4) GT planted frames of the FEET joints from GT joints (F, 24, 3); frame 0 has no speed: False."""
    feet = gt[:, [SMPL_ORDER.index(n) for n in FEET]]
    speed = np.zeros(feet.shape[:2])
    speed[1:] = np.linalg.norm(np.diff(feet, axis=0), axis=-1)
    height = feet[..., 1]
    planted = (speed < PLANTED_SPEED_M) & (height - height.min(axis=0) < PLANTED_HEIGHT_M)
    planted[0] = False
    return planted


def ground_contact(ours: np.ndarray, gt: np.ndarray, contacts: np.ndarray | None) -> dict[str, float]:
    """Skate, penetration, float and contact precision/recall (module docstring). ours, gt: (F, 24, 3);
    contacts: (F, 4) our contact probabilities of the FEET joints, or None when the motion has none."""
    planted = planted_mask(gt)
    feet = [SMPL_ORDER.index(n) for n in FEET]
    step = np.zeros(planted.shape)
    step[1:] = np.linalg.norm(np.diff(ours[:, feet][..., [0, 2]], axis=0), axis=-1)
    out = {
        "planted_frames": int(planted.sum()),
        "skate_mm": 1000 * float(step[planted].mean()) if planted.any() else float("nan"),
        "penetration": float(np.mean(ours[:, feet, 1].min(axis=1) < -PENETRATION_M)),
        "float_cm": 100 * float(np.median(ours[:, feet, 1][planted] - gt[:, feet, 1][planted]))
        if planted.any()
        else float("nan"),
        "contact_precision": float("nan"),
        "contact_recall": float("nan"),
    }
    if contacts is not None:
        found = contacts >= 0.5
        out["contact_precision"] = float((found & planted).sum() / max(found.sum(), 1))
        out["contact_recall"] = float((found & planted).sum() / max(planted.sum(), 1))
    return out


def motion_contacts(motion) -> np.ndarray | None:
    """(F, 4) contact probabilities of the FEET joints from a Motion, or None (a build without contacts)."""
    contacts = getattr(motion, "contacts", None)
    if contacts is None:
        return None
    names = list(getattr(motion, "contact_joints", ()))
    if not all(n in names for n in FEET):
        return None
    return np.asarray(contacts)[:, [names.index(n) for n in FEET]]


def cache_detection(cache: Path) -> None:
    """Route ``pipeline.decode_and_detect`` through a per-video cache in ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    detect = pipeline.decode_and_detect

    def cached(video: Path, info, options, reporter, on_frame=None) -> Track2D:
        key = cached_track_path(video, cache, options.start, options.end)
        if key.is_file():
            return load_track(key)  # the hands, if wanted, come from a second decode
        track = detect(video, info, options, reporter, on_frame=on_frame)
        save_track(track, key)
        return track

    pipeline.decode_and_detect = cached


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="mediapipe")
    ap.add_argument("--weights", type=Path, help="a checkpoint for --model (as `mocap run --weights`)")
    ap.add_argument("--smooth", default="light")
    ap.add_argument("--clips", default="")
    ap.add_argument("--foot-lock", default=None, help="auto | off (default: the pipeline's)")
    ap.add_argument("--cache", type=Path, help="folder keeping each clip's MediaPipe track between runs")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--hands", default="auto", choices=["auto", "off"])
    ap.add_argument("--height", default="model", choices=["model", "truth"], help="the body's size: see above")
    ap.add_argument("--fov", default="default", choices=["default", "truth"], help="the field of view: see above")
    args = ap.parse_args()
    if args.cache:
        cache_detection(args.cache)
    extra = {} if args.foot_lock is None else {"foot_lock": args.foot_lock}
    folders = sorted(p for p in (SHARED / "data" / "synthetic").iterdir() if (p / "gt.npz").is_file())
    if args.clips:
        folders = [f for f in folders if f.name in args.clips.split(",")]
    rows = []
    scratch = Path(tempfile.mkdtemp(prefix="mocap_accuracy_"))  # private: several runs may share /tmp
    for folder in folders:
        gt = np.load(folder / "gt.npz")
        out = scratch / f"acc_{folder.name}.npz"
        t0 = time.perf_counter()
        res = run_clip(
            folder / "video.mp4",
            RunOptions(
                exports=(out,),
                model=args.model,
                smooth=args.smooth,
                overwrite=True,
                settings=ModelSettings(
                    weights=args.weights,
                    height=float(gt["body_height"]) if args.height == "truth" else None,
                    fov_degrees=true_fov(gt) if args.fov == "truth" else DEFAULT_FOV_DEGREES,
                ),
                hands=args.hands,
                **extra,
            ),
        )
        seconds = time.perf_counter() - t0
        ours = res.motion.joints[:, :24]  # the body (finger joints follow with --hands auto)
        truth = gt["joints3d_world"][: len(ours), :24]
        row = {
            "clip": folder.name,
            "frames": res.frames,
            "detection_rate": res.detection_rate,
            "fps_end_to_end": res.frames / seconds,
            **evaluate(ours, truth),
            "floor_tilt_deg": floor_tilt(res.motion, gt),
            **ground_contact(ours, truth, motion_contacts(res.motion)),
        }
        rows.append(row)
        print(json.dumps(row))
    keys = ["mpjpe_mm", "pa_mpjpe_mm", "accel_mm", "root_path_mm", "penetration", "floor_tilt_deg"]
    total = sum(r["frames"] for r in rows)
    mean = {k: sum(r[k] * r["frames"] for r in rows) / total for k in keys}
    # Skate and float are per planted frame: weight clips by their planted frames.
    planted = sum(r["planted_frames"] for r in rows)
    for k in ("skate_mm", "float_cm"):
        mean[k] = sum(r[k] * r["planted_frames"] for r in rows) / max(planted, 1)
    for k in ("contact_precision", "contact_recall"):
        mean[k] = sum(r[k] * r["planted_frames"] for r in rows) / max(planted, 1)
    print(
        "\n| clip | frames | det. rate | MPJPE mm | PA-MPJPE mm | accel mm/f² | root path mm | skate mm/f | "
        "penetration | float cm | contact P/R | ankle h. ours/GT cm | floor tilt ° |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['clip']} | {r['frames']} | {r['detection_rate']:.3f} | {r['mpjpe_mm']:.1f} | "
            f"{r['pa_mpjpe_mm']:.1f} | "
            f"{r['accel_mm']:.2f} | {r['root_path_mm']:.0f} | {r['skate_mm']:.1f} | {100 * r['penetration']:.1f} % | "
            f"{r['float_cm']:.1f} | {r['contact_precision']:.2f}/{r['contact_recall']:.2f} | "
            f"{r['ankle_height_cm_ours']:.1f}/{r['ankle_height_cm_gt']:.1f} | {r['floor_tilt_deg']:.1f} |"
        )
    print(
        f"| **frame-weighted** | {total} | | {mean['mpjpe_mm']:.1f} | {mean['pa_mpjpe_mm']:.1f} | "
        f"{mean['accel_mm']:.2f} | {mean['root_path_mm']:.0f} | {mean['skate_mm']:.1f} | "
        f"{100 * mean['penetration']:.1f} % | "
        f"{mean['float_cm']:.1f} | {mean['contact_precision']:.2f}/{mean['contact_recall']:.2f} | | "
        f"{mean['floor_tilt_deg']:.1f} |"
    )
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "mean": mean}, indent=1))


if __name__ == "__main__":
    main()
