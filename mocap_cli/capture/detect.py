"""2D (and MediaPipe's 3D) body landmarks of one person per clip, with MediaPipe Pose.

Model choice: mediapipe 0.10.21 ships the *legacy* pose models (``modules/pose_landmark/pose_landmark_full.tflite``,
``modules/pose_detection/pose_detection.tflite``) but no ``.task`` bundle for the Tasks API ``PoseLandmarker``, so we
run ``mediapipe.solutions.pose.Pose(static_image_mode=False, model_complexity=1, smooth_landmarks=True)``: the bundled
FULL landmark model with frame-to-frame tracking and MediaPipe's landmark smoothing (no download, no network).

One person per clip: the legacy solution is single-person; it tracks the person it found and re-runs its detector
(which takes the most confident person) only when tracking is lost, so it can jump to someone else after a loss.
We split the track into segments at every loss or box jump, keep the most prominent segment (largest box area
summed over its frames) and then walk outwards in time, keeping a segment only if it starts (or ends) near the
person kept so far. Rejected frames become gaps.

Gaps: frames without a kept detection have ``detected=False``. Interior gaps up to ``max_gap`` seconds are filled by
linear interpolation in time (``filled=True``); longer gaps and gaps at either end stay NaN for the caller to
decide (trim, hold, or interpolate). Visibility is 0 on every undetected frame.

The opening: MediaPipe's tracker follows whatever its first detection locked onto, so a clip's first frames are
the weakest. Its detector can miss a person who is plainly there (walk_16_32: a 130 px walker found only at frame
18) or lock onto a wrong body shape and keep it until tracking fails (squat_14_06: the legs read at hip height,
100 px off, for 11 frames, then a loss and a good re-detection). So where the first ``OPENING_SECONDS`` hold a miss
followed by a (re-)detection, those opening frames are tracked once more, backward, by a fresh tracker that
starts ``SETTLE_SECONDS`` after that detection (where the forward pass was tracking well); each frame before the
detection takes the backward pass's pose where the forward pass had none or disagrees with it by more than
``REDO_DISAGREEMENT`` of a body height. Clips whose opening is seen without a miss run no second pass (their first
1.5 s of frames are kept, downscaled, in case). The hand models (``on_frame``) see the forward pass's poses.

Timestamps: the legacy API assumes 30 fps for its smoothing filter; we hand it each frame's real presentation
time instead (through its ``_simulated_timestamp`` counter, present in 0.10.x), so variable and non-30 fps clips
are smoothed correctly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable, Iterable

import numpy as np

from mocap_cli.capture.keypoints import MEDIAPIPE_NAMES
from mocap_cli.capture.video import Frame, VideoInfo, close_frames
from mocap_cli.errors import MocapError
from mocap_cli.solve.camera_motion import BackgroundTracker, KeyPair

LANDMARK_NAMES = MEDIAPIPE_NAMES
NUM_LANDMARKS = len(LANDMARK_NAMES)
DEFAULT_MAX_GAP_S = 0.5
# A person smaller than this (pixels, the longer side of their box) is below what MediaPipe was trained on:
# landmarks jitter and detections come and go, so the user is told (a 32x32 clip still "works").
MIN_RELIABLE_PERSON_PIXELS = 64
OPENING_SECONDS = 1.0
SETTLE_SECONDS = 0.5
REDO_DISAGREEMENT = 0.15
# Opening frames are kept for the backward pass at most this size (longer side, pixels): MediaPipe's models see
# 256 px crops, and 1.5 s of 4K frames would hold about a gigabyte.
_OPENING_MAX_SIDE = 1280


@dataclass
class Track2D:
    """Per-frame landmarks of the one person followed through a clip (F frames, as decoded; times may be uneven).

    fps: the clip's rate (exact fraction from the probe); frame_times (F,) seconds from the file start and
        frame_indices (F,) positions in the file are the truth for variable-rate clips.
    image_size: (W, H) of the frames, pixels.
    landmarks: (F, 33, 3) image landmarks: x, y in pixels, OpenCV convention (pixel centres at integers:
        x = MediaPipe's normalised x * W - 0.5); z is MediaPipe's relative depth scaled by W to pixels,
        origin at the mid-hip depth, smaller = nearer the camera. MediaPipe names/order in ``LANDMARK_NAMES``.
    visibility: (F, 33) MediaPipe's visibility in [0, 1] (likelihood of being in view and not occluded); 0 where
        not detected.
    world_landmarks: (F, 33, 3) MediaPipe's metric 3D estimate, metres, origin at the mid-hip point, camera
        axes: x right, y down, z away from the camera (the image axes extended by depth).
    detected: (F,) True where MediaPipe returned this person on that frame.
    filled: (F,) True where a short gap was interpolated (always ``detected=False``); undetected and not filled
        frames hold NaN landmarks and boxes.
    boxes: (F, 4) person box x0, y0, x1, y1 in pixels: the extent of the 33 landmarks, clipped to the image.
    background: background corners tracked between key frames while detecting (``camera_motion``), from which
        a model measures how the camera turned; None when the track was not made by ``detect``.
    """

    fps: Fraction
    frame_times: np.ndarray
    frame_indices: np.ndarray
    image_size: tuple[int, int]
    landmarks: np.ndarray
    visibility: np.ndarray
    world_landmarks: np.ndarray
    detected: np.ndarray
    filled: np.ndarray
    boxes: np.ndarray
    names: tuple[str, ...] = LANDMARK_NAMES
    background: list[KeyPair] | None = field(default=None, repr=False)

    @property
    def num_frames(self) -> int:
        return int(self.detected.shape[0])

    @property
    def detection_rate(self) -> float:
        return detection_rate(self)

    def landmark(self, name: str) -> np.ndarray:
        """(F, 3) pixel track of one landmark by MediaPipe name (e.g. ``left_knee``)."""
        return self.landmarks[:, self.names.index(name)]


def detection_rate(track: Track2D) -> float:
    """Fraction of frames where the person was actually detected (filled frames do not count)."""
    return float(np.mean(track.detected)) if track.num_frames else 0.0


def person_size_pixels(track: Track2D) -> float:
    """Median over detected frames of the person's box size (its longer side, pixels); 0 without detections."""
    boxes = track.boxes[track.detected]
    if not len(boxes):
        return 0.0
    return float(np.median(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])))


def small_person_warning(track: Track2D) -> str | None:
    """A warning when the person is too small in the frames for reliable landmarks, else None."""
    size = person_size_pixels(track)
    if size >= MIN_RELIABLE_PERSON_PIXELS:
        return None
    width, height = track.image_size
    return (
        f"the person is only about {size:.0f} px tall in this {width}x{height} video (at least "
        f"{MIN_RELIABLE_PERSON_PIXELS} px is needed for reliable detection); use a higher-resolution clip "
        "or one where the person is closer"
    )


def _pose_estimator() -> object:
    try:
        import mediapipe as mp
    except ImportError as exc:
        raise MocapError("MediaPipe is not installed; install it with `pip install mediapipe==0.10.21`.") from exc
    return mp.solutions.pose.Pose(
        static_image_mode=False,
        model_complexity=1,
        smooth_landmarks=True,
        enable_segmentation=False,
        min_detection_confidence=0.5,
        min_tracking_confidence=0.5,
    )


def detect(
    frames: Iterable[Frame],
    info: VideoInfo,
    *,
    progress: Callable[[int], None] | None = None,
    max_gap: float = DEFAULT_MAX_GAP_S,
    on_frame: Callable[[Frame, np.ndarray | None, np.ndarray | None], None] | None = None,
) -> Track2D:
    """Run MediaPipe Pose over streamed frames (only landmarks are kept) and return one person's track.

    ``progress(frames_done)`` is called after every frame. ``on_frame(frame, landmarks, visibility)`` gets
    each frame with the pose found on it (image landmarks (33, 3) as in ``Track2D``, visibility (33,); None
    where nobody was found) before the person is chosen, so later stages can use the decoded frame (the hand
    models do). Raises ``MocapError`` when no person is found.
    The iterator is closed on return or error, so an ``iter_frames`` generator releases its ffmpeg.
    """
    times: list[float] = []
    indices: list[int] = []
    image_lm: list[np.ndarray] = []
    world_lm: list[np.ndarray] = []
    vis: list[np.ndarray] = []
    found: list[bool] = []
    size: tuple[int, int] | None = None
    nan3 = np.full((NUM_LANDMARKS, 3), np.nan, dtype=np.float32)
    pose = _pose_estimator()
    tracker = BackgroundTracker(float(info.fps))
    last_us = -1
    opening: list[np.ndarray] = []  # the first frames, for the backward pass (module docstring)
    try:
        for frame in frames:
            h, w = frame.image.shape[:2]
            if size is None:
                size = (w, h)
            if not times or frame.time - times[0] <= OPENING_SECONDS + SETTLE_SECONDS:
                opening.append(_shrunk(frame.image))
            last_us = max(int(round(frame.time * 1e6)), last_us + 1)
            pose_now = _pose_at(pose, frame.image, last_us, (w, h))
            times.append(frame.time)
            indices.append(frame.index)
            found.append(pose_now is not None)
            image_lm.append(nan3 if pose_now is None else pose_now[0])
            world_lm.append(nan3 if pose_now is None else pose_now[1])
            vis.append(np.zeros(NUM_LANDMARKS, np.float32) if pose_now is None else pose_now[2])
            if on_frame is not None:
                on_frame(frame, image_lm[-1] if found[-1] else None, vis[-1] if found[-1] else None)
            # The camera's motion is tracked on the frames already decoded (a second decode would cost more).
            tracker.add(frame.image, _boxes(image_lm[-1][None], (w, h))[0])
            if progress is not None:
                progress(len(times))
    finally:
        pose.close()  # type: ignore[attr-defined]
        close_frames(frames)

    if size is None:
        raise MocapError(f"{info.path} yielded no frames to analyse; check --start/--end.")
    _redo_opening(opening, times, size, found, image_lm, world_lm, vis)
    detected = np.array(found, dtype=bool)
    if not detected.any():
        tiny = (
            f" (its frames are only {size[0]}x{size[1]} pixels, too small to find a person)"
            if min(size) < MIN_RELIABLE_PERSON_PIXELS
            else ""
        )
        raise MocapError(
            f"No person was detected in {info.path}{tiny}; use a clip where one person is visible (ideally full body)."
        )
    landmarks = np.stack(image_lm)
    boxes = _boxes(landmarks, size)
    frame_times = np.asarray(times, dtype=np.float64)
    detected &= _consistent_person(boxes, detected, frame_times)
    landmarks[~detected] = np.nan
    world = np.stack(world_lm)
    world[~detected] = np.nan
    visibility = np.stack(vis)
    visibility[~detected] = 0.0
    boxes[~detected] = np.nan
    filled = _fill_short_gaps(frame_times, detected, max_gap, landmarks, world, boxes)
    return Track2D(
        fps=info.fps,
        frame_times=frame_times,
        frame_indices=np.asarray(indices, dtype=np.int64),
        image_size=size,
        landmarks=landmarks,
        visibility=visibility,
        world_landmarks=world,
        detected=detected,
        filled=filled,
        boxes=boxes,
        background=tracker.finish(),
    )


def _shrunk(image: np.ndarray) -> np.ndarray:
    """A copy of ``image`` whose longer side is at most ``_OPENING_MAX_SIDE`` pixels."""
    h, w = image.shape[:2]
    scale = _OPENING_MAX_SIDE / max(h, w)
    if scale >= 1.0:
        return image.copy()
    import cv2

    return cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)


def _landmarks(result: object, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(image (33, 3) as in ``Track2D``, world (33, 3), visibility (33,)) of a ``Pose.process`` result, or None.
    ``size``: (W, H) of the clip's frames (the landmarks are normalised, so a shrunk frame gives the same)."""
    if result.pose_landmarks is None:  # type: ignore[attr-defined]
        return None
    w, h = size
    pts = result.pose_landmarks.landmark  # type: ignore[attr-defined]
    image = np.array([(p.x * w - 0.5, p.y * h - 0.5, p.z * w) for p in pts], dtype=np.float32)
    world = np.array([(p.x, p.y, p.z) for p in result.pose_world_landmarks.landmark], dtype=np.float32)  # type: ignore[attr-defined]
    return image, world, np.array([p.visibility for p in pts], dtype=np.float32)


def _pose_at(
    pose: object, image: np.ndarray, stamp_us: int, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``_landmarks`` of what ``pose`` finds in ``image``, stamped ``stamp_us`` microseconds for its smoothing filter
    (module docstring: Timestamps)."""
    if hasattr(pose, "_simulated_timestamp"):
        # process() adds 33333 us (its 30 fps assumption) before stamping the packet.
        pose._simulated_timestamp = stamp_us - 33333  # type: ignore[attr-defined]
    return _landmarks(pose.process(image), size)  # type: ignore[attr-defined]


def opening_redetection(found: list[bool], times: list[float]) -> int | None:
    """Index of the last frame in the first ``OPENING_SECONDS`` where the person is found right after a frame
    where they were not (MediaPipe (re-)detected them), or None: the opening frames before it are re-tracked."""
    last = None
    for i in range(1, len(found)):
        if times[i] - times[0] > OPENING_SECONDS:
            break
        if found[i] and not found[i - 1]:
            last = i
    return last


def _redo_opening(
    opening: list[np.ndarray],
    times: list[float],
    size: tuple[int, int],
    found: list[bool],
    image_lm: list[np.ndarray],
    world_lm: list[np.ndarray],
    vis: list[np.ndarray],
) -> None:
    """Track the opening frames backward and take its poses before the (re-)detection (module docstring);
    updates the per-frame lists in place."""
    j = opening_redetection(found, times)
    if j is None:
        return
    start = max(i for i in range(len(opening)) if times[i] - times[j] <= SETTLE_SECONDS)
    pose = _pose_estimator()
    stamp = 0
    try:
        for i in range(start, -1, -1):
            if i < start:
                stamp += max(int(round((times[i + 1] - times[i]) * 1e6)), 1)
            back = _pose_at(pose, opening[i], stamp, size)
            if i >= j or back is None:
                continue
            if found[i]:
                height = max(float(np.ptp(back[0][:, 1])), 1.0)
                apart = float(np.linalg.norm(back[0][:, :2] - image_lm[i][:, :2], axis=-1).mean())
                if apart <= REDO_DISAGREEMENT * height:
                    continue
            found[i] = True
            image_lm[i], world_lm[i], vis[i] = back
    finally:
        pose.close()  # type: ignore[attr-defined]


def _boxes(landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(F, 4) x0, y0, x1, y1 extent of the landmarks, clipped to the image; NaN rows where undetected."""
    w, h = size
    box = np.full((landmarks.shape[0], 4), np.nan, dtype=np.float32)
    ok = np.isfinite(landmarks[..., :2]).all(axis=(1, 2))
    x, y = landmarks[ok, :, 0], landmarks[ok, :, 1]
    box[ok] = np.stack([x.min(1), y.min(1), x.max(1), y.max(1)], axis=1)
    return np.clip(box, 0, [w, h, w, h]).astype(np.float32)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def _near(a: np.ndarray, b: np.ndarray, dt: float) -> bool:
    """Whether box b can be the same person as box a seen ``dt`` seconds earlier (or later)."""
    if _iou(a, b) > 0.1:
        return True
    height = max(a[3] - a[1], b[3] - b[1], 1.0)
    centre_a = np.array([(a[0] + a[2]) / 2, (a[1] + a[3]) / 2])
    centre_b = np.array([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2])
    # A person moves at most about a body height per second in the image; allow half a height of slack.
    return bool(np.linalg.norm(centre_a - centre_b) <= height * (0.5 + abs(dt)))


def _consistent_person(boxes: np.ndarray, detected: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Mask of the detected frames that belong to the main person (see module docstring)."""
    segments: list[list[int]] = []
    for i in np.flatnonzero(detected):
        prev = segments[-1][-1] if segments else None
        if prev is not None and prev == i - 1 and _iou(boxes[prev], boxes[i]) >= 0.2:
            segments[-1].append(i)
        else:
            segments.append([i])
    if len(segments) <= 1:
        return detected.copy()
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    main = int(np.argmax([float(np.sum(area[s])) for s in segments]))
    keep = np.zeros_like(detected)
    keep[segments[main]] = True
    ref = segments[main][-1]
    for seg in segments[main + 1 :]:
        if _near(boxes[ref], boxes[seg[0]], times[seg[0]] - times[ref]):
            keep[seg] = True
            ref = seg[-1]
    ref = segments[main][0]
    for seg in reversed(segments[:main]):
        if _near(boxes[ref], boxes[seg[-1]], times[ref] - times[seg[-1]]):
            keep[seg] = True
            ref = seg[0]
    return keep


def _fill_short_gaps(times: np.ndarray, detected: np.ndarray, max_gap: float, *arrays: np.ndarray) -> np.ndarray:
    """Interpolate (in time, in place) every interior run of undetected frames lasting at most ``max_gap`` s.

    The gap's duration is measured between the detections on either side, minus one frame interval, i.e. the
    time span actually missing. Returns the mask of filled frames.
    """
    filled = np.zeros_like(detected)
    idx = np.flatnonzero(detected)
    for a, b in zip(idx[:-1], idx[1:]):
        if b - a <= 1:
            continue
        step = (times[b] - times[a]) / (b - a)
        if times[b] - times[a] - step > max_gap + 1e-9:
            continue
        w = ((times[a + 1 : b] - times[a]) / (times[b] - times[a]))[:, None]
        for arr in arrays:
            flat = arr.reshape(arr.shape[0], -1)
            flat[a + 1 : b] = (1 - w) * flat[a] + w * flat[b]
        filled[a + 1 : b] = True
    return filled
