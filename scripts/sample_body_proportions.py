"""Sample adult body proportions from the Anny body model → mocap_cli/body/body_proportions.json.

usage: python scripts/sample_body_proportions.py [--bodies 64] [--seed 0]
           [--out mocap_cli/body/body_proportions.json]

CMU's 14 subjects give the lifter only 14 sets of limb lengths (two of them make up two thirds of the
frames), so it learns their proportions instead of reading them from the 2D. ``mocap train mixste``
re-proportions each training window onto one of these bodies (``training.proportions``). Each body is a
random adult Anny phenotype (Anny's own semantics, every value uniform in its range below) in its rest pose;
its Human3.6M segment lengths are measured between the bone heads that define those joints (hips =
``upperleg01`` heads, knees = ``lowerleg01``, ankles = ``foot``, spine = ``spine02``, thorax = ``neck01``,
shoulders = ``upperarm01``, elbows = ``lowerarm01``, wrists = ``wrist``), and its stature is the rest mesh's
height (heel to crown; Anny is Z-up), which ``--height`` turns into a limb size (``solve.body_size``). Needs the
``body`` extra (anny).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mocap_cli.solve.body_size import SAMPLED_BODIES
from mocap_cli.training.proportions import SEGMENTS

PHENOTYPE_RANGES = {
    "gender": (0.0, 1.0),
    "age": (0.55, 0.95),
    "weight": (0.2, 0.8),
    "muscle": (0.2, 0.8),
    "height": (0.15, 0.65),
}
# H36M joint → the Anny bone whose head it is (the trunk joints that H36M places elsewhere are not segments).
BONE_OF = {
    "right_hip": "upperleg01.R", "right_knee": "lowerleg01.R", "right_ankle": "foot.R",
    "left_hip": "upperleg01.L", "left_knee": "lowerleg01.L", "left_ankle": "foot.L",
    "spine": "spine02", "thorax": "neck01",
    "left_shoulder": "upperarm01.L", "left_elbow": "lowerarm01.L", "left_wrist": "wrist.L",
    "right_shoulder": "upperarm01.R", "right_elbow": "lowerarm01.R", "right_wrist": "wrist.R",
}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bodies", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=SAMPLED_BODIES)
    args = ap.parse_args()
    import anny
    import torch

    model = anny.create_fullbody_model()
    labels = list(model.bone_labels)
    rng = np.random.default_rng(args.seed)
    bodies = []
    for _ in range(args.bodies):
        phenotype = {k: float(rng.uniform(*r)) for k, r in PHENOTYPE_RANGES.items()}
        with torch.no_grad():
            rest = model(phenotype_kwargs=phenotype, return_bone_ends=True)
        heads = rest["rest_bone_heads"][0].numpy()
        up = rest["rest_vertices"][0, :, 2].numpy()
        joint = {name: heads[labels.index(bone)].astype(np.float64) for name, bone in BONE_OF.items()}
        joint["pelvis"] = 0.5 * (joint["left_hip"] + joint["right_hip"])
        lengths = {f"{a}-{b}": round(float(np.linalg.norm(joint[b] - joint[a])), 5) for a, b in SEGMENTS}
        bodies.append(
            {
                "phenotype": {k: round(v, 4) for k, v in phenotype.items()},
                "stature": round(float(up.max() - up.min()), 5),
                "lengths": lengths,
            }
        )
        print(json.dumps(bodies[-1]))
    args.out.write_text(
        json.dumps(
            {
                "source": "Anny body model (NAVER, Apache-2.0), rest pose, scripts/sample_body_proportions.py "
                f"--bodies {args.bodies} --seed {args.seed}",
                "phenotype_ranges": PHENOTYPE_RANGES,
                "bodies": bodies,
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
