"""The preview of one run: gathers what ``render.write_preview`` needs from the pipeline's results.

Kept apart from ``pipeline.py`` so the run only calls ``render_clip_preview`` after its exports.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np

from mocap_cli.body.mesh import SkinnedMesh
from mocap_cli.capture.detect import Track2D
from mocap_cli.capture.video import VideoInfo, close_frames, iter_frames
from mocap_cli.core.motion import Motion
from mocap_cli.errors import MocapError
from mocap_cli.preview.render import Layout, PreviewInputs, write_preview
from mocap_cli.solve.camera_pose import solved_camera

_BODY_LANDMARKS = slice(11, 33)
PREVIEW_VERTICES = 1500  # MediaPipe's body points (the face points say little about the pose)


def detection_confidence(track: Track2D) -> np.ndarray:
    """(F,) mean visibility of the body landmarks on detected frames, 0 elsewhere."""
    vis = np.nan_to_num(np.asarray(track.visibility, dtype=np.float64)[:, _BODY_LANDMARKS])
    return np.where(track.detected, vis.mean(axis=1), 0.0)


def preview_mesh(motion: Motion, mesh: str | None, smpl: Path | None) -> SkinnedMesh | None:
    """The body the exports carry (``--mesh``), bound to the motion's canonical skeleton, or None. Only its
    outline is drawn (``camera_view.silhouette_mask``)."""
    from mocap_cli.body.select import mesh_for

    return mesh_for(motion, mesh, smpl)


def clip_preview_inputs(
    track: Track2D, motion: Motion, *, mesh: str | None, smpl: Path | None, warnings: list[str]
) -> PreviewInputs:
    """What the preview of ``motion`` over the clip of ``track`` shows (see ``render.PreviewInputs``)."""
    camera = solved_camera(motion.provenance, track.image_size[0], track.image_size[1])
    if camera is None:
        raise MocapError(
            "This model did not record the camera it solved, so no preview can be drawn; "
            "run without --preview or use another model."
        )
    body = preview_mesh(motion, mesh, smpl)
    return PreviewInputs(
        motion,
        camera,
        body,
        detection_confidence(track),
        np.asarray(track.detected, bool),
        np.asarray(track.frame_times, dtype=np.float64),
        tuple(warnings),
    )


def render_clip_preview(
    path: Path,
    video: Path,
    info: VideoInfo,
    track: Track2D,
    motion: Motion,
    *,
    start: float | None,
    end: float | None,
    mesh: str | None,
    smpl: Path | None,
    warnings: list[str],
    stage: Callable[[str, int | None], AbstractContextManager[Callable[..., None]]],
) -> int:
    """Write the preview of ``motion`` (the exported Motion, world root) over ``video``'s frames [start, end)
    to ``path``; ``mesh`` is the body choice of the exports (None or "none": skeleton only). ``stage`` is the
    reporter's progress stage. Returns the number of frames written."""
    inputs = clip_preview_inputs(track, motion, mesh=mesh, smpl=smpl, warnings=warnings)
    total = track.num_frames
    panel = Layout.for_source(*track.image_size).camera
    with stage("preview", total) as tick:
        # Decoded straight to the camera panel's size and OpenCV's BGR order: ffmpeg scales and converts in one
        # pass, so the full-size frame is never handed over, resized or converted in Python.
        frames = iter_frames(video, start=start, end=end, info=info, size=panel, pixel_format="bgr24")
        try:
            return write_preview(
                path, frames, track.image_size, info.fps, inputs, lambda done: tick(done, total), panels=True
            )
        finally:
            close_frames(frames)
