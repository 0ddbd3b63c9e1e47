"""Person identities across frames: appearance-free tracking by pose continuity with a motion model.

Each track predicts its landmarks forward in time with a constant image velocity (of the landmark box
centre, smoothed); each frame, observations are assigned to tracks by the Hungarian method on the mean
distance of the body landmarks (in body heights) plus a penalty for a change of size. The gate widens with
the time since the track was last seen (a person moves at most about a body height per second in the
image), so a person hidden for up to ``MAX_OCCLUSION_S`` keeps their identity; after that the track ends
and a reappearing person starts a new one. Using the whole pose rather than the box is what keeps two
people apart while they hug or cross: their boxes overlap, their joints do not. A pose is matched against the
person's last few observations, the latest first, so one pose the network reads wrong does not end the identity;
matched past it, that reading is dropped from the track. A pose left unassigned starts a
new identity only where it is not mostly inside the box of someone already on the frame: the landmark network
reads bodies into parts of people (a child's pose on an adult's legs), and followed from frame to frame such a
pose would otherwise live on as a person of its own (it did on 3dpw_courtyard_two_people_portrait).

After the clip, tracks are filtered: shorter than ``MIN_TRACK_S`` (or than half a clip shorter than that)
or with a mean box height under ``MIN_HEIGHT_SHARE`` of the frame height are background, and dropped
unless every track was asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from scipy.optimize import linear_sum_assignment

from mocap_cli.capture.detect import (
    DEFAULT_MAX_GAP_S,
    NUM_LANDMARKS,
    Track2D,
    _fill_short_gaps,
)
from mocap_cli.capture.people import FrameObservations, Observation, covered, pose_distance

MAX_OCCLUSION_S = 1.0
MIN_TRACK_S = 1.0
MIN_HEIGHT_SHARE = 0.15
# Tracks unseen for longer than this get no crop of their own (the periodic scan finds them again).
MAX_CROP_AGE_S = 0.5
_BASE_GATE = 0.35  # body heights of mean landmark distance allowed between consecutive frames
_GATE_PER_S = 1.0
_VELOCITY_SMOOTHING = 0.5
_REFERENCES = 3
# After a gap longer than this, a track takes back only a person in clothes of its colour (mean torso RGB within
# ``_SAME_CLOTHES``): on street_dance_crowd, passers-by otherwise inherit the identity of someone hidden for
# 0.5-0.7 s. Measured frame-to-frame changes of one person's torso colour: p95 0.02-0.07 on the shared clips.
_COLOUR_AFTER_S = 0.2
_SAME_CLOTHES = 0.15
_COLOUR_SMOOTHING = 0.7


@dataclass
class _Live:
    id: int
    colour: np.ndarray | None  # (3,) running mean torso RGB, see ``Observation.colour``
    positions: list[int]  # frame positions (0-based, in decode order)
    observations: list[Observation]
    times: list[float]  # time of each observation
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # px/s of the box centre

    @property
    def last_time(self) -> float:
        return self.times[-1]

    @property
    def height(self) -> float:
        return self.observations[-1].height

    def predict(self, time: float, back: int = 0) -> np.ndarray:
        """(33, 3) landmarks expected at ``time`` from the observation ``back`` places before the last (velocity
        applied for at most MAX_CROP_AGE_S)."""
        out = self.observations[-1 - back].landmarks.copy()
        out[:, :2] += self.velocity * min(time - self.times[-1 - back], MAX_CROP_AGE_S)
        return out

    def cost(self, time: float, obs: Observation) -> tuple[float, int]:
        """How far ``obs`` is from this person (pose distance plus size change) and from which of their last
        ``_REFERENCES`` observations (0 = the last): the latest one whose gate, widening with its age, it
        passes; (inf, 0) if none. Earlier ones count because one pose the network reads wrong
        (two_kids_jumping_bed: the boy's head leaves the frame and he is read as a pair of legs) must not cut a
        person off from their next good pose."""
        for back in range(min(_REFERENCES, len(self.observations))):
            ref = self.observations[-1 - back]
            c = pose_distance(self.predict(time, back), obs.landmarks, ref.height)
            c += 0.5 * abs(np.log(max(obs.height, 1.0) / max(ref.height, 1.0)))
            if c <= _BASE_GATE + _GATE_PER_S * (time - self.times[-1 - back]):
                return c, back
        return np.inf, 0

    def forget(self, count: int) -> None:
        """Drop the last ``count`` observations: readings the next one showed to be wrong."""
        if count:
            del self.positions[-count:], self.observations[-count:], self.times[-count:]


@dataclass(frozen=True)
class RecentPerson:
    """A person seen lately: where they should be now (box (4,) x0, y0, x1, y1 pixels), as last seen, and when."""

    box: np.ndarray
    last: Observation
    seen_at: float


@dataclass
class PersonTrack:
    """One identity: the frame positions it was seen on and its observation on each."""

    id: int
    positions: list[int]
    observations: list[Observation]

    def mean_height(self) -> float:
        return float(np.mean([o.height for o in self.observations]))

    def prominence(self) -> float:
        """Box area summed over the frames (the legacy single-person choice uses the same measure)."""
        return float(sum((o.box[2] - o.box[0]) * (o.box[3] - o.box[1]) for o in self.observations))


class Tracker:
    """Feed it each frame's observations in time order; ``tracks()`` returns every identity seen."""

    def __init__(self) -> None:
        self._live: list[_Live] = []
        self._done: list[_Live] = []
        self._next_id = 1

    def recent(self, time: float, max_age: float = MAX_CROP_AGE_S) -> list[RecentPerson]:
        """The people seen within ``max_age`` of ``time``, tallest first: in a crowd the scan starts many
        tracks on small background figures, and the searches (at most ``MAX_CROPS``) must go to the people in
        front, who are the ones kept."""
        recent = sorted((t for t in self._live if time - t.last_time <= max_age), key=lambda t: -t.height)
        people = []
        for t in recent:
            p = t.predict(time)
            box = np.array([p[:, 0].min(), p[:, 1].min(), p[:, 0].max(), p[:, 1].max()])
            people.append(RecentPerson(box, t.observations[-1], t.last_time))
        return people

    def update(self, position: int, time: float, people: list[Observation]) -> None:
        ended = [t for t in self._live if time - t.last_time > MAX_OCCLUSION_S]
        self._done.extend(ended)
        self._live = [t for t in self._live if t not in ended]
        cost = np.full((len(self._live), len(people)), np.inf)
        back = np.zeros(cost.shape, dtype=int)
        for i, track in enumerate(self._live):
            unseen = time - track.last_time
            for j, obs in enumerate(people):
                if unseen > _COLOUR_AFTER_S and not _same_clothes(track.colour, obs.colour):
                    continue
                cost[i, j], back[i, j] = track.cost(time, obs)
        matched: set[int] = set()
        if cost.size and np.isfinite(cost).any():
            rows, cols = linear_sum_assignment(np.where(np.isfinite(cost), cost, 1e6))
            for i, j in zip(rows, cols):
                if np.isfinite(cost[i, j]):
                    self._live[i].forget(int(back[i, j]))
                    self._extend(self._live[i], position, time, people[j])
                    matched.add(int(j))
        # A new identity starts from each person left, tallest first, unless most of their box lies in the box
        # of someone already placed on this frame: that is a part of them read as a body (a child's pose on an
        # adult's legs), or them again.
        placed = [people[j] for j in matched]
        for j in sorted(set(range(len(people))) - matched, key=lambda j: -people[j].height):
            obs = people[j]
            if not covered(obs, placed):
                self._live.append(_Live(self._next_id, obs.colour, [position], [obs], [time]))
                self._next_id += 1
                placed.append(obs)

    @staticmethod
    def _extend(track: _Live, position: int, time: float, obs: Observation) -> None:
        dt = time - track.last_time
        if dt > 0:
            last = track.observations[-1].landmarks
            old = 0.5 * (last[:, :2].min(0) + last[:, :2].max(0))
            new = 0.5 * (obs.landmarks[:, :2].min(0) + obs.landmarks[:, :2].max(0))
            velocity = _VELOCITY_SMOOTHING * track.velocity + (1 - _VELOCITY_SMOOTHING) * (new - old) / dt
            # A pose that jumps (a limb guessed differently) is not motion: no faster than the gate allows.
            limit = _GATE_PER_S * max(obs.height, 1.0)
            track.velocity = velocity * min(1.0, limit / max(float(np.linalg.norm(velocity)), 1e-9))
        if obs.colour is not None:
            track.colour = (
                obs.colour
                if track.colour is None
                else _COLOUR_SMOOTHING * track.colour + (1 - _COLOUR_SMOOTHING) * obs.colour
            )
        track.positions.append(position)
        track.observations.append(obs)
        track.times.append(time)

    def tracks(self) -> list[PersonTrack]:
        every = sorted(self._done + self._live, key=lambda t: t.id)
        return [PersonTrack(t.id, list(t.positions), list(t.observations)) for t in every]


def _same_clothes(track: np.ndarray | None, seen: np.ndarray | None) -> bool:
    """Whether a pose in clothes of colour ``seen`` may take back an identity of colour ``track`` after a gap: a
    pose whose torso is not seen cannot, where the identity's colour is known (on street_dance_crowd such a pose
    of a passer-by took the identity of the woman in black, hidden for 0.4 s)."""
    return track is None or (seen is not None and float(np.linalg.norm(track - seen)) <= _SAME_CLOTHES)


def keep_people(
    tracks: list[PersonTrack], frame_times: np.ndarray, frame_height: int, *, keep_all: bool = False
) -> list[PersonTrack]:
    """Drop background tracks (see module docstring), most prominent first."""
    clip = float(frame_times[-1] - frame_times[0]) if len(frame_times) > 1 else 0.0
    step = clip / max(len(frame_times) - 1, 1)
    min_span = min(MIN_TRACK_S, 0.5 * clip)
    kept = []
    for t in tracks:
        span = (len(t.positions) - 1) * step  # time covered by the frames it was seen on
        if keep_all or (span >= min_span - 1e-9 and t.mean_height() >= MIN_HEIGHT_SHARE * frame_height):
            kept.append(t)
    return sorted(kept, key=lambda t: -t.prominence())


def to_track2d(
    track: PersonTrack,
    observed: list[FrameObservations],
    fps: Fraction,
    size: tuple[int, int],
    max_gap: float = DEFAULT_MAX_GAP_S,
) -> Track2D:
    """One person's ``Track2D`` over the whole clip (NaN where absent; short gaps filled like ``detect``)."""
    n = len(observed)
    landmarks = np.full((n, NUM_LANDMARKS, 3), np.nan, dtype=np.float32)
    world = np.full((n, NUM_LANDMARKS, 3), np.nan, dtype=np.float32)
    visibility = np.zeros((n, NUM_LANDMARKS), dtype=np.float32)
    boxes = np.full((n, 4), np.nan, dtype=np.float32)
    detected = np.zeros(n, dtype=bool)
    for pos, obs in zip(track.positions, track.observations):
        landmarks[pos], world[pos], visibility[pos], boxes[pos] = obs.landmarks, obs.world, obs.visibility, obs.box
        detected[pos] = True
    times = np.array([f.time for f in observed], dtype=np.float64)
    filled = _fill_short_gaps(times, detected, max_gap, landmarks, world, boxes)
    return Track2D(
        fps=fps,
        frame_times=times,
        frame_indices=np.array([f.index for f in observed], dtype=np.int64),
        image_size=size,
        landmarks=landmarks,
        visibility=visibility,
        world_landmarks=world,
        detected=detected,
        filled=filled,
        boxes=boxes,
    )
