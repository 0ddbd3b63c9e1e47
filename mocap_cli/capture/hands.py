"""21 hand landmarks per hand per frame for the tracked person, from MediaPipe's bundled hand models.

Route (measured, see the hands note in CHANGELOG/README): the person's hands are found where the *pose* says
they are, not by searching the whole frame, so the right person's hands are used when several people are in
view and small hands (40-60 px in a full-body 720p shot) are seen at a useful resolution. Each frame, each
wrist with a visible pose gets a square, upright crop centred on the hand (from the pose's wrist, index and
pinky landmarks; side ``CROP_SCALE`` × the wrist-to-knuckle distance, smoothed over time so the crop does
not breathe). The two crops are pasted side by side, with a gap, into one small canvas, and MediaPipe's
``solutions.hands`` (the bundled ``palm_detection_full`` + ``hand_landmark_full`` graph) runs on that canvas
in tracking mode: while the crops follow the wrists the hands stay put on the canvas, so MediaPipe's own
landmark-to-ROI tracking keeps working and the palm detector runs only when a hand is lost. One graph
call per frame serves both hands.

A detected hand is assigned to the crop holding its wrist landmark, only when it is nearer that crop's pose
wrist than ``MAX_WRIST_SHIFT`` hand sizes (so a hand of someone else, or the other hand reaching into the
crop, is rejected); when two hands fall in one crop the nearer wins.

Outputs per frame and side (0 = the person's left hand, 1 = right, as the pose's ``left_wrist``): 21 image
landmarks (pixels, OpenCV convention as ``detect.Track2D``), MediaPipe's metric hand world landmarks
(metres, hand-centred, camera axes), a confidence (MediaPipe's handedness score for the expected side,
zero where unseen) and the hand's size in pixels. Memory is flat: frames are streamed, only landmarks kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from mocap_cli.capture.detect import Track2D
from mocap_cli.capture.video import Frame, close_frames
from mocap_cli.errors import MocapError

NUM_HAND_LANDMARKS = 21
SIDES = ("left", "right")
# MediaPipe hand landmark order (wrist, then four per finger from the base): index in the 21.
HAND_LANDMARK_NAMES: tuple[str, ...] = (
    "wrist",
    "thumb_cmc", "thumb_mcp", "thumb_ip", "thumb_tip",
    "index_mcp", "index_pip", "index_dip", "index_tip",
    "middle_mcp", "middle_pip", "middle_dip", "middle_tip",
    "ring_mcp", "ring_pip", "ring_dip", "ring_tip",
    "pinky_mcp", "pinky_pip", "pinky_dip", "pinky_tip",
)
CROP_PIXELS = 224  # each hand's crop on the canvas (the landmark model's own input size)
CANVAS_GAP = 32  # pixels between the two crops, so a tracked ROI never straddles both hands
CROP_SCALE = 4.2  # crop side / pose wrist-to-knuckle distance (covers a fully spread hand)
MIN_CROP_PX = 48.0  # never crop less than this (far-away hands are upscaled from at least this much)
CROP_SMOOTHING = 0.5  # weight of the new crop size in its running average
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
        static_image_mode=False, max_num_hands=2, model_complexity=1,
        min_detection_confidence=0.5, min_tracking_confidence=0.5,
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
    canvas[:, x0:x0 + CROP_PIXELS] = cv2.warpAffine(
        image, np.array([[scale, 0.0, tx], [0.0, scale, ty]]), (CROP_PIXELS, CROP_PIXELS),
        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))


def detect_hands(frames: Iterable[Frame], track: Track2D, *,
                 progress: Callable[[int], None] | None = None) -> HandTrack:
    """Run the hand models over streamed frames (the same frames ``track`` was detected on, in order) and
    return the tracked person's hands. The iterator is closed on return or error."""
    f_total = track.num_frames
    landmarks = np.full((f_total, 2, NUM_HAND_LANDMARKS, 3), np.nan, dtype=np.float32)
    world = np.full_like(landmarks, np.nan)
    confidence = np.zeros((f_total, 2), dtype=np.float32)
    handedness = np.full((f_total, 2), np.nan, dtype=np.float32)
    size_px = np.full((f_total, 2), np.nan, dtype=np.float32)
    width = 2 * CROP_PIXELS + CANVAS_GAP
    canvas = np.zeros((CROP_PIXELS, width, 3), dtype=np.uint8)
    offsets = (0, CROP_PIXELS + CANVAS_GAP)
    sizes = np.full(2, np.nan)
    hands = _hands_estimator()
    last_us = -1
    done = 0
    try:
        for i, frame in enumerate(frames):
            if i >= f_total:
                break
            crops = hand_crops(track, i, sizes)
            canvas[:] = 0
            for crop, x0 in zip(crops, offsets):
                if crop is not None:
                    _paste(frame.image, crop, canvas, x0)
            if any(c is not None for c in crops):
                stamp = max(int(round(frame.time * 1e6)), last_us + 1)
                if hasattr(hands, "_simulated_timestamp"):
                    hands._simulated_timestamp = stamp - 33333  # type: ignore[attr-defined]
                last_us = stamp
                result = hands.process(canvas)  # type: ignore[attr-defined]
                _assign(result, crops, offsets, i, landmarks, world, confidence, handedness, size_px)
            done = i + 1
            if progress is not None:
                progress(done)
    finally:
        hands.close()  # type: ignore[attr-defined]
        close_frames(frames)
    return HandTrack(landmarks, world, confidence, handedness, size_px)


def _assign(result: object, crops: list[tuple[np.ndarray, float] | None], offsets: tuple[int, int], i: int,
            landmarks: np.ndarray, world: np.ndarray, confidence: np.ndarray, handedness: np.ndarray,
            size_px: np.ndarray) -> None:
    """Map MediaPipe's hands on the canvas back to the frame and to the person's left/right hand."""
    found = getattr(result, "multi_hand_landmarks", None) or []
    worlds = getattr(result, "multi_hand_world_landmarks", None) or []
    labels = getattr(result, "multi_handedness", None) or []
    h, w = CROP_PIXELS, 2 * CROP_PIXELS + CANVAS_GAP
    best = [np.inf, np.inf]
    for hand, hand_world, label in zip(found, worlds, labels):
        canvas_pts = np.array([(p.x * w - 0.5, p.y * h - 0.5, p.z * w) for p in hand.landmark])
        s = 0 if canvas_pts[0, 0] < CROP_PIXELS + CANVAS_GAP / 2 else 1
        crop = crops[s]
        if crop is None:
            continue
        centre, side = crop
        scale = side / CROP_PIXELS
        img = np.empty_like(canvas_pts)
        # Inverse of ``_paste``'s map (pixel centres at integers on both sides).
        img[:, 0] = (canvas_pts[:, 0] - offsets[s]) * scale + centre[0] - side / 2.0 - 0.5 * (1.0 - scale)
        img[:, 1] = canvas_pts[:, 1] * scale + centre[1] - side / 2.0 - 0.5 * (1.0 - scale)
        img[:, 2] = canvas_pts[:, 2] * scale
        # The crop was centred one knuckle distance past the pose wrist: the pose wrist sits about
        # side / CROP_SCALE from the centre. Reject hands whose wrist is far from there.
        reach = side / CROP_SCALE
        shift = float(np.linalg.norm(img[0, :2] - centre)) / reach
        if shift > 1.0 + MAX_WRIST_SHIFT or shift >= best[s]:
            continue
        cls = label.classification[0]
        score = float(cls.score) if cls.label == _MEDIAPIPE_LABEL[SIDES[s]] else 1.0 - float(cls.score)
        best[s] = shift
        landmarks[i, s] = img
        world[i, s] = np.array([(p.x, p.y, p.z) for p in hand_world.landmark])
        confidence[i, s] = max(score, 1.0 - score)
        handedness[i, s] = score
        size_px[i, s] = 2.0 * float(np.linalg.norm(img[9, :2] - img[0, :2]))


__all__ = ["HandTrack", "HAND_LANDMARK_NAMES", "NUM_HAND_LANDMARKS", "SIDES", "detect_hands", "hand_crops"]
