"""Compose the preview frames and encode them: source frames stream in, H.264 frames stream out.

Memory stays flat in the clip's length: one decoded frame, one composed frame and a few skinned body poses are
held at a time; the decoder and the encoder are two ffmpeg processes (the binary ``capture.video`` uses) that
run alongside the drawing. The file is written to a temporary name in the output folder and renamed when
complete, so a failure never leaves a half-written preview or damages an existing one.

Layout (even sizes, as yuv420p needs): the source frame (scaled to at most ``MAX_HEIGHT`` rows) on the left,
the side view (square) on the right, the timeline under both.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from mocap_cli.body.mesh import SkinnedMesh
from mocap_cli.body.select import mesh_skeleton
from mocap_cli.body.skinning import skin
from mocap_cli.capture.video import Frame, ffmpeg_executable
from mocap_cli.core.motion import Motion
from mocap_cli.errors import MocapError
from mocap_cli.preview.camera_view import (
    SILHOUETTE,
    SILHOUETTE_ALPHA,
    SkeletonStyle,
    body_parts,
    draw_skeleton,
    pixels_in_panel,
    silhouette,
    tint,
)
from mocap_cli.preview.overlap import Feeder, Prefetch
from mocap_cli.preview.side_view import SideView
from mocap_cli.preview.timeline import Timeline
from mocap_cli.solve.camera_pose import SolvedCamera

# The camera panel is at most this many rows: enough to judge a pose, and it keeps drawing and H.264 encoding
# well below the cost of the run itself.
MAX_HEIGHT = 540
# x264 ``ultrafast`` with its deblocking filter back on, at CRF 25: on composed 720p previews this has a higher
# PSNR than ``superfast`` at CRF 23 (41.5 against 41.3 dB) for half the encoder's CPU time, at a third more
# bytes. One encoder thread: the frame is small, and on a busy machine x264's extra threads cost CPU (~20 %)
# without shortening a run whose drawing and decoding keep the other cores busy.
X264_OPTIONS = ("-preset", "ultrafast", "-x264-params", "deblock=1", "-crf", "25", "-threads", "1")
_SKIN_CHUNK = 16  # body poses skinned at once
_TEXT = (235, 235, 235)


@dataclass(frozen=True)
class PreviewInputs:
    """What the preview shows. ``motion`` is the exported Motion (after smoothing and resampling; canonical
    skeleton, world root), ``camera`` the camera it was solved with (its pose may be one per video frame),
    ``mesh`` the body bound to its skeleton (or None), and per video frame (F,): the detection confidence,
    whether the person was detected, and each frame's time in seconds from the first frame. ``warnings`` are
    the run's warnings."""

    motion: Motion
    camera: SolvedCamera
    mesh: SkinnedMesh | None
    detection: np.ndarray
    detected: np.ndarray
    frame_times: np.ndarray
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layout:
    """Panel sizes (W, H) in the composed frame; ``scale`` maps source pixels to the camera panel's (x, y)."""

    source: tuple[int, int]
    camera: tuple[int, int]
    side: tuple[int, int]
    timeline: tuple[int, int]

    @classmethod
    def for_source(cls, width: int, height: int) -> Layout:
        s = min(1.0, MAX_HEIGHT / height)
        cam = (_even(width * s), _even(height * s))
        side = (cam[1], cam[1])
        strip = (cam[0] + side[0], _even(max(16, cam[1] / 24)))
        return cls((width, height), cam, side, strip)

    @property
    def size(self) -> tuple[int, int]:
        return self.camera[0] + self.side[0], self.camera[1] + self.timeline[1]

    @property
    def scale(self) -> np.ndarray:
        return np.array([self.camera[0] / self.source[0], self.camera[1] / self.source[1]])


def _even(x: float) -> int:
    return max(2, round(x / 2.0) * 2)


def motion_samples(frame_times: np.ndarray, fps: float, num_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each video frame (times (F,) seconds), the motion frames around it and the blend: (i0, i1, alpha).

    Motion frame k is at k / fps from the first video frame (``post.resample`` keeps that origin)."""
    k = (np.asarray(frame_times, dtype=np.float64) - frame_times[0]) * fps
    k = np.clip(k, 0.0, num_frames - 1)
    i0 = np.floor(k + 1e-6).astype(int)
    i0 = np.minimum(i0, num_frames - 1)
    i1 = np.minimum(i0 + 1, num_frames - 1)
    alpha = np.clip(k - i0, 0.0, 1.0)
    return i0, i1, alpha


def planted_contacts(motion: Motion) -> tuple[np.ndarray, tuple[int, ...]] | None:
    """(F, K) planted flags (probability ≥ 0.5) and the K joint indices they belong to, from the motion's ground
    contacts (``Motion.contacts`` (F, K) with ``Motion.contact_joints`` naming the columns); None without them."""
    contacts = getattr(motion, "contacts", None)
    names = tuple(getattr(motion, "contact_joints", ()))
    if contacts is None or not names:
        return None
    contacts = np.asarray(contacts)
    known = [k for k, n in enumerate(names) if n in motion.skeleton.names]
    if contacts.shape != (motion.num_frames, len(names)) or not known:
        return None
    return contacts[:, known] >= 0.5, tuple(motion.skeleton.index(names[k]) for k in known)


@dataclass
class DrawnFrame:
    """One composed frame and what was drawn on it: ``joints`` (J, 2) the skeleton's joint centres in the
    composed frame's pixels (the camera panel starts at (0, 0)), as passed to the drawing calls."""

    image: np.ndarray
    joints: np.ndarray


class PreviewPainter:
    """Draws composed preview frames one at a time, in order (frame ``i`` of the video)."""

    def __init__(self, inputs: PreviewInputs, source_size: tuple[int, int]) -> None:
        self.inputs = inputs
        self.motion = inputs.motion
        self.layout = Layout.for_source(*source_size)
        self.style = SkeletonStyle.for_height(self.layout.camera[1])
        m = self.motion
        self.i0, self.i1, self.alpha = motion_samples(inputs.frame_times, m.fps, m.num_frames)
        self.side = SideView(
            m.joints, m.root_translation, inputs.camera.pose, self.layout.side, m.skeleton.parents, m.skeleton.names
        )
        self.timeline = Timeline(inputs.detection, inputs.detected, self.layout.timeline)
        self.contacts = planted_contacts(m)
        self._skinned: dict[int, np.ndarray] = {}
        self._mesh_skeleton = mesh_skeleton(m.skeleton) if inputs.mesh is not None else None
        self._parts = [] if inputs.mesh is None else body_parts(inputs.mesh.joints, inputs.mesh.weights)
        for n, warning in enumerate(inputs.warnings[:3]):  # drawn once into the side view's fixed background
            _label(
                self.side.background_path,
                f"warning: {warning}"[: max(10, self.layout.side[0] // 8)],
                (8, self.layout.side[1] - 12 - 18 * n),
                0.4,
            )

    def _pose(self, i: int) -> tuple[int, np.ndarray, np.ndarray]:
        """The motion frame nearest video frame ``i``, the joints (J, 3) at the frame's time and confidence (J,)."""
        i0, i1, a = int(self.i0[i]), int(self.i1[i]), float(self.alpha[i])
        joints = (1.0 - a) * self.motion.joints[i0] + a * self.motion.joints[i1]
        conf = (
            np.minimum(self.motion.confidence[i0], self.motion.confidence[i1]) if a > 0 else self.motion.confidence[i0]
        )
        return (i1 if a >= 0.5 else i0), joints, conf

    def _body(self, k: int) -> np.ndarray:
        """Skinned body vertices (V, 3) for motion frame ``k``; poses are skinned ``_SKIN_CHUNK`` at a time."""
        if k not in self._skinned:
            assert self.inputs.mesh is not None and self._mesh_skeleton is not None
            stop = min(k + _SKIN_CHUNK, self.motion.num_frames)
            verts = skin(
                self.inputs.mesh,
                self._mesh_skeleton,
                self.motion.rotations[k:stop],
                self.motion.root_translation[k:stop],
            )
            self._skinned = {k + n: v for n, v in enumerate(verts)}
        return self._skinned[k]

    def paint(self, i: int, image_rgb: np.ndarray) -> DrawnFrame:
        """Compose video frame ``i`` from its decoded RGB image (H, W, 3) at any size."""
        out, cam = self._canvas()
        if (image_rgb.shape[1], image_rgb.shape[0]) == self.layout.camera:
            cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR, dst=cam)
        else:
            cv2.cvtColor(
                cv2.resize(image_rgb, self.layout.camera, interpolation=cv2.INTER_LINEAR), cv2.COLOR_RGB2BGR, dst=cam
            )
        return self._draw(i, out, cam)

    def paint_panel(self, i: int, panel_bgr: np.ndarray) -> DrawnFrame:
        """Compose video frame ``i`` from its image already at the camera panel's size, in BGR (what
        ``iter_frames(size=..., pixel_format="bgr24")`` yields: ffmpeg scales and converts in one pass, so no
        resize or conversion here)."""
        out, cam = self._canvas()
        if (panel_bgr.shape[1], panel_bgr.shape[0]) != self.layout.camera:
            raise ValueError(
                f"panel frame is {panel_bgr.shape[1]}x{panel_bgr.shape[0]}, expected "
                f"{self.layout.camera[0]}x{self.layout.camera[1]}"
            )
        cam[:] = panel_bgr
        return self._draw(i, out, cam)

    def _canvas(self) -> tuple[np.ndarray, np.ndarray]:
        """A fresh composed frame (H, W, 3) and its camera panel (a view)."""
        width, height = self.layout.size
        out = np.empty((height, width, 3), dtype=np.uint8)
        return out, out[: self.layout.camera[1], : self.layout.camera[0]]

    def _draw(self, i: int, out: np.ndarray, cam: np.ndarray) -> DrawnFrame:
        """Draw everything for video frame ``i`` over ``cam`` (holding the source frame) and the other panels."""
        lay = self.layout
        k, joints, conf = self._pose(min(i, len(self.i0) - 1))
        camera = self.inputs.camera.at(i)  # a turning camera has a pose per video frame
        if self.inputs.mesh is not None:
            verts, _ = camera.project(self._body(k))
            mask, (x0, y0) = silhouette(pixels_in_panel(verts, lay.scale), self._parts, lay.camera)
            tint(cam[y0 : y0 + mask.shape[0], x0 : x0 + mask.shape[1]], mask, SILHOUETTE, SILHOUETTE_ALPHA)
        pixels = pixels_in_panel(camera.project(joints)[0], lay.scale)
        draw_skeleton(cam, pixels, conf, self.motion.skeleton.parents, self.motion.skeleton.names, self.style)
        t = float(self.inputs.frame_times[min(i, len(self.inputs.frame_times) - 1)] - self.inputs.frame_times[0])
        _label(cam, f"frame {i}  {t:6.2f} s", (8, 20))
        planted = None if self.contacts is None else self.contacts[0][k]
        side = self.side.draw(k, joints, conf, planted, () if self.contacts is None else self.contacts[1])
        out[: lay.side[1], lay.camera[0] :] = side
        out[lay.camera[1] :, :] = self.timeline.draw(i)
        return DrawnFrame(out, pixels)


def _label(image: np.ndarray, text: str, origin: tuple[int, int], size: float = 0.5) -> None:
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, size, _TEXT, 1, cv2.LINE_AA)


class Encoder:
    """An ffmpeg process turning composed BGR frames into an H.264 (yuv420p) MP4 at ``fps``, written to a
    temporary file next to ``path`` and renamed onto it by ``finish``; ``abort`` removes everything.

    Frames are converted to yuv420p by OpenCV before the pipe (SIMD, and half the bytes to hand over) rather than
    by ffmpeg's swscale, which took as long as the encoding itself. Both use the BT.601 limited-range matrix, the
    one the stream is tagged with (``smpte170m``, ``tv``) so players convert back with it."""

    def __init__(self, path: Path, size: tuple[int, int], fps: Fraction) -> None:
        self.path = path
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent or Path("."))
        os.close(fd)
        self.tmp = Path(tmp)
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - held until finish/abort
        cmd = [
            ffmpeg_executable(),
            "-hide_banner",
            "-nostats",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-s",
            f"{size[0]}x{size[1]}",
            "-framerate",
            f"{fps.numerator}/{fps.denominator}",
            "-i",
            "pipe:0",
            "-an",
            "-c:v",
            "libx264",
            *X264_OPTIONS,
            "-pix_fmt",
            "yuv420p",
            "-colorspace",
            "smpte170m",
            "-color_range",
            "tv",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            str(self.tmp),
        ]
        try:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.log)
        except OSError as exc:
            self.tmp.unlink(missing_ok=True)
            raise MocapError(
                f"Could not run ffmpeg to write the preview ({exc.__class__.__name__}); check the ffmpeg install."
            ) from exc

    def write(self, image: np.ndarray) -> None:
        """Encode one composed frame (H, W, 3) BGR uint8, H and W even."""
        yuv = cv2.cvtColor(image, cv2.COLOR_BGR2YUV_I420)  # (3H/2, W): Y, then U and V quarter planes
        try:
            self.proc.stdin.write(yuv.data)  # type: ignore[union-attr]
        except BrokenPipeError:
            self.proc.wait()
            raise MocapError(
                f"ffmpeg stopped while writing the preview ({self._error()}); "
                "check the disk space and the ffmpeg install."
            ) from None

    def _error(self) -> str:
        self.log.seek(0)
        lines = [ln for ln in self.log.read().decode("utf-8", "replace").splitlines() if ln.strip()]
        return lines[-1].strip().rstrip(".") if lines else f"exit code {self.proc.returncode}"

    def finish(self) -> None:
        self.proc.stdin.close()  # type: ignore[union-attr]
        if self.proc.wait() != 0:
            raise MocapError(f"ffmpeg could not encode the preview ({self._error()}); check the ffmpeg install.")
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, self.path)
        self.log.close()

    def abort(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.tmp.unlink(missing_ok=True)
        self.log.close()


def write_preview(
    path: Path,
    frames: Iterator[Frame],
    source_size: tuple[int, int],
    fps: Fraction,
    inputs: PreviewInputs,
    progress: Callable[[int], None] | None = None,
    *,
    panels: bool = False,
) -> int:
    """Stream ``frames`` (the clip decoded again, in order) through the painter into ``path``; returns the number
    of frames written. ``frames`` hold RGB images of ``source_size``, or with ``panels`` BGR images already at
    the camera panel's size (``Layout.for_source(*source_size).camera``, as ``iter_frames(size=...,
    pixel_format="bgr24")`` decodes them). Decoding, drawing and encoding overlap (``overlap``); the file appears
    only when complete. The caller closes ``frames`` afterwards."""
    painter = PreviewPainter(inputs, source_size)
    paint = painter.paint_panel if panels else painter.paint
    encoder = Encoder(path, painter.layout.size, fps)
    count = 0
    try:
        feeder: Feeder[np.ndarray] = Feeder(encoder.write)
        try:
            with Prefetch(frames) as decoded:
                for frame in decoded:
                    feeder.put(paint(count, frame.image).image)
                    count += 1
                    if progress:
                        progress(count)
        finally:
            feeder.close()
        if count == 0:
            raise MocapError("The video could not be decoded a second time for the preview; check the file.")
        encoder.finish()
    except BaseException:
        encoder.abort()
        raise
    return count
