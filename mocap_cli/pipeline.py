"""One clip through the whole pipeline: decode+detect → model → smoothing → export.

The CLI (``mocap run``) and the batch runner share this; they differ only in how they report progress.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from mocap_cli.body.select import MeshChoice
from mocap_cli.capture.detect import Track2D, detect, small_person_warning
from mocap_cli.capture.hands import HandTrack, detect_hands
from mocap_cli.capture.video import VideoInfo, count_frames, iter_frames, probe
from mocap_cli.core.motion import Motion
from mocap_cli.errors import MocapError
from mocap_cli.export import ExportOptions, check_output_path, export_motion
from mocap_cli.export.prepare import prepare_export
from mocap_cli.export.root_motion import RootMode
from mocap_cli.models.base import Clip, ModelSettings
from mocap_cli.models.registry import create_model
from mocap_cli.post.continuity import hold_lost_ends, make_continuous
from mocap_cli.post.foot_lock import apply_foot_lock
from mocap_cli.post.resample import is_constant_rate, resample_motion
from mocap_cli.post.smoothing import load_smoothing_preset, smooth_motion
from mocap_cli.preview.paths import check_preview_path
from mocap_cli.settings import DEFAULTS, FootLock, HandsMode, RunSettings, check_output_fps
from mocap_cli.solve.hand_ik import add_fingers

# A clip whose person is found in fewer frames than this is still exported, with a warning.
LOW_DETECTION_RATE = 0.6


@dataclass(frozen=True)
class RunOptions:
    """One clip's request: output paths plus the pipeline's view of ``settings.RunSettings`` (built by
    ``settings.build_run_options``; the defaults are the settings' own)."""

    exports: tuple[Path, ...]
    model: str = DEFAULTS.model
    start: float | None = DEFAULTS.start
    end: float | None = DEFAULTS.end
    fps: float | None = DEFAULTS.fps
    smooth: str = DEFAULTS.smooth
    overwrite: bool = DEFAULTS.overwrite
    settings: ModelSettings = field(default_factory=ModelSettings)
    preset: str = DEFAULTS.preset  # rig preset for BVH/GLB/FBX (presets/rig/<name>.toml)
    root: RootMode = DEFAULTS.root
    mesh: MeshChoice = DEFAULTS.mesh  # GLB/FBX only
    foot_lock: FootLock = DEFAULTS.foot_lock
    reference_pose: str = DEFAULTS.reference_pose  # none | t | a (export.reference_pose)
    preview: Path | None = None  # --preview out.mp4 (mocap_cli.preview)
    hands: HandsMode = DEFAULTS.hands  # auto: 30 finger joints from the hand stage; off: 24 joints


@dataclass
class RunResult:
    video: VideoInfo
    motion: Motion
    frames: int
    detection_rate: float
    files: list[Path]
    seconds: dict[str, float]
    warnings: list[str]
    filled_frames: int = 0  # frames missing from the video (dropped or undecodable) filled by interpolation

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())


class StageTicker(Protocol):
    def __call__(self, done: int, total: int | None = None) -> None: ...


class Reporter(Protocol):
    """Receives progress; ``stage`` is a context manager yielding a ticker (frames done, total)."""

    def stage(self, name: str, total: int | None) -> AbstractContextManager[StageTicker]: ...


class SilentReporter:
    @contextmanager
    def stage(self, name: str, total: int | None) -> Iterator[StageTicker]:
        yield lambda done, total=None: None


def validate(video: Path, options: RunOptions) -> None:
    """Checks that need no decoding, run before any work so bad input fails at once."""
    if not options.exports:
        raise MocapError("No output given; add --export FILE (e.g. --export out.glb).")
    if len(set(p.resolve() for p in options.exports)) != len(options.exports):
        raise MocapError("The same --export path is given twice; give each output once.")
    for path in options.exports:
        check_output_path(path, overwrite=options.overwrite)
    RunSettings.from_run_options(options).validate()
    if options.preview is not None:
        check_preview_path(options.preview, overwrite=options.overwrite, taken=(video, *options.exports))


def decode_and_detect(video: Path, info: VideoInfo, options: RunOptions, reporter: Reporter) -> Track2D:
    total = count_frames(info, options.start, options.end)
    if total == 0:
        raise MocapError(
            f"{video.name} has no frames between {options.start or 0:g} s and "
            f"{'the end' if options.end is None else f'{options.end:g} s'} (it is {info.duration:.2f} s long); "
            "adjust --start/--end."
        )
    with reporter.stage("decode + detect", total) as tick:
        frames = iter_frames(video, start=options.start, end=options.end, info=info)
        track = detect(frames, info, progress=lambda done: tick(done, total))
    if not np.any(track.detected):
        raise MocapError(f"No person was found in {video.name}; use a clip where one person is fully visible.")
    return track


def run_clip(video: Path, options: RunOptions, reporter: Reporter | None = None) -> RunResult:
    reporter = reporter or SilentReporter()
    validate(video, options)
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    info = probe(video)
    check_output_fps(options.fps, float(info.fps))
    model = create_model(options.model, options.settings)  # fails early if weights are missing
    track = decode_and_detect(video, info, options, reporter)
    seconds["decode + detect"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    hands = clip_hands(video, info, track, options, reporter)
    if hands is not None:
        seconds["hands"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    clip = Clip(info, track, lambda: iter_frames(video, start=options.start, end=options.end, info=info))
    with reporter.stage("model", track.num_frames) as tick:
        motion = model.estimate(clip, progress=tick)
    if options.hands == "auto":
        motion = add_fingers(motion, hands)
    motion = continuous_motion(motion, track)
    filled = max(0, motion.num_frames - track.num_frames)
    seconds["model"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with reporter.stage("smoothing", motion.num_frames) as tick:
        motion = at_output_rate(smoothed_motion(motion, options.smooth), options.fps)
        tick(motion.num_frames)
    seconds["smoothing"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    with reporter.stage("foot lock", motion.num_frames) as tick:
        motion = apply_foot_lock(motion, track, options.foot_lock)
        tick(motion.num_frames)
    seconds["foot lock"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    motion.provenance.setdefault("name", video.stem)
    files = write_exports(motion, options, reporter)
    seconds["export"] = time.perf_counter() - t0

    rate = float(np.mean(track.detected))
    warnings = []
    if rate < LOW_DETECTION_RATE:
        warnings.append(f"the person was detected in only {rate:.0%} of frames; gaps were interpolated")
    if (small := small_person_warning(track)) is not None:
        warnings.append(small)
    if filled:
        warnings.append(
            f"{filled} frame(s) were missing from the video or could not be decoded (damaged file?); "
            "they were interpolated"
        )
    if options.preview is not None:
        t0 = time.perf_counter()
        files.append(write_clip_preview(video, info, track, motion, options, warnings, reporter))
        seconds["preview"] = time.perf_counter() - t0
    return RunResult(info, motion, track.num_frames, rate, files, seconds, warnings, filled)


def clip_hands(
    video: Path, info: VideoInfo, track: Track2D, options: RunOptions, reporter: Reporter
) -> HandTrack | None:
    """The tracked person's hands (``--hands auto``; a second decode of the clip), else None."""
    if options.hands != "auto":
        return None
    with reporter.stage("hands", track.num_frames) as tick:
        return detect_hands(
            iter_frames(video, start=options.start, end=options.end, info=info),
            track,
            progress=lambda done: tick(done, track.num_frames),
        )


def continuous_motion(motion: Motion, track: Track2D) -> Motion:
    """A model's motion on the video's constant frame rate, with no snaps and lost ends held
    (``post.continuity``): applied whatever the smoothing."""
    fps = float(track.fps)
    if not is_constant_rate(track.frame_times, fps):
        motion = resample_motion(motion, fps, track.frame_times)
    return make_continuous(motion)


def smoothed_motion(motion: Motion, smooth: str) -> Motion:
    """The ``--smooth`` preset applied; frames where the person was lost keep the nearest confident pose."""
    return hold_lost_ends(smooth_motion(motion, load_smoothing_preset(smooth)))


def at_output_rate(motion: Motion, fps: float | None) -> Motion:
    """``--fps``: resampled to the output rate when one is asked for and differs."""
    if fps is not None and abs(fps - motion.fps) > 1e-9:
        return resample_motion(motion, fps)
    return motion


def write_clip_preview(
    video: Path,
    info: VideoInfo,
    track: Track2D,
    motion: Motion,
    options: RunOptions,
    warnings: list[str],
    reporter: Reporter,
) -> Path:
    """``--preview``: the exported motion drawn over the clip; the body mesh only when a GLB/FBX carries one."""
    from mocap_cli.preview.clip import render_clip_preview

    assert options.preview is not None
    check_preview_path(options.preview, overwrite=options.overwrite)
    needs_mesh = any(p.suffix.lower() in (".glb", ".fbx") for p in options.exports)
    render_clip_preview(
        options.preview,
        video,
        info,
        track,
        motion,
        start=options.start,
        end=options.end,
        mesh=options.mesh if needs_mesh else "none",
        smpl=options.settings.smpl,
        warnings=warnings,
        stage=reporter.stage,
    )
    return options.preview


def write_exports(motion: Motion, options: RunOptions, reporter: Reporter) -> list[Path]:
    """Write every requested file. The raw Motion goes to .npz (re-exportable); the other formats get the
    motion prepared once (root mode, rig preset, body mesh), so they all describe the same animation.
    All or nothing: when one output fails, the ones this call created are removed again."""
    created: list[Path] = []
    try:
        return _write_each(motion, options, reporter, created)
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise


def _write_each(motion: Motion, options: RunOptions, reporter: Reporter, created: list[Path]) -> list[Path]:
    files: list[Path] = []
    needs_mesh = any(p.suffix.lower() in (".glb", ".fbx") for p in options.exports)
    prepared: tuple[Motion, ExportOptions] | None = None
    with reporter.stage("export", len(options.exports)) as tick:
        for i, path in enumerate(options.exports):
            check_output_path(path, overwrite=options.overwrite)
            existed = path.exists()
            if path.suffix.lower() == ".npz":
                export_motion(motion, path, overwrite=options.overwrite)
            else:
                if prepared is None:
                    prepared = prepare_export(
                        motion,
                        preset=options.preset,
                        root=options.root,
                        mesh=options.mesh if needs_mesh else "none",
                        smpl=options.settings.smpl,
                        reference_pose=options.reference_pose,
                    )
                export_motion(prepared[0], path, prepared[1], overwrite=options.overwrite)
            if not existed:  # only once written by us: a file another process created meanwhile is not ours
                created.append(path)
            files.append(path)
            tick(i + 1)
    return files


def export_existing(source: Path, options: RunOptions, reporter: Reporter | None = None) -> list[Path]:
    """``mocap export``: re-export a saved .npz Motion (optionally resampled) without re-running."""
    reporter = reporter or SilentReporter()
    if not source.is_file():
        raise MocapError(f"{source} does not exist; give the .npz written by `mocap run --export out.npz`.")
    validate(source, options)
    motion = Motion.load_npz(source)
    check_output_fps(options.fps, motion.fps)
    if options.fps is not None:
        motion = resample_motion(motion, options.fps)
    return write_exports(motion, options, reporter)
