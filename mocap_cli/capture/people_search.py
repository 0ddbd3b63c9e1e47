"""Where on each frame to look for people: follow the ones seen, crop around the ones lost, scan for new ones.

MediaPipe's person detector sees a whole frame letterboxed to 224 px, so people who fill less than about half
the frame are often missed, and it finds bodies through their faces. We therefore look in four ways, then
merge duplicates:
- *follow*: every person seen on the previous frame is looked for in the region its landmarks put them in now,
  by the landmark network alone (``capture.roi_landmarks``, as MediaPipe's single-person graph follows its
  person), so a person once found is kept while their face is hidden;
- *crop*: a person not followed (seen before the previous frame, or whom the follow lost) is looked for with
  both networks in a square crop around their predicted box, which makes them large for both;
- *look again*: on the scan's frames, a person lost for longer than the crops look (``MAX_CROP_AGE_S``) but
  whose identity is still kept is looked for by the landmark network alone where they were last seen;
- *scan*: the whole frame and two overlapping halves (left/right, or top/bottom for portrait clips), on the
  first frame and every ``SCAN_INTERVAL_S`` seconds, to find people entering; at the same times a crop around
  each recent person keeps every pose it finds that is not mostly inside one already found, to find the people
  beside them (on street_dance_crowd the man filming in the middle was otherwise found only from frame 65).
Identities are given by ``capture.tracking``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from mocap_cli.capture.people import (
    FrameObservations,
    Observation,
    PoseFinder,
    covered,
    merge_duplicates,
    shares_limbs,
)
from mocap_cli.capture.roi_landmarks import RoiLandmarker, roi_around
from mocap_cli.capture.tracking import MAX_CROP_AGE_S, MAX_OCCLUSION_S, MIN_HEIGHT_SHARE, RecentPerson, Tracker
from mocap_cli.capture.video import Frame, close_frames
from mocap_cli.errors import MocapError

SCAN_INTERVAL_S = 0.25
# A crop around a tracked person is this many times the larger side of its landmark box.
CROP_SCALE = 1.5
# At most this many people followed, and this many crops, per frame (the scan still runs on top).
MAX_CROPS = 12


def scan_regions(width: int, height: int) -> list[tuple[int, int, int, int]]:
    """The whole frame plus two overlapping 60 % halves along its longer side."""
    full = (0, 0, width, height)
    if width >= height:
        part = round(0.6 * width)
        return [full, (0, 0, part, height), (width - part, 0, width, height)]
    part = round(0.6 * height)
    return [full, (0, 0, width, part), (0, height - part, width, height)]


def crop_around(box: np.ndarray) -> tuple[int, int, int, int]:
    """A square region ``CROP_SCALE`` times the larger side of ``box``, centred on it."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half = CROP_SCALE * max(box[2] - box[0], box[3] - box[1], 16.0) / 2
    return int(cx - half), int(cy - half), int(cx + half), int(cy + half)


def _most_central(found: list[Observation], region: tuple[int, int, int, int]) -> Observation | None:
    centre = np.array([(region[0] + region[2]) / 2, (region[1] + region[3]) / 2])
    dist = [float(np.linalg.norm((o.box[:2] + o.box[2:]) / 2 - centre)) for o in found]
    return found[int(np.argmin(dist))] if found else None


def distinct_crops(boxes: list[np.ndarray]) -> list[tuple[int, int, int, int]]:
    """Crops around ``boxes`` (in priority order, see ``Tracker.recent``), skipping any that mostly repeats a
    kept one, at most ``MAX_CROPS``: without this, two tracks briefly on one person would double the work on
    every frame."""
    kept: list[tuple[int, int, int, int]] = []
    for box in boxes:
        region = crop_around(box)
        if len(kept) < MAX_CROPS and all(_iou(region, k) < 0.6 for k in kept):
            kept.append(region)
    return kept


def _iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ix * iy
    return ix * iy / union if union > 0 else 0.0


def _follow(
    follower: RoiLandmarker, image: np.ndarray, recent: list[RecentPerson], previous: float
) -> tuple[list[Observation], list[RecentPerson]]:
    """The people seen at time ``previous`` looked for where their landmarks put them: what was found, and the
    recent people left to crop for (not seen at ``previous``, or lost by the follow)."""
    followed: list[tuple[RecentPerson, Observation]] = []
    left: list[RecentPerson] = []
    for person in recent:
        obs = None
        if person.seen_at >= previous - 1e-9 and len(followed) < MAX_CROPS:
            obs = follower.find(image, roi_around(person.last.landmarks))
        if obs is None:
            left.append(person)
        else:
            followed.append((person, obs))
    found: list[Observation] = []
    for person, obs in followed:
        others = [o for _, o in followed if o is not obs]
        # A region that now holds two people read as one body (hugging: the pose takes limbs from both, and
        # holds the other's whole box) or only a part of someone already found (a child's pose read on an
        # adult's legs) has lost its person: the crop looks for them again, as for anyone else.
        if any(covered(o, [obs]) and shares_limbs(obs, o) for o in others) or covered(obs, found):
            left.append(person)
        else:
            found.append(obs)
    return found, left


def _look_again(
    follower: RoiLandmarker, image: np.ndarray, hidden: list[RecentPerson], found: list[Observation]
) -> list[Observation]:
    """People the crops no longer look for (unseen for over ``MAX_CROP_AGE_S``) but whose identity is kept
    (``MAX_OCCLUSION_S``), looked for by the landmark network alone where they were last seen. The detector
    finds bodies by their faces: a masked or blurred face that went behind someone was otherwise never found
    again (street_dance_crowd's woman in teal). Where they were last seen, not where their velocity puts them:
    hers, as she went behind the woman in blue, put the region on the woman in blue. A pose on someone already
    found, or on part of them, is not taken; whose pose it is, is for the tracker to say (after a gap only the
    same clothes take an identity back). People too small to be kept (``MIN_HEIGHT_SHARE``) are not looked for:
    poses found on background figures started tracks whose follows took the man in grey's place on 10 frames."""
    out: list[Observation] = []
    for person in hidden[:MAX_CROPS]:
        obs = follower.find(image, roi_around(person.last.landmarks))
        if obs is None or not 0.6 < obs.height / max(person.last.height, 1e-6) < 1.6:
            continue
        others = found + out
        if covered(obs, others) or any(covered(o, [obs]) or shares_limbs(obs, o) for o in others):
            continue
        out.append(obs)
    return out


def find_people(
    frames: Iterable[Frame],
    tracker: Tracker,
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[FrameObservations], tuple[int, int]]:
    """Observe every frame (follow, crop, scan: see the module docstring) and feed ``tracker``.

    Returns the per-frame observations and the image size (W, H). Closes the frame iterator."""
    finder = PoseFinder()
    follower = RoiLandmarker()
    seen: list[FrameObservations] = []
    size: tuple[int, int] | None = None
    last_scan = -np.inf
    previous = -np.inf
    try:
        for frame in frames:
            h, w = frame.image.shape[:2]
            size = size or (w, h)
            recent = tracker.recent(frame.time)
            found, lost = _follow(follower, frame.image, recent, previous)
            for region in distinct_crops([p.box for p in lost]):
                # A crop looks for its own person only: new people come from the scan, so a false pose in
                # the background of a crop cannot start a track that then gets a crop of its own.
                centred = _most_central(finder.find(frame.image, region), region)
                found.extend([centred] if centred is not None else [])
            if frame.time - last_scan >= SCAN_INTERVAL_S - 1e-6:
                last_scan = frame.time
                for region in scan_regions(w, h):
                    found.extend(finder.find(frame.image, region))
                hidden = [
                    p
                    for p in tracker.recent(frame.time, MAX_OCCLUSION_S)
                    if frame.time - p.seen_at > MAX_CROP_AGE_S and p.last.height >= MIN_HEIGHT_SHARE * h
                ]
                found.extend(_look_again(follower, frame.image, hidden, merge_duplicates(found)))
                known = list(found)
                for region in distinct_crops([p.box for p in recent]):
                    found.extend(o for o in finder.find(frame.image, region) if not covered(o, known))
            people = merge_duplicates(found)
            tracker.update(len(seen), frame.time, people)
            seen.append(FrameObservations(frame.index, frame.time, people))
            previous = frame.time
            if progress is not None:
                progress(len(seen))
    finally:
        finder.close()
        follower.close()
        close_frames(frames)
    if size is None:
        raise MocapError("The clip yielded no frames to analyse; check --start/--end.")
    return seen, size
