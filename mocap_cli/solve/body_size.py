"""A body's absolute size: the one thing a single camera cannot see, so it is either assumed or given.

A tall person far away and a short one close by give the same image (perspective is unchanged when the whole
scene is scaled about the camera), yet the size sets the distance to the camera, the length of the travel and the
height of every jump. Each model assumes one. MediaPipe's landmarks carry an adult size. A lifter sees normalised
2D keypoints; the shipped network guesses a size from body proportions (its size moves by under 1 % when its 2D
input is zoomed by ±40 %), which its simulated training keypoints carry and MediaPipe's real landmarks apparently
do not: on the nine rendered clips its guesses did not follow the performers' sizes (limb lengths 7 % off on
average, 17 % too big on the 1.60 m dancer and 19 % too small on the 1.91 m player). The mean of the bodies it was
trained on (recorded with the weights by ``mocap train mixste`` as ``BODY_SIZE_KEY``) errs less (6 %), so the lifter
adapter scales each clip's lifted pose to that size; weights without the record (the authors' checkpoints, trained
on Human3.6M's seven subjects) keep their own.

A user who knows the performer's height gives it (``--height``): ``limb_size_for_height`` turns a stature into a
limb size with a line fitted on the 64 adult Anny bodies the lifter trains on (``SAMPLED_BODIES``, statures
1.45-2.03 m; it predicts the nine rendered performers' limb sizes within 2 %), and the camera-frame joints are
scaled about the camera to it (``posing.motion_from_camera_joints``), which leaves what the camera saw unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import numpy as np

from mocap_cli.capture.keypoints import H36M

# The eight limb bones: upper and lower legs and arms. Their summed length is the size measure (the trunk's
# joints are defined differently by each source, the limbs' are not). H36M-17 and SMPL-24 name them alike.
LIMB_BONES: tuple[tuple[str, str], ...] = tuple(
    (f"{side}_{a}", f"{side}_{b}")
    for side in ("left", "right")
    for a, b in (("hip", "knee"), ("knee", "ankle"), ("shoulder", "elbow"), ("elbow", "wrist"))
)
# The metadata key of ``mocap train mixste``'s weights that records the training bodies' mean size.
BODY_SIZE_KEY = "body_size_m"
# Adult Anny bodies (segment lengths and stature) sampled by scripts/sample_body_proportions.py.
SAMPLED_BODIES = Path(__file__).parents[1] / "body" / "body_proportions.json"
# ``--height`` range (metres): the line is fitted on adults; below 1 m it would be a guess about toddlers.
HEIGHT_MIN_M = 1.0
HEIGHT_MAX_M = 2.5


def limb_size(joints: np.ndarray, index: Mapping[str, int] = H36M) -> np.ndarray:
    """Summed median limb-bone length (metres) of poses (..., F, J, 3) over their F frames → (...); ``index``
    names the joints (H36M-17 by default, ``skeleton.JOINT_INDEX`` for SMPL-24)."""
    return sum(
        np.median(np.linalg.norm(joints[..., index[a], :] - joints[..., index[b], :], axis=-1), axis=-1)
        for a, b in LIMB_BONES
    )


def at_body_size(joints: np.ndarray, size: float, index: Mapping[str, int] = H36M) -> np.ndarray:
    """Poses (F, J, 3) scaled about the coordinate origin (the root of root-relative poses, the camera of
    camera-frame joints) so that their ``limb_size`` is ``size`` metres; unchanged when they have no size."""
    own = float(limb_size(joints, index))
    if not (np.isfinite(own) and own > 0):
        return joints
    return joints * (size / own)


@cache
def _height_line() -> tuple[float, float]:
    """Least-squares (slope, intercept) of limb size against stature over the sampled bodies."""
    bodies = json.loads(SAMPLED_BODIES.read_text())["bodies"]
    stature = np.array([b["stature"] for b in bodies])
    limbs = np.array([sum(b["lengths"][f"{a}-{c}"] for a, c in LIMB_BONES) for b in bodies])
    slope, intercept = np.polyfit(stature, limbs, 1)
    return float(slope), float(intercept)


def limb_size_for_height(height: float) -> float:
    """The ``limb_size`` (metres) of an adult ``height`` metres tall (heel to crown, standing)."""
    slope, intercept = _height_line()
    return slope * height + intercept
