"""``--people all|N``: every person in the clip through the pipeline, in one shared world.

``--people largest`` (the default) never comes here: it is ``pipeline.run_clip``, unchanged. Here the clip is
decoded once for multi-person detection and tracking (``capture.people_search``, ``capture.tracking``); each kept
person then goes through the chosen model and smoothing exactly like a single-person clip, and
``solve.shared_world`` puts everyone in one camera and on one floor. A .glb or .fbx holds everyone, one armature
per person (``export.multi``); .bvh and .npz are written once per person, named ``out.person_1.bvh``,
``out.person_2.bvh``, … (people numbered by prominence: summed box area; ``export.person_files``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from mocap_cli.capture.people_search import find_people
from mocap_cli.capture.tracking import Tracker, keep_people, to_track2d
from mocap_cli.capture.video import count_frames, iter_frames, probe
from mocap_cli.core.motion import Motion
from mocap_cli.errors import MocapError
from mocap_cli.export import check_output_path
from mocap_cli.export.multi import write_people_file
from mocap_cli.export.person_files import existing_person_files, one_file_per_person, person_name, person_path
from mocap_cli.models.base import Clip
from mocap_cli.models.registry import create_model
from mocap_cli.pipeline import (
    Reporter,
    RunOptions,
    SilentReporter,
    at_output_rate,
    clip_hands,
    continuous_motion,
    smoothed_motion,
    validate,
    write_exports,
)
from mocap_cli.post.foot_lock import apply_foot_lock
from mocap_cli.settings import PeopleChoice, check_output_fps, parse_people  # noqa: F401 (re-exported)
from mocap_cli.solve.hand_ik import add_fingers


def _per_person(exports: tuple[Path, ...]) -> tuple[Path, ...]:
    """The outputs written once per person (a .glb or .fbx holds everyone in one file)."""
    return tuple(p for p in exports if one_file_per_person(p))


@dataclass(frozen=True)
class Person:
    """One row of the people listing: ID (person_N), frames seen (detected), mean box height share."""

    name: str
    track_id: int
    frames: int
    first_frame: int
    last_frame: int
    mean_height: float


@dataclass
class PeopleResult:
    frames: int
    video_fps: float
    detection_rate: float  # share of frames with at least one of the people kept
    people: list[Person]
    motions: list[Motion]
    files: list[Path]
    seconds: dict[str, float]

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


def run_people(
    video: Path, options: RunOptions, people: PeopleChoice, reporter: Reporter | None = None
) -> PeopleResult:
    reporter = reporter or SilentReporter()
    validate(video, options)
    if options.preview is not None:
        raise MocapError("--preview draws one person; leave it out with --people all|N, or use --people largest.")
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    info = probe(video)
    check_output_fps(options.fps, float(info.fps))
    model = create_model(options.model, options.settings)
    total = count_frames(info, options.start, options.end)
    if total == 0:
        raise MocapError(f"{video.name} has no frames in the chosen --start/--end range; adjust them.")
    tracker = Tracker()
    with reporter.stage("decode + detect people", total) as tick:
        observed, size = find_people(
            iter_frames(video, start=options.start, end=options.end, info=info),
            tracker,
            progress=lambda done: tick(done, total),
        )
    times = np.array([f.time for f in observed])
    kept = keep_people(tracker.tracks(), times, size[1], keep_all=False)
    if isinstance(people, int):
        kept = kept[:people]
    if not kept:
        raise MocapError(
            f"No person was found in {video.name} for at least a second; use a clip where people are fully visible."
        )
    tracks = [to_track2d(t, observed, info.fps, size) for t in kept]
    listing = [
        Person(
            person_name(i + 1),
            t.id,
            len(t.positions),
            observed[t.positions[0]].index,
            observed[t.positions[-1]].index,
            t.mean_height() / size[1],
        )
        for i, t in enumerate(kept)
    ]
    for path in _per_person(options.exports):
        for i in range(len(kept)):
            check_output_path(person_path(path, i + 1), overwrite=options.overwrite)
    seconds["decode + detect"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    motions = []
    for track in tracks:
        hands = clip_hands(video, info, track, options, reporter)
        clip = Clip(info, track, lambda: iter_frames(video, start=options.start, end=options.end, info=info))
        with reporter.stage("model", track.num_frames) as tick:
            motion = model.estimate(clip, progress=tick)
        if options.hands == "auto":
            motion = add_fingers(motion, hands)
        motions.append(continuous_motion(motion, track))
    seconds["model"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    from mocap_cli.solve.shared_world import place_people

    motions = place_people([smoothed_motion(m, options.smooth) for m in motions], tracks, options.settings.fov_degrees)
    motions = [
        apply_foot_lock(at_output_rate(m, options.fps), track, options.foot_lock) for m, track in zip(motions, tracks)
    ]
    seconds["smoothing + shared world"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    files = write_people_exports(motions, options, reporter, video.stem)
    seconds["export"] = time.perf_counter() - t0
    seen = np.zeros(len(observed), dtype=bool)
    for t in kept:
        seen[list(t.positions)] = True
    return PeopleResult(len(observed), float(info.fps), float(seen.mean()), listing, motions, files, seconds)


def write_people_exports(motions: list[Motion], options: RunOptions, reporter: Reporter, name: str) -> list[Path]:
    """Every requested file for these people (most prominent first): .glb/.fbx once with everyone, .bvh/.npz
    once per person. All or nothing: when one output fails, the files this call wrote are removed again."""
    for path in _per_person(options.exports):
        for i in range(len(motions)):
            check_output_path(person_path(path, i + 1), overwrite=options.overwrite)
    files: list[Path] = []
    try:
        for i, motion in enumerate(motions):
            motion.provenance.setdefault("name", f"{name}.{person_name(i + 1)}")
            one = replace(options, exports=tuple(person_path(p, i + 1) for p in _per_person(options.exports)))
            files.extend(write_exports(motion, one, reporter))
        for path in options.exports:
            if not one_file_per_person(path):
                write_people_file(
                    motions,
                    path,
                    preset=options.preset,
                    root=options.root,
                    mesh=options.mesh,
                    smpl=options.settings.smpl,
                    reference_pose=options.reference_pose,
                    overwrite=options.overwrite,
                )
                files.append(path)
    except BaseException:
        for path in files:
            path.unlink(missing_ok=True)
        raise
    return files


def people_sources(sources: list[Path]) -> list[Path]:
    """`mocap export`'s inputs: each .npz as given, or, where ``out.npz`` does not exist but
    ``out.person_1.npz``, … do (what ``--people all -e out.npz`` wrote), those files in person order."""
    found: list[Path] = []
    for source in sources:
        people = existing_person_files(source) if not source.exists() else []
        found.extend(people or [source])
    return found


def export_people(sources: list[Path], options: RunOptions, reporter: Reporter | None = None) -> list[Path]:
    """``mocap export a.person_1.npz a.person_2.npz -e a.fbx``: saved people (one .npz each, in one shared
    world as ``--people all`` wrote them) re-exported together without re-running, like ``run_people``
    writes them."""
    from mocap_cli.post.resample import resample_motion

    reporter = reporter or SilentReporter()
    validate(sources[0], options)
    motions = []
    for source in sources:
        if not source.is_file():
            raise MocapError(f"{source} does not exist; give the .npz files written by `mocap run --export out.npz`.")
        motion = Motion.load_npz(source)
        check_output_fps(options.fps, motion.fps)
        motions.append(motion if options.fps is None else resample_motion(motion, options.fps))
    if any(abs(m.fps - motions[0].fps) > 1e-9 for m in motions):
        raise MocapError("These motions have different frame rates; pass --fps to export them together.")
    return write_people_exports(motions, options, reporter, sources[0].stem.split(".person_")[0])
