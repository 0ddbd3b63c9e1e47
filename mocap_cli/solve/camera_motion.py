"""How the filming camera turns during a clip, from the background, so a panning or orbiting camera does not
turn the body with it.

Every model sees the person relative to the camera. When the camera turns (a phone panning to follow a
dancer, an orbit around her), the body's heading in our world frame turns with it, although the person did
not turn: on the orbiting synthetic clip dance_05_02 the body drifted ~100° against the ground truth over 5 s.
We track corners in the background (outside the person's box) with pyramidal Lucas–Kanade flow and, every
``KEY_SECONDS``, fit the camera's rotation between two key frames:
  * nothing moved (median flow < ``STATIC_PIXELS``): the camera is still (the common case; identity);
  * a pure rotation explains the flow (``PURE_ROTATION_PIXELS``): a panning/tilting camera, fitted by a
    trimmed Kabsch fit of the bearing vectors;
  * otherwise the camera also moves (orbit, dolly): the rotation comes from the essential matrix.
Rotations between key frames are slerped. Steps with too few background corners, or an implausible turn,
count as a still camera, so a clip without usable background keeps today's behaviour.
The intrinsics are the pipeline's assumed pinhole (``camera.Pinhole``), so the angles carry its field-of-view
error (a few percent).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from mocap_cli.capture.video import Frame, close_frames
from mocap_cli.core.rotations import quat_from_matrix, quat_slerp, quat_to_matrix
from mocap_cli.solve.camera import Pinhole

KEY_SECONDS = 1.0 / 6.0
STATIC_PIXELS = 0.5  # median background flow between key frames, at the analysis size
PURE_ROTATION_PIXELS = 1.0  # median residual of the pure-rotation fit
MIN_CORNERS = 12
MAX_KEY_TURN_DEGREES = 30.0  # a turn larger than this between key frames (~1/6 s) is a failed fit
ANALYSIS_WIDTH = 640  # frames are downscaled to this width (if wider) before tracking


@dataclass(frozen=True)
class CameraMotion:
    """rotations: (F, 3, 3) maps camera axes at frame f to the camera axes of frame 0 (OpenCV axes);
    panning: (F,) True where the camera turned without moving (a pure rotation explains the background)."""

    rotations: np.ndarray
    panning: np.ndarray

    @property
    def moving(self) -> bool:
        return bool(np.any(np.abs(self.rotations - np.eye(3)) > 1e-9))

    @classmethod
    def still(cls, num_frames: int) -> CameraMotion:
        return cls(np.broadcast_to(np.eye(3), (num_frames, 3, 3)).copy(), np.ones(num_frames, dtype=bool))


def _gray(image: np.ndarray, scale: float) -> np.ndarray:
    import cv2

    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if scale != 1.0:
        gray = cv2.resize(gray, (round(gray.shape[1] * scale), round(gray.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    return gray


def _background_mask(shape: tuple[int, int], boxes: list[np.ndarray]) -> np.ndarray:
    """255 outside every (padded) person box x0, y0, x1, y1 (analysis pixels); NaN boxes are ignored."""
    mask = np.full(shape, 255, np.uint8)
    for box in boxes:
        if not np.all(np.isfinite(box)):
            continue
        w, h = box[2] - box[0], box[3] - box[1]
        # Pad for limbs beyond the landmarks and the shadow at the feet.
        x0, y0 = int(max(box[0] - 0.2 * w, 0)), int(max(box[1] - 0.1 * h, 0))
        x1, y1 = int(max(box[2] + 0.2 * w, 0)), int(max(box[3] + 0.15 * h, 0))
        mask[y0:y1, x0:x1] = 0
    return mask


def _bearings(points: np.ndarray, k_inv: np.ndarray) -> np.ndarray:
    """Unit viewing rays (N, 3) of pixels (N, 2)."""
    rays = np.c_[points, np.ones(len(points))] @ k_inv.T
    return rays / np.linalg.norm(rays, axis=1, keepdims=True)


def pure_rotation(b0: np.ndarray, b1: np.ndarray, focal: float) -> tuple[np.ndarray, float]:
    """Rotation R (3, 3) with b1 ≈ R b0 for unit rays (N, 3), trimmed of outliers (moving objects), and the
    median residual in pixels."""
    keep = np.ones(len(b0), dtype=bool)
    rot, residual = np.eye(3), np.zeros(len(b0))
    for _ in range(5):
        u, _, vt = np.linalg.svd(b0[keep].T @ b1[keep])
        fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
        rot = (u @ fix @ vt).T
        residual = np.linalg.norm(b0 @ rot.T - b1, axis=1) * focal
        keep = residual <= max(3.0 * float(np.median(residual)), 0.5)
        if keep.sum() < MIN_CORNERS:
            break
    return rot, float(np.median(residual))


def _key_rotation(p0: np.ndarray, p1: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, bool]:
    """Rotation (3, 3) taking camera axes at the later key frame to those of the earlier one, and whether it is
    a pure rotation, from tracked corners p0 → p1 (N, 2)."""
    import cv2

    if np.median(np.linalg.norm(p1 - p0, axis=1)) < STATIC_PIXELS:
        return np.eye(3), True
    k_inv = np.linalg.inv(k)
    rot, residual = pure_rotation(_bearings(p0, k_inv), _bearings(p1, k_inv), k[0, 0])
    pure = residual < PURE_ROTATION_PIXELS
    if not pure:
        essential, inliers = cv2.findEssentialMat(p0, p1, k, cv2.RANSAC, 0.999, 1.0)
        if essential is None or essential.shape != (3, 3) or int(inliers.sum()) < MIN_CORNERS:
            return np.eye(3), True
        _, rot, _, _ = cv2.recoverPose(essential, p0, p1, k, mask=inliers)
    angle = np.degrees(np.arccos(np.clip((np.trace(rot) - 1.0) / 2.0, -1.0, 1.0)))
    if angle > MAX_KEY_TURN_DEGREES:
        return np.eye(3), True
    # rot maps rays of the earlier key frame into the later camera; its transpose goes back.
    return rot.T, pure


def estimate_camera_motion(frames: Iterable[Frame], boxes: np.ndarray, camera: Pinhole, fps: float) -> CameraMotion:
    """The camera's rotation over a clip from its frames (the same ones, in order, as the track) and the
    person's boxes (F, 4) x0, y0, x1, y1 in pixels (NaN where the person is not found). Streams the frames.
    """
    import cv2

    num_frames = len(boxes)
    step = max(1, round(KEY_SECONDS * fps))
    keys: list[int] = [0]
    key_rotations: list[np.ndarray] = [np.eye(3)]  # camera at key i → camera at key i-1
    key_pure: list[bool] = [True]
    prev: np.ndarray | None = None
    corners: np.ndarray | None = None
    tracked: np.ndarray | None = None
    alive: np.ndarray | None = None
    scale = 1.0
    k = np.eye(3)
    try:
        for i, frame in enumerate(frames):
            if i >= num_frames:
                break
            if prev is None:
                scale = min(1.0, ANALYSIS_WIDTH / frame.image.shape[1])
                k = np.array([[camera.focal * scale, 0, (camera.cx + 0.5) * scale - 0.5],
                              [0, camera.focal * scale, (camera.cy + 0.5) * scale - 0.5], [0, 0, 1.0]])
            gray = _gray(frame.image, scale)
            if prev is not None and tracked is not None and alive is not None:
                tracked, status, _ = cv2.calcOpticalFlowPyrLK(prev, gray, tracked, None, winSize=(21, 21), maxLevel=3)
                alive &= status[:, 0] == 1
            if prev is not None and (i - keys[-1] == step or i == num_frames - 1):
                rot, pure = np.eye(3), True
                if corners is not None and tracked is not None and alive is not None:
                    inside = _background_mask(gray.shape, [boxes[i] * scale])
                    ok = alive.copy()
                    xy = np.round(tracked[:, 0]).astype(int)
                    on_image = (xy[:, 0] >= 0) & (xy[:, 1] >= 0) & (xy[:, 0] < gray.shape[1]) & (xy[:, 1] < gray.shape[0])
                    ok &= on_image
                    ok[ok] &= inside[xy[ok, 1], xy[ok, 0]] > 0
                    if ok.sum() >= MIN_CORNERS:
                        rot, pure = _key_rotation(corners[ok, 0].astype(np.float64), tracked[ok, 0].astype(np.float64), k)
                keys.append(i)
                key_rotations.append(rot)
                key_pure.append(pure)
                corners = None
            if i == keys[-1] and i < num_frames - 1:
                # Corners are found on key frames only, so every fit spans exactly one key step.
                found = cv2.goodFeaturesToTrack(gray, 400, 0.01, 8, mask=_background_mask(gray.shape, [boxes[i] * scale]))
                corners = found if found is not None and len(found) >= MIN_CORNERS else None
                tracked = None if corners is None else corners.copy()
                alive = None if corners is None else np.ones(len(corners), dtype=bool)
            prev = gray
    finally:
        close_frames(frames)
    return _interpolate(keys, key_rotations, key_pure, num_frames)


def _interpolate(keys: list[int], key_rotations: list[np.ndarray], key_pure: list[bool], num_frames: int) -> CameraMotion:
    """Chain key-to-key rotations into rotations to frame 0 and slerp them over the frames between keys."""
    if len(keys) < 2 or all(np.allclose(r, np.eye(3)) for r in key_rotations):
        return CameraMotion.still(num_frames)
    chained = [np.eye(3)]
    for rot in key_rotations[1:]:
        chained.append(chained[-1] @ rot)
    quats = quat_from_matrix(np.stack(chained))
    rotations = np.empty((num_frames, 3, 3))
    panning = np.ones(num_frames, dtype=bool)
    for a in range(len(keys) - 1):
        i0, i1 = keys[a], keys[a + 1]
        t = (np.arange(i0, i1 + 1) - i0) / max(i1 - i0, 1)
        q = quat_slerp(quats[a][None], quats[a + 1][None], t[:, None])
        rotations[i0 : i1 + 1] = quat_to_matrix(q)
        panning[i0 + 1 : i1 + 1] = key_pure[a + 1]
    last = keys[-1]
    rotations[last:] = rotations[last]
    return CameraMotion(rotations, panning)
