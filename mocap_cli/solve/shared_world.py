"""Several people in one world: one camera, one floor, each person where the camera saw them.

Each model places its person on its own (root path relative to where the clip starts, own floor). Here every
person's hip path is solved again in the *same* pinhole camera (``solve.camera``) from their 2D landmarks and
MediaPipe's metric 3D landmarks; the depth between people therefore rests on MediaPipe's metric body size,
i.e. an adult body-size prior (a child is placed somewhat too far away). Each person keeps their model's
motion and own floor contact (height 0, so everyone stands on one floor) and is shifted horizontally so its
median position is the camera's; finally everyone is shifted together so the most prominent person starts
above the world origin.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mocap_cli.capture.detect import Track2D
from mocap_cli.core.motion import Motion
from mocap_cli.solve.camera import (
    CAMERA_TO_WORLD,
    Pinhole,
    interpolate_nans,
    solve_translation,
)

_BODY = list(range(11, 33))


def hip_path(track: Track2D, camera: Pinhole) -> np.ndarray:
    """(F, 3) world-axis (Y up) position of the mid-hip seen by ``camera``, NaN where never solvable."""
    weights = np.where(track.detected[:, None], np.clip(track.visibility[:, _BODY], 0.0, 1.0), 0.0)
    weights = np.where(weights > 0.5, weights, 0.0)
    world = np.nan_to_num(track.world_landmarks[:, _BODY])
    pixels = np.nan_to_num(track.landmarks[:, _BODY, :2])
    cam = solve_translation(world, pixels, weights, camera)
    if np.isfinite(cam).all(axis=1).any():
        cam = interpolate_nans(cam)
    return cam @ CAMERA_TO_WORLD.T


def place_people(motions: list[Motion], tracks: list[Track2D], fov_degrees: float) -> list[Motion]:
    """The motions (one per track, most prominent first) moved into one shared world."""
    width, height = tracks[0].image_size
    camera = Pinhole.from_fov(width, height, fov_degrees)
    placed: list[Motion] = []
    for motion, track in zip(motions, tracks):
        seen = hip_path(track, camera)
        ok = np.isfinite(seen).all(axis=1)
        if not ok.any():
            placed.append(motion)
            continue
        n = min(len(seen), motion.num_frames)
        both = ok[:n]
        shift = np.zeros(3)
        shift[[0, 2]] = np.median(seen[:n][both][:, [0, 2]] - motion.root_translation[:n][both][:, [0, 2]], axis=0)
        placed.append(motion.with_rotations(motion.rotations, motion.root_translation + shift))
    origin = placed[0].root_translation[0] * np.array([1.0, 0.0, 1.0])
    out = []
    for i, m in enumerate(placed):
        m = m.with_rotations(m.rotations, m.root_translation - origin)
        out.append(replace(m, provenance={**m.provenance, "person": f"person_{i + 1}"}))
    return out
