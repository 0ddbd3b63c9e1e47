"""Fit MediaPipe's keypoint offsets and error statistics on the public rendered clips → mediapipe_noise.json.

usage: python scripts/fit_mediapipe_noise.py [--synthetic ../shared/data/synthetic] [--cache /tmp/mocap_mp_tracks]
           [--out mocap_cli/training/mediapipe_noise.json]

Runs our detector (``capture.detect``, the same MediaPipe settings as ``mocap run``) once per clip and caches
the landmarks in ``--cache``; converts them to H36M-17 exactly as the lifter adapter does; compares with the
clip's exact camera-frame H36M joints (gt.npz ``h36m17``, intrinsics ``K``). See
``mocap_cli/training/mediapipe_noise.py`` for the model. ``mocap train mixste`` reads the written file.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from mocap_cli.capture.keypoints import H36M_NAMES, mediapipe_to_h36m
from mocap_cli.capture.track_file import detect_cached
from mocap_cli.models.lifters.adapter import VISIBILITY_THRESHOLD
from mocap_cli.training.mediapipe_noise import NOISE_FILE, FitClip, fit_noise

SHARED = Path(os.environ.get("MOCAP_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--synthetic", type=Path, default=SHARED / "data" / "synthetic")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/mocap_mp_tracks"))
    ap.add_argument("--out", type=Path, default=NOISE_FILE)
    args = ap.parse_args()
    clips = []
    for folder in sorted(p for p in args.synthetic.iterdir() if (p / "gt.npz").is_file()):
        gt = np.load(folder / "gt.npz")
        track = vars(detect_cached(folder / "video.mp4", args.cache))
        vis = np.where(track["detected"][:, None], np.nan_to_num(track["visibility"]), 0.0)
        kp, conf = mediapipe_to_h36m(track["landmarks"][..., :2], vis)
        names = [str(n) for n in gt["h36m17_names"]] if "h36m17_names" in gt else None
        if names is not None and len(names) != len(H36M_NAMES):
            raise SystemExit(f"{folder.name}: unexpected h36m17 layout {names}")
        n = min(len(kp), len(gt["h36m17"]))
        clips.append(
            FitClip(folder.name, gt["h36m17"][:n].astype(np.float64), gt["K"].astype(np.float64), kp[:n], conf[:n])
        )
    model = fit_noise(clips, VISIBILITY_THRESHOLD)
    args.out.write_text(model.to_json() + "\n", encoding="utf-8")
    print(f"wrote {args.out} from {len(clips)} clips")
    for j, name in enumerate(H36M_NAMES):
        print(
            f"{name:15s} offset cm {np.round(model.offsets[j] * 100, 1)}  sigma mm "
            f"{np.round(model.sigma[j] * 1000, 1)}  "
            f"rho {np.round(model.rho[j], 2)}  gross "
            f"{model.outlier_rate[j]:.3f}/{model.outlier_scale[j] * 1000:.0f}mm  "
            f"low-vis {model.dropout_rate[j]:.3f} x{model.dropout_length[j]:.1f}"
        )


if __name__ == "__main__":
    main()
