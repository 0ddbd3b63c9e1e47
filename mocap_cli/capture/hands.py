"""21 hand landmarks per hand per frame for the tracked person, from MediaPipe's bundled hand models.

Route (measured, see the hands note in CHANGELOG/README): the person's hands are found where the *pose* says
they are, not by searching the whole frame, so the right person's hands are used when several people are in
view and small hands (40-60 px in a full-body 720p shot) are seen at a useful resolution. Each frame, each
wrist with a visible pose gets a square, upright crop centred on the hand (from the pose's wrist, index and
pinky landmarks; side ``CROP_SCALE`` × the wrist-to-knuckle distance, smoothed over time so the crop does
not breathe). Each hand has its own MediaPipe ``solutions.hands`` graph (the bundled
``palm_detection_full`` + ``hand_landmark_full``) fed with its 224 px crop in tracking mode: while the crop
follows the wrist the hand stays put in it, so MediaPipe's landmark-to-ROI tracking keeps working and its
palm detector runs only when the hand is lost. (Measured first: both crops pasted into one 480×224 canvas
for a single graph call; the palm detector, which sees the canvas shrunk to 192 px, then missed one of two
side-on hands in every frame of the test render.)

The hand found in a crop is kept only when its wrist is within ``MAX_WRIST_SHIFT`` hand sizes of where the
pose puts it (so someone else's hand, or the other hand reaching into the crop, is rejected).

Outputs per frame and side (0 = the person's left hand, 1 = right, as the pose's ``left_wrist``): 21 image
landmarks (pixels, OpenCV convention as ``detect.Track2D``), MediaPipe's metric hand world landmarks
(metres, hand-centred, camera axes), MediaPipe's handedness (probability of the expected side), a confidence
(zero where unseen) and the hand's size in pixels. Memory is flat: frames are streamed, only landmarks kept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from mocap_cli.capture.detect import Track2D
from mocap_cli.capture.video import Frame, close_frames
from mocap_cli.errors import MocapError

NUM_HAND_LANDMARKS = 21
SIDES = ("left", "right")
# MediaPipe hand landmark order (wrist, then four per finger from the base): index in the 21.
HAND_LANDMARK_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc",
    "thumb_mcp",
    "thumb_ip",
    "thumb_tip",
    "index_mcp",
    "index_pip",
    "index_dip",
    "index_tip",
    "middle_mcp",
    "middle_pip",
    "middle_dip",
    "middle_tip",
    "ring_mcp",
    "ring_pip",
    "ring_dip",
    "ring_tip",
    "pinky_mcp",
    "pinky_pip",
    "pinky_dip",
    "pinky_tip",
)
# hand_landmark_full (1): the lite model (0) was 2.5x faster per call but lost a hand in 30% of the test
# render's frames and was no more accurate where it found one.
HAND_MODEL_COMPLEXITY = 1
CROP_PIXELS = 224  # each hand's crop (the landmark model's own input size)
CROP_SCALE = 4.2  # crop side / pose wrist-to-knuckle distance (covers a fully spread hand)
MIN_CROP_PX = 48.0  # never crop less than this (far-away hands are upscaled from at least this much)
CROP_SMOOTHING = 0.5  # weight of the new crop size in its running average
STRIDE_FPS = 20.0  # from this clip rate on, the hand models run on every second frame (speed; see hand_stride)
MAX_WRIST_SHIFT = 1.2  # in crop sides/CROP_SCALE (~ hand lengths): farther than this from the pose wrist = not ours
MIN_POSE_VISIBILITY = 0.3  # pose wrist visibility below which the hand is not looked for
_POSE = {"left": ("left_wrist", "left_index", "left_pinky"), "right": ("right_wrist", "right_index", "right_pinky")}
# MediaPipe labels handedness as seen in a mirrored (selfie) image: on camera images its "Left" is a right hand.
_MEDIAPIPE_LABEL = {"left": "Right", "right": "Left"}


@dataclass
class HandTrack:
    """The tracked person's two hands over F frames (index 0 = the person's left hand, 1 = right).

    landmarks: (F, 2, 21, 3) image landmarks: x, y pixels (OpenCV convention), z MediaPipe's relative depth in
        pixels (origin the wrist, smaller = nearer the camera); NaN where the hand was not seen.
    world: (F, 2, 21, 3) MediaPipe's metric hand landmarks, metres, origin near the hand's centre, camera axes
        (x right, y down, z away); NaN where not seen.
    confidence: (F, 2) in [0.5, 1] where seen: how sure MediaPipe's handedness classifier is (of either
        side); 0 where not seen.
    handedness: (F, 2) MediaPipe's probability that the hand is the side we expect (NaN where not seen). Below
        0.5 it took the hand for the other one, i.e. the palm for the back: its 2D is as good, its depth
        mirrored (see ``solve.hand_ik``). Our side comes from the pose and is trusted.
    size_px: (F, 2) hand size in pixels (wrist to middle knuckle, × 2); NaN where not seen.
    """

    landmarks: np.ndarray
    world: np.ndarray
    confidence: np.ndarray
    handedness: np.ndarray
    size_px: np.ndarray

    @property
    def num_frames(self) -> int:
        return int(self.confidence.shape[0])

    def seen(self, threshold: float = 0.5) -> np.ndarray:
        """(F, 2) True where the hand was seen with at least this confidence."""
        return self.confidence >= threshold


def _hands_estimator() -> object:
    try:
        import mediapipe as mp
    except ImportError as exc:
        raise MocapError("MediaPipe is not installed; install it with `pip install mediapipe==0.10.21`.") from exc
    return mp.solutions.hands.Hands(
        static_image_mode=False,
        max_num_hands=1,
        model_complexity=HAND_MODEL_COMPLEXITY,
        min_detection_confidence=0.5,
        min_tracking_confidence=0.5,
    )


def hand_crops(track: Track2D, frame: int, sizes: np.ndarray) -> list[tuple[np.ndarray, float] | None]:
    """Per side, the crop (centre (2,) pixels, side pixels) seeded by the pose, or None when the pose's wrist
    is not seen. ``sizes`` (2,) carries the smoothed crop sides between frames (updated in place; NaN = none)."""
    out: list[tuple[np.ndarray, float] | None] = []
    for s, side in enumerate(SIDES):
        wrist, index, pinky = (track.names.index(n) for n in _POSE[side])
        pts = track.landmarks[frame, [wrist, index, pinky], :2].astype(np.float64)
        vis = track.visibility[frame, wrist]
        if not np.all(np.isfinite(pts)) or (track.detected[frame] and vis < MIN_POSE_VISIBILITY):
            out.append(None)
            continue
        knuckles = 0.5 * (pts[1] + pts[2])
        reach = float(np.linalg.norm(knuckles - pts[0]))
        side_px = max(CROP_SCALE * reach, MIN_CROP_PX)
        if np.isfinite(sizes[s]):
            side_px = CROP_SMOOTHING * side_px + (1.0 - CROP_SMOOTHING) * float(sizes[s])
        sizes[s] = side_px
        # The hand's centre lies about one knuckle distance beyond the wrist along the wrist-to-knuckle line.
        centre = pts[0] + 1.0 * (knuckles - pts[0])
        out.append((centre, side_px))
    return out


def _paste(image: np.ndarray, crop: tuple[np.ndarray, float], canvas: np.ndarray, x0: int) -> None:
    """Resample the square crop of ``image`` into ``canvas[:, x0:x0+CROP_PIXELS]`` (zeros outside the image)."""
    import cv2

    centre, side = crop
    scale = CROP_PIXELS / side
    # Affine map image -> crop: p' = scale * (p - (centre - side/2)), pixel centres at integers.
    tx = -scale * (centre[0] - side / 2.0) + 0.5 * (scale - 1.0)
    ty = -scale * (centre[1] - side / 2.0) + 0.5 * (scale - 1.0)
    canvas[:, x0 : x0 + CROP_PIXELS] = cv2.warpAffine(
        image,
        np.array([[scale, 0.0, tx], [0.0, scale, ty]]),
        (CROP_PIXELS, CROP_PIXELS),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def hand_stride(fps: float) -> int:
    """Every how many frames the hand models run: every second frame at ``STRIDE_FPS`` or more (fingers are
    interpolated between), every frame below."""
    return 2 if fps >= STRIDE_FPS else 1


def detect_hands(
    frames: Iterable[Frame], track: Track2D, *, progress: Callable[[int], None] | None = None, stride: int | None = None
) -> HandTrack:
    """Run the hand models over streamed frames (the same frames ``track`` was detected on, in order) and
    return the tracked person's hands. ``stride``: run on every n-th frame (default ``hand_stride`` of the
    clip's rate); a frame in between gets the average of its neighbours where both saw the hand. The iterator
    is closed on return or error."""
    stride = hand_stride(float(track.fps)) if stride is None else max(int(stride), 1)
    f_total = track.num_frames
    landmarks = np.full((f_total, 2, NUM_HAND_LANDMARKS, 3), np.nan, dtype=np.float32)
    world = np.full_like(landmarks, np.nan)
    confidence = np.zeros((f_total, 2), dtype=np.float32)
    handedness = np.full((f_total, 2), np.nan, dtype=np.float32)
    size_px = np.full((f_total, 2), np.nan, dtype=np.float32)
    canvas = np.zeros((CROP_PIXELS, CROP_PIXELS, 3), dtype=np.uint8)
    sizes = np.full(2, np.nan)
    estimators = [_hands_estimator(), _hands_estimator()]
    last_us = -1
    try:
        for i, frame in enumerate(frames):
            if i >= f_total:
                break
            if i % stride and i != f_total - 1:
                if progress is not None:
                    progress(i + 1)
                continue
            crops = hand_crops(track, i, sizes)
            stamp = max(int(round(frame.time * 1e6)), last_us + 1)
            last_us = stamp
            for s, (crop, hands) in enumerate(zip(crops, estimators)):
                if crop is None:
                    continue
                _paste(frame.image, crop, canvas, 0)
                if hasattr(hands, "_simulated_timestamp"):
                    hands._simulated_timestamp = stamp - 33333  # type: ignore[attr-defined]
                result = hands.process(canvas)  # type: ignore[attr-defined]
                found = _assign(result, crop, s)
                if found is not None:
                    landmarks[i, s], world[i, s], handedness[i, s] = found
                    confidence[i, s] = max(handedness[i, s], 1.0 - handedness[i, s])
                    size_px[i, s] = 2.0 * float(np.linalg.norm(found[0][9, :2] - found[0][0, :2]))
            if progress is not None:
                progress(i + 1)
    finally:
        for hands in estimators:
            hands.close()  # type: ignore[attr-defined]
        close_frames(frames)
    if stride > 1:
        _fill_between(stride, landmarks, world, confidence, handedness, size_px)
    return HandTrack(landmarks, world, confidence, handedness, size_px)


def _fill_between(
    stride: int,
    landmarks: np.ndarray,
    world: np.ndarray,
    confidence: np.ndarray,
    handedness: np.ndarray,
    size_px: np.ndarray,
) -> None:
    """In place: each frame skipped by the stride, between two run frames that both saw a hand, gets the
    linear interpolation of the two (confidence: the lower)."""
    f_total = confidence.shape[0]
    run = [i for i in range(f_total) if i % stride == 0 or i == f_total - 1]
    for a, b in zip(run[:-1], run[1:]):
        for s in range(2):
            if confidence[a, s] <= 0 or confidence[b, s] <= 0:
                continue
            for i in range(a + 1, b):
                w = (i - a) / (b - a)
                for arr in (landmarks, world, handedness, size_px):
                    arr[i, s] = (1 - w) * arr[a, s] + w * arr[b, s]
                confidence[i, s] = min(confidence[a, s], confidence[b, s])


def _assign(result: object, crop: tuple[np.ndarray, float], s: int) -> tuple[np.ndarray, np.ndarray, float] | None:
    """MediaPipe's hand on side ``s``'s crop mapped back to the frame: (image landmarks (21, 3), metric
    landmarks (21, 3), probability it is the side we expect), or None when it is not this person's hand."""
    found = getattr(result, "multi_hand_landmarks", None) or []
    worlds = getattr(result, "multi_hand_world_landmarks", None) or []
    labels = getattr(result, "multi_handedness", None) or []
    centre, side = crop
    scale = side / CROP_PIXELS
    reach = side / CROP_SCALE
    best: tuple[np.ndarray, np.ndarray, float] | None = None
    best_shift = np.inf
    for hand, hand_world, label in zip(found, worlds, labels):
        crop_pts = np.array(
            [(p.x * CROP_PIXELS - 0.5, p.y * CROP_PIXELS - 0.5, p.z * CROP_PIXELS) for p in hand.landmark]
        )
        # Inverse of ``_paste``'s map (pixel centres at integers on both sides).
        img = np.empty_like(crop_pts)
        img[:, :2] = crop_pts[:, :2] * scale + centre - side / 2.0 - 0.5 * (1.0 - scale)
        img[:, 2] = crop_pts[:, 2] * scale
        # The crop was centred one knuckle distance past the pose wrist: the pose wrist sits about
        # side / CROP_SCALE from the centre. Reject hands whose wrist is far from there (another hand).
        shift = float(np.linalg.norm(img[0, :2] - centre)) / reach
        if shift > 1.0 + MAX_WRIST_SHIFT or shift >= best_shift:
            continue
        cls = label.classification[0]
        score = float(cls.score) if cls.label == _MEDIAPIPE_LABEL[SIDES[s]] else 1.0 - float(cls.score)
        best_shift = shift
        best = (img, np.array([(p.x, p.y, p.z) for p in hand_world.landmark]), score)
    return best


__all__ = ["HAND_LANDMARK_NAMES", "NUM_HAND_LANDMARKS", "SIDES", "HandTrack", "detect_hands", "hand_crops"]
