"""A clip's MediaPipe track kept in an .npz between runs.

Detection is the slow part of a run, and the benchmarks (``benchmarks/accuracy.py --cache``,
``benchmarks/lifter_input.py``) and the fit of the training noise model (``scripts/fit_mediapipe_noise.py``)
measure the same rendered clips again and again. The file holds plain arrays only, never pickled objects: the
background key frames the camera-motion solve reads are stored flat, with one count per key pair.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction
from pathlib import Path

import numpy as np

from mocap_cli.capture.detect import Track2D, detect
from mocap_cli.capture.video import iter_frames, probe
from mocap_cli.core.atomic import atomic_path
from mocap_cli.solve.camera_motion import KeyPair

_SPECIAL = ("fps", "image_size", "names", "background")


def save_track(track: Track2D, path: Path) -> None:
    """Write ``track`` to ``path`` (.npz), atomically."""
    arrays = {f.name: getattr(track, f.name) for f in dataclasses.fields(track) if f.name not in _SPECIAL}
    arrays["fps"] = np.array([track.fps.numerator, track.fps.denominator])
    arrays["image_size"] = np.array(track.image_size)
    arrays["names"] = np.array(track.names)
    pairs = track.background
    if pairs is not None:
        arrays["bg_first"] = np.array([p.first for p in pairs], dtype=np.int64)
        arrays["bg_last"] = np.array([p.last for p in pairs], dtype=np.int64)
        arrays["bg_scale"] = np.array([p.scale for p in pairs], dtype=np.float64)
        arrays["bg_count"] = np.array([len(p.before) for p in pairs], dtype=np.int64)
        arrays["bg_before"] = np.concatenate([p.before for p in pairs]) if pairs else np.zeros((0, 2))
        arrays["bg_after"] = np.concatenate([p.after for p in pairs]) if pairs else np.zeros((0, 2))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays)


def load_track(path: Path) -> Track2D:
    """The track ``save_track`` wrote to ``path``."""
    with np.load(path, allow_pickle=False) as d:
        plain = {f.name: d[f.name] for f in dataclasses.fields(Track2D) if f.name not in _SPECIAL}
        background = None
        if "bg_count" in d.files:
            ends = np.cumsum(d["bg_count"])
            starts = ends - d["bg_count"]
            background = [
                KeyPair(int(first), int(last), d["bg_before"][a:b], d["bg_after"][a:b], float(scale))
                for first, last, scale, a, b in zip(d["bg_first"], d["bg_last"], d["bg_scale"], starts, ends)
            ]
        return Track2D(
            fps=Fraction(int(d["fps"][0]), int(d["fps"][1])),
            image_size=(int(d["image_size"][0]), int(d["image_size"][1])),
            names=tuple(str(n) for n in d["names"]),
            background=background,
            **plain,
        )


def cached_track_path(video: Path, cache: Path, start: float | None = None, end: float | None = None) -> Path:
    """Where ``video``'s track is kept in ``cache``: keyed by the file's folder, name, size and mtime and the
    time range, so a changed file is detected again."""
    st = video.stat()
    return cache / f"{video.parent.name}_{video.stem}_{st.st_size}_{int(st.st_mtime)}_{start}_{end}.npz"


def detect_cached(video: Path, cache: Path, start: float | None = None, end: float | None = None) -> Track2D:
    """``detect`` on ``video`` (between ``start`` and ``end`` seconds), read from ``cache`` when it was done
    before."""
    path = cached_track_path(video, cache, start, end)
    if path.is_file():
        return load_track(path)
    info = probe(video)
    track = detect(iter_frames(video, start=start, end=end, info=info), info)
    cache.mkdir(parents=True, exist_ok=True)
    save_track(track, path)
    return track
