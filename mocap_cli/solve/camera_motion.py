"""How the filming camera turns during a clip, from the background, so a panning or orbiting camera does not
turn the body with it.

Every model sees the person relative to the camera. When the camera turns (a phone panning to follow a
dancer, an orbit around her), the body's heading in our world frame turns with it, although the person did
not turn: on the orbiting synthetic clip dance_05_02 the body drifted ~100° against the ground truth over 5 s.
We track corners in the background (outside the person's box) with pyramidal Lucas–Kanade flow from one key
frame to the next, ``KEY_SECONDS`` apart, and fit the camera's rotation between the two key frames:
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
from mocap_cli.core.rotations import (
    quat_from_matrix,
    quat_from_rotvec,
    quat_slerp,
    quat_to_matrix,
    quat_to_rotvec,
)
from mocap_cli.solve.camera import Pinhole

KEY_SECONDS = 1.0 / 3.0
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
        gray = cv2.resize(
            gray, (round(gray.shape[1] * scale), round(gray.shape[0] * scale)), interpolation=cv2.INTER_AREA
        )
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
        cv2.setRNGSeed(0)  # RANSAC's samples: the same clip gives the same camera every run
        essential, inliers = cv2.findEssentialMat(p0, p1, k, cv2.RANSAC, 0.999, 1.0)
        if essential is None or essential.shape != (3, 3) or int(inliers.sum()) < MIN_CORNERS:
            return np.eye(3), True
        _, rot, _, _ = cv2.recoverPose(essential, p0, p1, k, mask=inliers)
    angle = np.degrees(np.arccos(np.clip((np.trace(rot) - 1.0) / 2.0, -1.0, 1.0)))
    if angle > MAX_KEY_TURN_DEGREES:
        return np.eye(3), True
    # rot maps rays of the earlier key frame into the later camera; its transpose goes back.
    return rot.T, pure


@dataclass(frozen=True)
class KeyPair:
    """Background corners tracked from key frame ``first`` to key frame ``last``: ``before``/``after`` (N, 2)
    pixel positions at the analysis size, ``scale`` = analysis size / frame size."""

    first: int
    last: int
    before: np.ndarray
    after: np.ndarray
    scale: float


class BackgroundTracker:
    """Fed the clip's frames one at a time (with the person's box in each), it tracks background corners
    from one key frame to the next, ``KEY_SECONDS`` apart, in one pyramidal Lucas–Kanade jump checked forwards
    and backwards; frames between keys are not even converted. Cheap next to detection, so the detector runs
    it on the frames it already decoded; the geometry (which needs the camera's focal length) is
    ``camera_motion_from_pairs``."""

    def __init__(self, fps: float) -> None:
        self.step = max(1, round(KEY_SECONDS * fps))
        self.pairs: list[KeyPair] = []
        self.num_frames = 0
        self._key = 0
        self._scale = 1.0
        self._key_gray: np.ndarray | None = None
        self._corners: np.ndarray | None = None
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    def add(self, image: np.ndarray, box: np.ndarray) -> None:
        """image: RGB (H, W, 3); box: the person's x0, y0, x1, y1 in pixels (NaN when not found)."""
        import cv2

        i = self.num_frames
        self.num_frames += 1
        if i == 0:
            self._scale = min(1.0, ANALYSIS_WIDTH / image.shape[1])
        elif i - self._key != self.step:
            self._last = (image, box)
            return
        gray = _gray(image, self._scale)
        scaled_box = np.asarray(box, dtype=np.float64) * self._scale
        if i > 0:
            self._close(i, gray, scaled_box)
        found = cv2.goodFeaturesToTrack(gray, 300, 0.01, 8, mask=_background_mask(gray.shape, [scaled_box]))
        self._corners = found if found is not None and len(found) >= MIN_CORNERS else None
        self._key, self._key_gray, self._last = i, gray, None

    def finish(self) -> list[KeyPair]:
        """Close the last, shorter step at the last frame; returns every key pair."""
        if self._last is not None:
            image, box = self._last
            self._close(self.num_frames - 1, _gray(image, self._scale), np.asarray(box, dtype=np.float64) * self._scale)
            self._last = None
        return self.pairs

    def _close(self, i: int, gray: np.ndarray, box: np.ndarray) -> None:
        import cv2

        if self._corners is None or self._key_gray is None:
            return
        lk = {"winSize": (21, 21), "maxLevel": 4}
        ahead, status, _ = cv2.calcOpticalFlowPyrLK(self._key_gray, gray, self._corners, None, **lk)
        back, status_back, _ = cv2.calcOpticalFlowPyrLK(gray, self._key_gray, ahead, None, **lk)
        ok = (status[:, 0] == 1) & (status_back[:, 0] == 1)
        ok &= np.linalg.norm(back[:, 0] - self._corners[:, 0], axis=1) < 0.5  # consistent both ways
        xy = np.round(ahead[:, 0]).astype(int)
        ok &= (xy[:, 0] >= 0) & (xy[:, 1] >= 0) & (xy[:, 0] < gray.shape[1]) & (xy[:, 1] < gray.shape[0])
        inside = _background_mask(gray.shape, [box])
        ok[ok] &= inside[xy[ok, 1], xy[ok, 0]] > 0
        if ok.sum() >= MIN_CORNERS:
            self.pairs.append(
                KeyPair(
                    self._key, i, self._corners[ok, 0].astype(np.float64), ahead[ok, 0].astype(np.float64), self._scale
                )
            )


def camera_motion_from_pairs(pairs: list[KeyPair], num_frames: int, camera: Pinhole) -> CameraMotion:
    """The camera's rotation (see ``CameraMotion``) from tracked key pairs, with the pinhole ``camera`` (full
    frame pixels). Key steps without a pair (too little background) count as a still camera."""
    keys: list[int] = [0]
    key_rotations: list[np.ndarray] = [np.eye(3)]  # camera at key i → camera at key i-1
    key_pure: list[bool] = [True]
    for pair in sorted(pairs, key=lambda p: p.first):
        if pair.first != keys[-1]:
            keys.append(pair.first)
            key_rotations.append(np.eye(3))
            key_pure.append(True)
        s = pair.scale
        k = np.array(
            [
                [camera.focal * s, 0, (camera.cx + 0.5) * s - 0.5],
                [0, camera.focal * s, (camera.cy + 0.5) * s - 0.5],
                [0, 0, 1.0],
            ]
        )
        rot, pure = _key_rotation(pair.before, pair.after, k)
        keys.append(pair.last)
        key_rotations.append(rot)
        key_pure.append(pure)
    keys_clipped = [min(k, num_frames - 1) for k in keys]
    return _interpolate(keys_clipped, steady_turns(keys_clipped, key_rotations), key_pure, num_frames)


def steady_turns(keys: list[int], key_rotations: list[np.ndarray]) -> list[np.ndarray]:
    """Key-to-key rotations with each step's turn rate replaced by the median of its own and its neighbours'.

    A camera's turn rate changes smoothly, but one essential-matrix fit over a short baseline can mistake
    sideways travel for turning (±1–4° on dance_05_02's 6.5° steps); chained over a clip such errors add up."""
    if len(keys) < 4:
        return key_rotations
    spans = np.maximum(np.diff(keys), 1).astype(np.float64)
    rates = quat_to_rotvec(quat_from_matrix(np.stack(key_rotations[1:]))) / spans[:, None]
    padded = np.concatenate([rates[:1], rates, rates[-1:]])
    steady = np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)
    return [key_rotations[0], *quat_to_matrix(quat_from_rotvec(steady * spans[:, None]))]


def estimate_camera_motion(frames: Iterable[Frame], boxes: np.ndarray, camera: Pinhole, fps: float) -> CameraMotion:
    """The camera's rotation over a clip from its frames (the same ones, in order, as the track) and the
    person's boxes (F, 4) x0, y0, x1, y1 in pixels (NaN where the person is not found). Streams the frames.
    """
    tracker = BackgroundTracker(fps)
    try:
        for i, frame in enumerate(frames):
            if i >= len(boxes):
                break
            tracker.add(frame.image, boxes[i])
    finally:
        close_frames(frames)
    return camera_motion_from_pairs(tracker.finish(), len(boxes), camera)


def _interpolate(
    keys: list[int], key_rotations: list[np.ndarray], key_pure: list[bool], num_frames: int
) -> CameraMotion:
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
