"""Fit the offsets from CMU's joint definitions to anatomical ones → mocap_cli/training/joint_definitions.json.

usage: python scripts/fit_joint_definitions.py --cmu /tmp/cmu_asfamc [--synthetic ../shared/data/synthetic]
           [--out mocap_cli/training/joint_definitions.json]

Each rendered clip drives an Anny body with a CMU trial (gt.npz ``source``, ``cmu_frames_120fps``), and its ground
truth is that body's joints. Per clip: the trial's CMU joints (``training.cmu``, every 4th frame as rendered) are
re-proportioned onto the clip's own segment lengths (``proportions.reproportion``); what is left between them and
the ground truth is where each skeleton puts its joints. The offset of each moved joint (``proportions.redefine``)
is the mean of that difference in the body's frame over all frames of all clips. The trials are read only here,
to compare the skeletons: ``mocap train`` never loads them (``cmu.load_trial`` refuses).

Prints, per clip, the Procrustes error of the 12 limb joints (a perfect lifter's floor) with CMU's own joints,
after re-proportioning, after the fitted offsets, and with the offsets fitted on the other clips only.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from mocap_cli.capture.keypoints import H36M
from mocap_cli.core.alignment import procrustes_errors
from mocap_cli.training import cmu
from mocap_cli.training.proportions import (
    CHEST_FRAME_JOINTS,
    DEFINITIONS_FILE,
    PELVIS_FRAME_JOINTS,
    body_frames,
    redefine,
    reproportion,
    segment_lengths,
)

SHARED = Path(os.environ.get("MOCAP_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
LIMBS = [H36M[f"{s}_{p}"] for s in ("left", "right") for p in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")]


def procrustes_mm(ours: np.ndarray, truth: np.ndarray) -> float:
    """Mean per-frame similarity-aligned error of the limb joints, mm."""
    return 1000 * float(procrustes_errors(ours[:, LIMBS], truth[:, LIMBS]).mean())


def trial_behind_clip(folder: Path, cmu_root: Path) -> tuple[np.ndarray, np.ndarray]:
    """The CMU trial a rendered clip was made from, as H36M joints on the rendered frames (every 4th of its
    120 fps; as long as the trial allows), and the clip's ground truth H36M joints in the same world, (F, 17, 3)."""
    gt = np.load(folder / "gt.npz")
    trial = str(gt["source"]).split()[-1]
    subject = trial.split("_")[0]
    start, end = (int(v) for v in gt["cmu_frames_120fps"])
    amc = cmu_root / subject / f"{trial}.amc"
    ours = cmu.h36m_joints(cmu.world_joints(cmu.parse_asf(amc.parent / f"{subject}.asf"), cmu.parse_amc(amc)))
    truth = np.einsum("fba,fjb->fja", gt["R"], gt["h36m17"] - gt["t"][:, None])  # camera → world
    return ours[start:end:4], truth


def clip_pair(folder: Path, cmu_root: Path) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """(name, CMU joints, ground truth, CMU joints re-proportioned), all root-relative world (T, 17, 3)."""
    ours, truth = trial_behind_clip(folder, cmu_root)
    n = min(len(ours), len(truth))
    ours, truth = ours[:n].astype(np.float64), truth[:n]
    ours, truth = ours - ours[:, :1], truth - truth[:, :1]
    return folder.name, ours, truth, reproportion(ours, segment_lengths(truth).mean(0))


def fit(pairs: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
    diffs: dict[str, list[np.ndarray]] = {n: [] for n in PELVIS_FRAME_JOINTS + CHEST_FRAME_JOINTS}
    for _, _, truth, moved in pairs:
        pelvis, chest = body_frames(moved)
        for name, rows in diffs.items():
            frame = pelvis if name in PELVIS_FRAME_JOINTS else chest
            rows.append(np.einsum("fji,fj->fi", frame, truth[:, H36M[name]] - moved[:, H36M[name]]))
    return {n: np.concatenate(rows).mean(0) for n, rows in diffs.items()}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cmu", type=Path, required=True, help="the unpacked cmu_asfamc folder")
    ap.add_argument("--synthetic", type=Path, default=SHARED / "data" / "synthetic")
    ap.add_argument("--out", type=Path, default=DEFINITIONS_FILE)
    args = ap.parse_args()
    folders = sorted(p for p in args.synthetic.iterdir() if (p / "gt.npz").is_file())
    pairs = [clip_pair(f, args.cmu) for f in folders]
    offsets = fit(pairs)
    print("| clip | CMU joints | re-proportioned | + offsets | + offsets fitted without the clip |")
    print("|---|---|---|---|---|")
    for i, (name, ours, truth, moved) in enumerate(pairs):
        others = fit(pairs[:i] + pairs[i + 1 :])
        floors = [ours, moved, redefine(moved, offsets), redefine(moved, others)]
        print(f"| {name} | " + " | ".join(f"{procrustes_mm(x, truth):.1f}" for x in floors) + " |")
    args.out.write_text(
        json.dumps(
            {
                "source": "scripts/fit_joint_definitions.py on " + ", ".join(f.name for f in folders),
                "frames": "offsets (metres) in the pelvis frame (spine, thorax) or chest frame (shoulders, head) "
                "of proportions.body_frames: x towards the body's left, y up, z forward",
                "offsets_m": {n: [round(float(v), 4) for v in o] for n, o in offsets.items()},
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
