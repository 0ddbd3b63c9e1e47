"""Building the canonical 24 joints (SMPL order) from a detector's or lifter's joints: the pieces every
joint-position model shares.

The trunk rule (pelvis, spine1-3, neck, collars) is defined from the hip and shoulder midpoints, so the
MediaPipe model and the keypoint lifters place those joints the same way. MediaPipe's foot and hand
landmarks give the toe/knuckle joints and the IK twist hints (see ``ik.TWIST_HINTS``).
"""

from __future__ import annotations

import numpy as np

from mocap_cli.capture.keypoints import MP

# Fractions along the pelvis → neck line of the canonical skeleton's spine joints at rest.
SPINE_FRACTIONS = {"spine1": 0.216, "spine2": 0.47, "spine3": 0.578}
# Canonical offsets used to place joints no detector has (metres, default skeleton).
PELVIS_ABOVE_HIPS = 0.065
NECK_ABOVE_SHOULDERS = 0.07
COLLAR_FRACTION = 0.37  # collar sits this far from the shoulder midpoint towards each shoulder
TOE_FRACTION = 0.75  # the SMPL "foot" (toes) joint: this far from the heel to the toe tip

LIMB_PARTS = ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def trunk_and_limbs(limbs: dict[str, np.ndarray], head: np.ndarray) -> dict[str, np.ndarray]:
    """Every canonical joint except the feet and hands, from the 12 limb joints (``left_hip`` ... ``right_wrist``,
    (F, 3) each) and a head point (F, 3).

    The pelvis lies ``PELVIS_ABOVE_HIPS`` above the hip midpoint along the trunk (hip midpoint → shoulder
    midpoint); the neck ``NECK_ABOVE_SHOULDERS`` above the shoulder midpoint; spine1-3 on the pelvis → neck
    line at the canonical rest fractions; each collar ``COLLAR_FRACTION`` of the way from the shoulder
    midpoint to its shoulder."""
    mid_hip = 0.5 * (limbs["left_hip"] + limbs["right_hip"])
    mid_sh = 0.5 * (limbs["left_shoulder"] + limbs["right_shoulder"])
    up = unit(mid_sh - mid_hip)
    pelvis = mid_hip + PELVIS_ABOVE_HIPS * up
    neck = mid_sh + NECK_ABOVE_SHOULDERS * up
    joints: dict[str, np.ndarray] = {"pelvis": pelvis, "neck": neck, "head": head}
    for name, frac in SPINE_FRACTIONS.items():
        joints[name] = pelvis + frac * (neck - pelvis)
    for side in ("left", "right"):
        for part in LIMB_PARTS:
            joints[f"{side}_{part}"] = limbs[f"{side}_{part}"]
        joints[f"{side}_collar"] = mid_sh + COLLAR_FRACTION * (limbs[f"{side}_shoulder"] - mid_sh)
    return joints


def mediapipe_extremities(p: np.ndarray) -> dict[str, np.ndarray]:
    """The toe joints (``left_foot``/``right_foot``: ``TOE_FRACTION`` from heel to toe tip) and knuckle joints
    (``left_hand``/``right_hand``: index/pinky knuckle midpoint) from MediaPipe landmarks (F, 33, 3)."""
    out = {}
    for side in ("left", "right"):
        heel, toe = p[:, MP[f"{side}_heel"]], p[:, MP[f"{side}_foot_index"]]
        out[f"{side}_foot"] = heel + TOE_FRACTION * (toe - heel)
        out[f"{side}_hand"] = 0.5 * (p[:, MP[f"{side}_index"]] + p[:, MP[f"{side}_pinky"]])
    return out


def mediapipe_twist_hints(p: np.ndarray) -> dict[str, np.ndarray]:
    """IK twist hints (keys of ``ik.TWIST_HINTS``, (F, 3) vectors in the landmarks' frame) from MediaPipe
    landmarks (F, 33, 3): the ear line (neck, head), mid-ears → nose (head), the foot's sole normal
    (ankles) and the knuckle line (wrists)."""
    ears = 0.5 * (p[:, MP["left_ear"]] + p[:, MP["right_ear"]])
    hints = {
        "neck": p[:, MP["left_ear"]] - p[:, MP["right_ear"]],
        "head_lateral": p[:, MP["left_ear"]] - p[:, MP["right_ear"]],
        "head": p[:, MP["nose"]] - ears,
    }
    for side in ("left", "right"):
        heel, toe, ankle = p[:, MP[f"{side}_heel"]], p[:, MP[f"{side}_foot_index"]], p[:, MP[f"{side}_ankle"]]
        hints[f"{side}_ankle"] = np.cross(toe - heel, ankle - heel)
        hints[f"{side}_wrist"] = p[:, MP[f"{side}_index"]] - p[:, MP[f"{side}_pinky"]]
    return hints
