"""Landmarks of every person in a clip, with MediaPipe's own bundled pose models (nothing downloaded).

Why this route: the mediapipe wheel ships the legacy single-person graph and two raw models
(``pose_detection.tflite``, a person detector, and ``pose_landmark_full.tflite``). The Tasks API's
``PoseLandmarker(num_poses=N)`` runs exactly these two networks for several people, but only from a
``.task`` bundle whose models carry input-normalisation metadata. We build that bundle in memory from the
wheel's files with the wheel's own metadata writer (``mediapipe.tasks...metadata_writers``), so no extra
runtime (such as ``ai-edge-litert``) and no download is needed, and the landmarks are the same network's as
the single-person path. (``ai-edge-litert`` 2.3.0 would install too, but would mean a second TFLite runtime
plus our own anchor decoding and ROI warping.) Measured with benchmarks/people.py on the project's shared
2-core CPU box: detection + tracking 11.1 frames/s on two_people_interaction_lab (1920x1080, 2 people) and
6.9 frames/s on the 1080x1920 courtyard duet, against 19-26 frames/s for the single-person legacy graph.

Where on each frame these networks are run is ``capture.people_search``'s job; identities are
``capture.tracking``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mocap_cli.capture.keypoints import MEDIAPIPE_NAMES, MP
from mocap_cli.errors import MocapError

# Crops are shrunk to at most this side before the networks (they resize to 224/256 px anyway).
MAX_CROP_SIDE = 512
# Two observations whose body landmarks seen by both are on average closer than this share of the box height
# are the same person seen twice (by the scan and by its crop, or twice by one crop). Measured on the shared
# two-person clips: two real people come no closer than 0.28 (two_people_interaction_lab, when they meet),
# while the duplicate poses of a child half out of frame (two_kids_jumping_bed) differ by up to ~0.2 because
# the network invents the unseen limbs differently each time.
SAME_PERSON = 0.2
# A pose whose box lies mostly (this share) in another's is that person again or a part of them (a body read
# on someone's legs), unless it comes from a search of its own person's region.
COVERED = 0.5
# A pose with this many body landmarks within this share of a body height of another's holds part of that body
# (two_people_interaction_lab: a pose read across the two hugging men shares 6-7 with one of them).
SHARED_LANDMARKS = 5
SHARED_DISTANCE = 0.05
# Fewer landmarks than this seen by both: compare all body landmarks instead.
_MIN_SHARED = 4
MAX_POSES_PER_CALL = 4
MIN_VISIBILITY = 0.5
_BODY = slice(11, 33)
_TORSO = [11, 12, 23, 24]  # shoulders, hips
# Landmark order with left and right exchanged.
_LEFT_RIGHT = [
    MP["_".join({"left": "right", "right": "left"}.get(part, part) for part in name.split("_"))]
    for name in MEDIAPIPE_NAMES
]
# Input normalisation the two networks were trained with (the legacy graphs' ImageToTensor settings).
_DETECTOR_NORM = (127.5, 127.5)  # [-1, 1]
_LANDMARK_NORM = (0.0, 255.0)  # [0, 1]


@dataclass(frozen=True)
class Observation:
    """One person seen on one frame. landmarks (33, 3): x, y pixels (OpenCV centres), z relative depth in
    pixels (as ``Track2D.landmarks``); visibility (33,); world (33, 3) metres, hip-centred, camera axes;
    box (4,) x0, y0, x1, y1 extent of the landmarks in pixels."""

    landmarks: np.ndarray
    visibility: np.ndarray
    world: np.ndarray
    box: np.ndarray
    colour: np.ndarray | None = None  # (3,) mean RGB in [0, 1] of the torso's middle; None where it is not seen

    @property
    def height(self) -> float:
        return float(self.box[3] - self.box[1])


def _bundled_model(*parts: str) -> bytes:
    import mediapipe as mp

    path = Path(mp.__file__).parent / "modules" / Path(*parts)
    if not path.is_file():
        raise MocapError(
            f"The mediapipe install lacks {path.name}; reinstall it with `pip install mediapipe==0.10.21`."
        )
    return path.read_bytes()


def _with_image_metadata(model: bytes, norm: tuple[float, float], outputs: int) -> bytes:
    from mediapipe.tasks.python.metadata.metadata_writers import metadata_writer as mw

    writer = mw.MetadataWriter.create(bytearray(model))
    writer.add_general_info("mocap", "MediaPipe pose model from the mediapipe wheel")
    writer.add_image_input(norm_mean=[norm[0]], norm_std=[norm[1]])
    for _ in range(outputs):
        writer.add_feature_output()
    return bytes(writer.populate()[0])


def pose_bundle() -> bytes:
    """The ``.task`` bundle (a zip) the Tasks ``PoseLandmarker`` reads, built from the wheel's two models."""
    import io
    import zipfile

    try:
        detector = _with_image_metadata(_bundled_model("pose_detection", "pose_detection.tflite"), _DETECTOR_NORM, 2)
        landmarks = _with_image_metadata(
            _bundled_model("pose_landmark", "pose_landmark_full.tflite"), _LANDMARK_NORM, 5
        )
    except ImportError as exc:
        raise MocapError("MediaPipe is not installed; install it with `pip install mediapipe==0.10.21`.") from exc
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("pose_detector.tflite", detector)
        zf.writestr("pose_landmarks_detector.tflite", landmarks)
    return out.getvalue()


class PoseFinder:
    """Runs the landmarker on whole frames or crops and returns observations in frame pixels."""

    def __init__(self, max_poses: int = MAX_POSES_PER_CALL) -> None:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        self._mp = mp
        options = vision.PoseLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=pose_bundle()),
            running_mode=vision.RunningMode.IMAGE,
            num_poses=max_poses,
            min_pose_detection_confidence=0.3,
            min_pose_presence_confidence=0.5,
        )
        self._landmarker = vision.PoseLandmarker.create_from_options(options)

    def close(self) -> None:
        self._landmarker.close()

    def find(self, image: np.ndarray, region: tuple[int, int, int, int] | None = None) -> list[Observation]:
        """People in ``image`` (H, W, 3 RGB uint8), or in its ``region`` x0, y0, x1, y1 (may reach outside the
        image; the outside is black)."""
        import cv2

        h, w = image.shape[:2]
        x0, y0, x1, y1 = region if region is not None else (0, 0, w, h)
        crop = image[max(y0, 0) : min(y1, h), max(x0, 0) : min(x1, w)]
        if crop.size == 0:
            return []
        pad = (max(-y0, 0), max(y1 - h, 0), max(-x0, 0), max(x1 - w, 0))
        if any(pad):
            crop = cv2.copyMakeBorder(crop, *pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        cw, ch = x1 - x0, y1 - y0
        shrink = min(1.0, MAX_CROP_SIDE / max(cw, ch))
        if shrink < 1.0:
            crop = cv2.resize(crop, (max(int(cw * shrink), 1), max(int(ch * shrink), 1)), interpolation=cv2.INTER_AREA)
        result = self._landmarker.detect(
            self._mp.Image(image_format=self._mp.ImageFormat.SRGB, data=np.ascontiguousarray(crop))
        )
        found = []
        for pts, wpts in zip(result.pose_landmarks, result.pose_world_landmarks):
            lm = np.array([(p.x * cw - 0.5 + x0, p.y * ch - 0.5 + y0, p.z * cw) for p in pts], dtype=np.float32)
            vis = np.array([p.visibility if p.visibility is not None else 0.0 for p in pts], dtype=np.float32)
            world = np.array([(p.x, p.y, p.z) for p in wpts], dtype=np.float32)
            obs = observation_from_landmarks(image, lm, vis, world)
            found.extend([obs] if obs is not None else [])
        return found


def observation_from_landmarks(
    image: np.ndarray, landmarks: np.ndarray, visibility: np.ndarray, world: np.ndarray
) -> Observation | None:
    """The ``Observation`` of a pose the landmark network found on ``image``, or None for a pose it doubts
    (mean body visibility under ``MIN_VISIBILITY``: mostly hallucinated in clutter) or one with no extent."""
    h, w = image.shape[:2]
    box = np.array(
        [landmarks[:, 0].min(), landmarks[:, 1].min(), landmarks[:, 0].max(), landmarks[:, 1].max()], dtype=np.float32
    )
    box = np.clip(box, 0, [w, h, w, h]).astype(np.float32)
    if box[2] - box[0] <= 1 or box[3] - box[1] <= 1 or float(np.mean(visibility[_BODY])) < MIN_VISIBILITY:
        return None
    return Observation(landmarks, np.clip(visibility, 0.0, 1.0), world, box, torso_colour(image, landmarks, visibility))


def torso_colour(image: np.ndarray, landmarks: np.ndarray, visibility: np.ndarray) -> np.ndarray | None:
    """Mean RGB (3,) in [0, 1] of the middle of the torso (between shoulders and hips), or None where a corner of
    the torso is not seen or the patch is outside ``image``: clothing tells apart people whose poses meet."""
    corners = landmarks[_TORSO, :2]
    if float(visibility[_TORSO].min()) < MIN_VISIBILITY:
        return None
    centre = corners.mean(0)
    half_w = 0.25 * float(np.linalg.norm(corners[0] - corners[1]))
    half_h = 0.3 * float(np.linalg.norm(corners[:2].mean(0) - corners[2:].mean(0)))
    h, w = image.shape[:2]
    x0, x1 = int(max(centre[0] - half_w, 0)), int(min(centre[0] + half_w, w))
    y0, y1 = int(max(centre[1] - half_h, 0)), int(min(centre[1] + half_h, h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return image[y0:y1, x0:x1].reshape(-1, image.shape[2])[:, :3].mean(0).astype(np.float32) / 255.0


def pose_distance(a: np.ndarray, b: np.ndarray, height: float) -> float:
    """Mean distance between the body landmarks (22 of 33) of two (33, ≥2) landmark sets, in units of
    ``height`` pixels, the smaller of as read and with one set's left and right exchanged: the network
    sometimes reads a body facing the other way, and it is still the same body in the same place (on
    street_dance_crowd two readings of one woman are 0.25 apart as read and 0.03 exchanged)."""
    return min(
        float(np.mean(np.linalg.norm(a[_BODY, :2] - other[_BODY, :2], axis=1)) / max(height, 1.0))
        for other in (b, b[_LEFT_RIGHT])
    )


def seen_pose_distance(a: Observation, b: Observation) -> float:
    """Like ``pose_distance``, over the body landmarks both observations see (visibility ≥ MIN_VISIBILITY),
    in units of the taller box: limbs the network only guesses (out of frame, hidden) do not count. A way
    round (as read, or left and right exchanged) with fewer than ``_MIN_SHARED`` landmarks seen by both
    compares all body landmarks, that way round only."""
    height = max(a.height, b.height)
    distances = []
    for order in (slice(None), _LEFT_RIGHT):
        landmarks, visibility = b.landmarks[order], b.visibility[order]
        both = (a.visibility[_BODY] >= MIN_VISIBILITY) & (visibility[_BODY] >= MIN_VISIBILITY)
        if int(both.sum()) < _MIN_SHARED:
            both = np.ones_like(both)
        gaps = np.linalg.norm(a.landmarks[_BODY, :2][both] - landmarks[_BODY, :2][both], axis=1)
        distances.append(float(np.mean(gaps) / max(height, 1.0)))
    return min(distances)


def covered(obs: Observation, others: list[Observation]) -> bool:
    """Whether more than ``COVERED`` of ``obs``'s box lies in the box of one of ``others``."""
    area = float((obs.box[2] - obs.box[0]) * (obs.box[3] - obs.box[1]))
    for other in others:
        ix = max(0.0, min(obs.box[2], other.box[2]) - max(obs.box[0], other.box[0]))
        iy = max(0.0, min(obs.box[3], other.box[3]) - max(obs.box[1], other.box[1]))
        if ix * iy > COVERED * area:
            return True
    return False


def shares_limbs(a: Observation, b: Observation) -> bool:
    """Whether at least ``SHARED_LANDMARKS`` of the body landmarks ``a`` sees lie on landmarks ``b`` sees (within
    ``SHARED_DISTANCE`` of the taller box): ``a`` then holds part of ``b``'s body."""
    seen_a = a.landmarks[_BODY, :2][a.visibility[_BODY] >= MIN_VISIBILITY]
    seen_b = b.landmarks[_BODY, :2][b.visibility[_BODY] >= MIN_VISIBILITY]
    if not len(seen_a) or not len(seen_b):
        return False
    gaps = np.linalg.norm(seen_a[:, None] - seen_b[None], axis=-1).min(axis=1)
    return int(np.sum(gaps < SHARED_DISTANCE * max(a.height, b.height))) >= SHARED_LANDMARKS


def merge_duplicates(observations: list[Observation]) -> list[Observation]:
    """Keep one of every group of observations of the same person (the first one listed wins)."""
    kept: list[Observation] = []
    for obs in observations:
        if all(seen_pose_distance(obs, k) > SAME_PERSON for k in kept):
            kept.append(obs)
    return kept


@dataclass
class FrameObservations:
    index: int
    time: float
    people: list[Observation]
