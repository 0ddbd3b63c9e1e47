"""2D keypoint layouts and conversions between the detector (MediaPipe Pose) and the lifters (Human3.6M 17).

* ``MEDIAPIPE_NAMES``: the 33 MediaPipe Pose landmarks in index order.
* ``H36M_NAMES`` / ``H36M_PARENTS``: the 17-joint Human3.6M layout used by VideoPose3D, MixSTE and the Strided
  Transformer (left/right = the subject's own sides).
* ``mediapipe_to_h36m``: landmarks → H36M joints (documented per joint below).
* ``normalize_screen`` / ``denormalize_screen``: the authors' pixel normalisation (both axes divided by width).
* ``coco_to_h36m``: the Strided Transformer demo's COCO-17 → H36M conversion (for COCO detectors).
* ``fill_low_confidence``: replace unreliable joints by interpolation over time (kept for callers that want it;
  the lifters no longer use it on visibility, see ``lifter_input``).
* ``lifter_input``: the one conversion the lifter adapter and lifter training share: detector positions as they
  are, only true detection gaps (frames without the person, non-finite values) interpolated over time.

Why positions are fed as detected: the authors' demos (Strided Transformer ``demo/vis.py``, MixSTE's
VideoPose3D-style ``run.py`` input) feed the 2D detector's keypoints without any confidence handling. Replacing
joints below 0.5 visibility by interpolation held the last value at the ends, so thorax/neck/head (which take the
nose's and ears' visibility) froze at their last image position whenever the person turned away while the body
moved on. Measured on the 9 rendered clips (``benchmarks/lifter_input.py``): feeding positions is more accurate.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from mocap_cli.errors import MocapError

MEDIAPIPE_NAMES: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
MP = {name: i for i, name in enumerate(MEDIAPIPE_NAMES)}

H36M_NAMES: tuple[str, ...] = (
    "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle", "spine", "thorax",
    "neck_nose", "head", "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
)  # fmt: skip
H36M = {name: i for i, name in enumerate(H36M_NAMES)}
H36M_PARENTS: tuple[int, ...] = (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)
H36M_LEFT: tuple[int, ...] = (4, 5, 6, 11, 12, 13)
H36M_RIGHT: tuple[int, ...] = (1, 2, 3, 14, 15, 16)

# H36M joints that are MediaPipe landmarks as they are.
_DIRECT: dict[str, str] = {
    "right_hip": "right_hip", "right_knee": "right_knee", "right_ankle": "right_ankle",
    "left_hip": "left_hip", "left_knee": "left_knee", "left_ankle": "left_ankle",
    "left_shoulder": "left_shoulder", "left_elbow": "left_elbow", "left_wrist": "left_wrist",
    "right_shoulder": "right_shoulder", "right_elbow": "right_elbow", "right_wrist": "right_wrist",
}  # fmt: skip

# Derived joints. Spine and thorax follow the Strided Transformer demo (``demo/lib/preprocess.py``, the COCO →
# H36M rules of ``coco_to_h36m``): on the 9 rendered clips its rules are as good as the plain midpoints or
# slightly better (mean 2D error vs gt ``h36m17``: spine 6.16 vs 6.59 px, thorax 8.12 vs 8.27 px,
# benchmarks/lifter_input.py), and they are what the released lifters' demo feeds. Neck/nose and head keep our
# rules, measured better than the demo's (neck/nose 6.46 vs 7.59 px, head 12.99 vs 15.53 px):
# NECK_NOSE_FRACTION and HEAD_EXTENSION were chosen on the four Human3.6M ground-truth frames in
# shared/data/pose_gt/h36m (median errors, in torso lengths: neck/nose 0.02, head 0.04; the demo's 3/4 for
# neck/nose gives 0.045) and checked on the synthetic clips.
DerivedRule = Literal["strided_demo", "midpoints"]
DEFAULT_DERIVED_RULE: DerivedRule = "strided_demo"
THORAX_FRACTION = 1.0 / 3.0
NECK_NOSE_FRACTION = 0.85
HEAD_EXTENSION = 1.0 / 3.0
SPINE_PUSH = 2.0  # demo: spine.x += 2 (spine.x − mean(pelvis.x, thorax.x))
THORAX_DROP = 2.0 / 3.0  # demo: thorax.y −= ⅔ (mean eye y − nose y), i.e. lowered (eyes are above the nose)


def mediapipe_to_h36m(
    landmarks: np.ndarray, visibility: np.ndarray, *, rule: DerivedRule = DEFAULT_DERIVED_RULE
) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe Pose landmarks (F, 33, 2|3) + visibility (F, 33) → H36M joints (F, 17, 2|3) + confidence (F, 17).

    Works on pixels, normalised image coordinates or MediaPipe world landmarks alike (every rule is an affine
    combination of landmarks). With ``mid_hips``, ``mid_shoulders``, ``mid_ears``, ``mid_eyes`` the midpoints of
    the pairs:

    * hips, knees, ankles, shoulders, elbows, wrists: the landmark of the same name and side.
    * 0 pelvis = mid_hips. (MediaPipe's hips sit lower than Human3.6M's hip joints, by ~0.15 torso lengths on
      the H36M frames we measured; no correction is applied.)
    * 8 thorax (base of the neck) = mid_shoulders + (nose − mid_shoulders) / 3; ``rule="strided_demo"`` (default)
      then moves its y (the second channel) by −⅔ (mid_eyes.y − nose.y): lowered, as the Strided demo does.
    * 7 spine (mid torso) = midpoint of mid_hips and mid_shoulders; ``"strided_demo"`` then pushes its x
      outward: x += 2 (x − mean(pelvis.x, thorax.x)) with the thorax before lowering (the demo's order).
    * 9 neck/nose (H36M's joint between chin and nose) = mid_shoulders + 0.85 (nose − mid_shoulders).
    * 10 head (top of the head) = mid_ears + (mid_ears − mid_shoulders) / 3: the ears continue the neck line
      upward, which stays stable when the face turns away (nose/eyes are then unreliable).

    ``rule="midpoints"`` is the former rule (no demo corrections). Confidence of a joint = the smallest
    visibility among the landmarks it is built from.
    """
    if rule not in ("strided_demo", "midpoints"):
        raise MocapError(f"Unknown H36M derived-joint rule {rule!r}; use 'strided_demo' or 'midpoints'.")
    lm = np.asarray(landmarks, dtype=np.float64)
    vis = np.asarray(visibility, dtype=np.float64)
    if lm.ndim != 3 or lm.shape[1] != 33 or lm.shape[2] not in (2, 3) or vis.shape != lm.shape[:2]:
        raise MocapError(
            f"MediaPipe landmarks must have shape (frames, 33, 2 or 3) with visibility (frames, 33), got {lm.shape} "
            f"and {vis.shape}."
        )

    def mid(a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
        return (lm[:, MP[a]] + lm[:, MP[b]]) / 2, np.minimum(vis[:, MP[a]], vis[:, MP[b]])

    hips, hips_c = mid("left_hip", "right_hip")
    shoulders, shoulders_c = mid("left_shoulder", "right_shoulder")
    ears, ears_c = mid("left_ear", "right_ear")
    eyes, eyes_c = mid("left_eye", "right_eye")
    nose, nose_c = lm[:, MP["nose"]], vis[:, MP["nose"]]

    out = np.empty((lm.shape[0], 17, lm.shape[2]))
    conf = np.empty((lm.shape[0], 17))
    for h36m_name, mp_name in _DIRECT.items():
        out[:, H36M[h36m_name]] = lm[:, MP[mp_name]]
        conf[:, H36M[h36m_name]] = vis[:, MP[mp_name]]
    thorax = shoulders + THORAX_FRACTION * (nose - shoulders)
    spine = (hips + shoulders) / 2
    thorax_c = np.minimum(shoulders_c, nose_c)
    spine_c = np.minimum(hips_c, shoulders_c)
    if rule == "strided_demo":
        spine = spine.copy()
        spine[:, 0] += SPINE_PUSH * (spine[:, 0] - (hips[:, 0] + thorax[:, 0]) / 2)
        thorax = thorax.copy()
        thorax[:, 1] -= THORAX_DROP * (eyes[:, 1] - nose[:, 1])
        spine_c = np.minimum(spine_c, nose_c)
        thorax_c = np.minimum(thorax_c, eyes_c)
    derived = {
        "pelvis": (hips, hips_c),
        "spine": (spine, spine_c),
        "thorax": (thorax, thorax_c),
        "neck_nose": (shoulders + NECK_NOSE_FRACTION * (nose - shoulders), np.minimum(shoulders_c, nose_c)),
        "head": (ears + HEAD_EXTENSION * (ears - shoulders), np.minimum(ears_c, shoulders_c)),
    }
    for name, (value, c) in derived.items():
        out[:, H36M[name]] = value
        conf[:, H36M[name]] = c
    return out, conf


def lifter_input(
    landmarks: np.ndarray, visibility: np.ndarray, detected: np.ndarray, *, rule: DerivedRule = DEFAULT_DERIVED_RULE
) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe track → the lifters' H36M-17 input: pixels (F, 17, 2) without gaps + confidence (F, 17).

    ``landmarks`` (F, 33, 2|3) pixels (NaN where there is no detection), ``visibility`` (F, 33), ``detected`` (F,).
    Positions are the detector's as they are, whatever their visibility (as the authors' demos feed them); only
    frames without a detection (or with non-finite values) are interpolated over time, the nearest detected
    value held before the first / after the last detection. Confidence is the visibility rule of
    ``mediapipe_to_h36m`` and 0 on undetected frames, for callers that weight joints (e.g. the camera fit).
    """
    detected = np.asarray(detected, dtype=bool)
    vis = np.where(detected[:, None], np.nan_to_num(np.asarray(visibility, dtype=np.float64)), 0.0)
    kp, conf = mediapipe_to_h36m(np.asarray(landmarks)[..., :2], vis, rule=rule)
    conf = np.where(detected[:, None], conf, 0.0)
    present = np.isfinite(kp).all(axis=-1) & detected[:, None]
    if not present.any():
        raise MocapError("No person was detected in any frame of the video; check that a person is fully visible.")
    return fill_low_confidence(kp, present.astype(np.float64), 0.5), conf


def normalize_screen(kp: np.ndarray, width: float, height: float) -> np.ndarray:
    """Pixels (origin top-left, y down) → the lifters' input: ``u = x/w*2 − 1``, ``v = y/w*2 − h/w`` (float32).

    Both axes are divided by the width, so the aspect ratio is kept: x ∈ [0, w] → [−1, 1], y ∈ [0, h] →
    [−h/w, h/w]. Channels after the first two (if any) are passed through.
    """
    if width <= 0 or height <= 0:
        raise MocapError(f"The image size must be positive to normalise keypoints, got {width}x{height}.")
    out = np.array(kp, dtype=np.float64)
    out[..., 0] = out[..., 0] / width * 2 - 1
    out[..., 1] = out[..., 1] / width * 2 - height / width
    return out.astype(np.float32)


def denormalize_screen(kp: np.ndarray, width: float, height: float) -> np.ndarray:
    """Inverse of ``normalize_screen``: ``x = (u + 1) w / 2``, ``y = (v + h/w) w / 2`` (float64 pixels)."""
    if width <= 0 or height <= 0:
        raise MocapError(f"The image size must be positive to convert keypoints to pixels, got {width}x{height}.")
    out = np.array(kp, dtype=np.float64)
    out[..., 0] = (out[..., 0] + 1) * width / 2
    out[..., 1] = (out[..., 1] + height / width) * width / 2
    return out


def fill_low_confidence(kp: np.ndarray, conf: np.ndarray, threshold: float) -> np.ndarray:
    """Replace joints with confidence below ``threshold`` (or non-finite values) by linear interpolation in time.

    ``kp`` (F, J, D), ``conf`` (F, J). Per joint, each unreliable frame gets the linear interpolation between
    the nearest reliable frames before and after it; before the first / after the last reliable frame the
    nearest reliable value is held. A joint with no reliable frame at all keeps its values if they are all
    finite; otherwise the clip cannot be lifted and a ``MocapError`` is raised.
    """
    kp = np.asarray(kp, dtype=np.float64)
    conf = np.asarray(conf, dtype=np.float64)
    if kp.ndim != 3 or conf.shape != kp.shape[:2]:
        raise MocapError(
            f"Keypoints must be (frames, joints, dims) with confidence (frames, joints), got {kp.shape} and "
            f"{conf.shape}."
        )
    good = (conf >= threshold) & np.isfinite(kp).all(axis=-1)
    if not good.any():
        raise MocapError(
            "No keypoint in the clip is confident enough to use; check that a person is visible in the video."
        )
    out = kp.copy()
    frames = np.arange(kp.shape[0])
    for j in range(kp.shape[1]):
        ok = good[:, j]
        if ok.all():
            continue
        if not ok.any():
            if not np.isfinite(kp[:, j]).all():
                raise MocapError(
                    f"Joint {j} is never detected in the clip, so the clip cannot be lifted; use a clip where the "
                    "whole body is visible."
                )
            continue
        for d in range(kp.shape[2]):
            # np.interp holds the end values outside the known range, which is the edge behaviour we want.
            out[~ok, j, d] = np.interp(frames[~ok], frames[ok], kp[ok, j, d])
    return out


# COCO-17 keypoint k ← MediaPipe landmark COCO_FROM_MEDIAPIPE[k] (same points, COCO order; odd = left).
COCO_FROM_MEDIAPIPE: tuple[int, ...] = tuple(MP[n] for n in (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle",
    "right_ankle",
))  # fmt: skip


def mediapipe_to_coco(landmarks: np.ndarray) -> np.ndarray:
    """MediaPipe landmarks (F, 33, D) → the COCO-17 keypoints they contain (F, 17, D)."""
    lm = np.asarray(landmarks)
    if lm.ndim != 3 or lm.shape[1] != 33:
        raise MocapError(f"MediaPipe landmarks must have shape (frames, 33, channels), got {lm.shape}.")
    return lm[:, list(COCO_FROM_MEDIAPIPE)]


def coco_to_h36m(coco: np.ndarray) -> np.ndarray:
    """COCO-17 keypoints (F, 17, 2) → H36M (F, 17, 2) exactly as the Strided Transformer demo converts them.

    Float32 arithmetic in the demo's order (``demo/lib/preprocess.py``), including its empirical corrections
    (neck/nose pulled towards the shoulders, spine x pushed away from the pelvis–thorax line, thorax *lowered*
    by ⅔ of the nose-to-eye height: the eyes lie above the nose, so ``eyes.y − nose.y < 0`` and y grows downwards).
    """
    c = np.asarray(coco, dtype=np.float32)
    if c.ndim != 3 or c.shape[1:] != (17, 2):
        raise MocapError(f"COCO keypoints must have shape (frames, 17, 2), got {c.shape}.")
    h = np.zeros_like(c)
    for dst, src in {9: 0, 11: 5, 14: 6, 12: 7, 15: 8, 13: 9, 16: 10, 4: 11, 1: 12, 5: 13, 2: 14, 6: 15, 3: 16}.items():
        h[:, dst] = c[:, src]
    nose, eyes = c[:, 0], c[:, 1:3]
    h[:, 10, 0] = c[:, 1:5, 0].mean(axis=1)
    h[:, 10, 1] = (eyes[:, 0, 1] + eyes[:, 1, 1]) - nose[:, 1]
    shoulders = c[:, 5:7].mean(axis=1)
    h[:, 8] = shoulders + (nose - shoulders) / 3
    h[:, 0] = c[:, 11:13].mean(axis=1)
    h[:, 7] = c[:, [5, 6, 11, 12]].mean(axis=1)
    h[:, 9] -= (h[:, 9] - shoulders) / 4
    h[:, 7, 0] += 2 * (h[:, 7, 0] - h[:, [0, 8], 0].mean(axis=1))
    h[:, 8, 1] -= (eyes[:, :, 1].mean(axis=1) - nose[:, 1]) * 2 / 3
    return h
