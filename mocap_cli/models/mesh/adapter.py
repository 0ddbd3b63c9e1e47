"""Video mesh networks (MAED, INT; later UNSPAT): person crops → SMPL rotations → a ``Motion``.

Stages:

1. Crop windows from the MediaPipe track: square boxes around the visible 2D landmarks, smoothed over time,
   scaled by the model's evaluation crop scale (``crops.CROP_SCALE``: MAED 1.3, INT 1.1).
2. A second streaming decode of the clip (``clip.frames()``) warps each frame's window to 224×224 on the model
   device, a few frames at a time, just ahead of the network (``StreamingCrops``). Full frames are never
   accumulated; at most ``(windows_per_batch + 1) × 128`` crops are held (≈ 154 MB float32 for one window),
   whatever the clip length.
3. The authors' evaluation schedule (``mesh_inference.SCHEDULES``: 128-frame windows of interleaved clips).
4. SMPL local rotations go 1:1 onto the canonical skeleton (same joints, same order). The root orientation is
   turned from the networks' y-down camera frame into our Y-up world by ``diag(1, −1, −1)``; the root path
   comes from the weak-perspective crop camera through a pinhole camera (``crop_cam_to_translation``) whose
   focal length follows from ``--fov`` (the networks only predict scale; a wrong field of view stretches
   depth, not the pose). The SMPL model-frame origin and the pelvis differ by a constant offset (the rest
   pelvis position), which grounding removes, so the translation is used as the pelvis path.
5. A turning camera (pan, orbit: ``Clip.camera_motion``) is undone as for the other models: the root orientation
   and path are carried into the first frame's camera axes (``posing.undo_camera_rotation``).
6. Gravity alignment (median body up → +Y, at most 45°) and grounding, as the other models.

Skeleton: with the user's SMPL model the subject's own rest skeleton from the clip's median betas
(``body.smpl_body.smpl_rest``); SMPL's zero pose is that skeleton's rest, so the rotations are exact. Without
SMPL files the canonical skeleton with default proportions: its rest is an exact T-pose while SMPL's zero
pose has slightly drooping arms and parted legs, so limbs are off by those few degrees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mocap_cli import __version__
from mocap_cli.capture.detect import Track2D
from mocap_cli.capture.video import Frame, close_frames
from mocap_cli.core.motion import Motion
from mocap_cli.core.rotations import quat_continuous, quat_from_matrix
from mocap_cli.core.skeleton import Skeleton, canonical_skeleton
from mocap_cli.errors import MocapError
from mocap_cli.models.base import Clip, ModelSettings, Progress, Readiness
from mocap_cli.models.mesh.crops import (
    CROP_SCALE,
    CROP_SIZE,
    SquareBoxes,
    boxes_from_landmarks,
    crop_cam_to_translation,
    openpose_points,
    smooth_boxes,
    warp_crops,
)
from mocap_cli.models.mesh.inference import SCHEDULES, ClipSchedule, MeshSequence, run_clip_model
from mocap_cli.solve.camera import CAMERA_TO_WORLD, Pinhole, rotate_points
from mocap_cli.solve.camera_motion import CameraMotion
from mocap_cli.solve.camera_pose import CameraPose, grounding_shift, record_camera_pose
from mocap_cli.solve.posing import (
    camera_origins,
    ground_motion,
    root_path_in_first_camera,
    tilt_rotations,
    world_tilt,
)

DECODE_BATCH = 8  # frames warped together (bounded: 8 full-HD frames ≈ 50 MB)
# Smallest weak-perspective scale believed: trained networks give s ≈ 0.5–1.5 for a person filling the crop;
# a scale near or below zero (a failed frame) would put the body at infinite depth.
MIN_CAM_SCALE = 0.05


@dataclass(frozen=True)
class MeshNetSpec:
    """What differs between the mesh networks."""

    name: str
    load: Callable[[Path], nn.Module]
    crop_scale: float
    schedule: ClipSchedule
    crop_size: int = 224
    weights_family: str = ""  # weights registry model name (default: ``name``)


def _load_maed(path: Path) -> nn.Module:
    from mocap_cli.nets.maed import load_maed

    return load_maed(path)


def _load_int(path: Path) -> nn.Module:
    from mocap_cli.nets.int_hmr import load_int

    return load_int(path)


def mesh_net_specs() -> dict[str, MeshNetSpec]:
    """The mesh networks this adapter runs (UNSPAT adds its row here)."""
    specs = [
        MeshNetSpec("maed", _load_maed, CROP_SCALE["maed"], SCHEDULES["maed"], CROP_SIZE["maed"]),
        MeshNetSpec("int", _load_int, CROP_SCALE["int"], SCHEDULES["int"], CROP_SIZE["int"]),
    ]
    return {s.name: s for s in specs}


# --------------------------------------------------------------------------------------------- resources


def weights_path(spec: MeshNetSpec, settings: ModelSettings) -> Path:
    """``--weights`` (file or registry name), else an installed variant of the model (its default first)."""
    from mocap_cli.weights.cache import choose_weights

    return choose_weights(spec.weights_family or spec.name, settings.weights).path


def smpl_path(settings: ModelSettings) -> Path | None:
    """The SMPL model file (``--smpl``, ``$MOCAP_SMPL_DIR`` or the imported cache), or None."""
    from mocap_cli.body.smpl_files import find_smpl

    return find_smpl(settings.smpl)


def readiness(name: str, settings: ModelSettings) -> Readiness:
    spec = mesh_net_specs()[name]
    try:
        path = weights_path(spec, settings)
    except MocapError as exc:
        return Readiness(False, str(exc).rstrip("."))
    try:
        smpl = smpl_path(settings)
    except MocapError as exc:
        return Readiness(False, str(exc).rstrip("."))
    body = (
        f"SMPL body from {smpl}"
        if smpl
        else "no SMPL model: default proportions, no SMPL mesh (see `mocap smpl import`)"
    )
    return Readiness(True, f"weights {path}; {body}")


# --------------------------------------------------------------------------------------------- crops


def crop_windows(track: Track2D, crop_scale: float) -> SquareBoxes:
    """The crop window of every frame: smoothed boxes around MediaPipe's OpenPose-18 points (as the authors'
    3DPW boxes, ``crops.openpose_points``) × the model's crop scale."""
    boxes = boxes_from_landmarks(*openpose_points(track.landmarks[..., :2], track.visibility))
    return smooth_boxes(boxes).scaled(crop_scale)


class StreamingCrops:
    """Crops of a frame stream on demand, for ``run_clip_model``'s ``(start, stop)`` callable.

    The schedule asks for ranges whose starts never decrease (the last window's reflection padding reaches
    back at most one window), so crops before the latest ``start`` are dropped and frames are decoded just
    far enough ahead. Memory: the crops of one requested range, plus ``DECODE_BATCH`` frames being warped.
    """

    def __init__(
        self,
        frames: Iterator[Frame],
        windows: SquareBoxes,
        size: int,
        device: torch.device | str,
        progress: Progress | None = None,
    ) -> None:
        self._frames = frames
        self._windows = windows
        self._size = size
        self._device = torch.device(device)
        self._progress = progress
        self._first = 0  # clip frame index of the first held crop
        self._chunks: list[torch.Tensor] = []  # held crops, in order, joined once per request
        self._held = 0
        self._last_image: np.ndarray | None = None
        self.held_max = 0  # most crops held at once (for tests / the memory bound)

    @property
    def produced(self) -> int:
        return self._first + self._held

    def __call__(self, start: int, stop: int) -> torch.Tensor:
        if start < self._first:
            raise RuntimeError(f"crops {start}.. were already released (first held: {self._first})")
        if start > self._first and self._chunks:
            drop = min(start - self._first, self._held)
            held = torch.cat(self._chunks) if len(self._chunks) > 1 else self._chunks[0]
            self._chunks = [held[drop:].clone()]  # the clone frees the dropped rows
            self._first += drop
            self._held -= drop
        while self.produced < stop:
            self._decode_more(stop)
        if len(self._chunks) > 1:
            self._chunks = [torch.cat(self._chunks)]
        self.held_max = max(self.held_max, self._held)
        return self._chunks[0][start - self._first : stop - self._first]

    def _decode_more(self, stop: int) -> None:
        begin = self.produced
        count = min(DECODE_BATCH, stop - begin, len(self._windows) - begin)
        if count <= 0:
            raise RuntimeError(f"crop {begin} is beyond the clip's {len(self._windows)} frames")
        images = []
        for _ in range(count):
            frame = next(self._frames, None)
            if frame is not None:
                self._last_image = frame.image
            elif self._last_image is None:
                raise MocapError("The video could not be decoded a second time for the person crops; check the file.")
            # A second decode that ends a frame early (rare container quirks) repeats the last frame.
            images.append(self._last_image)
        batch = torch.from_numpy(np.stack(images)).to(self._device)
        self._chunks.append(warp_crops(batch, self._windows[begin : begin + count], self._size, device=self._device))
        self._held += count
        if self._progress:
            self._progress(self.produced, len(self._windows))


# --------------------------------------------------------------------------------------------- to a Motion


def camera_root_to_world(root_rotmats: np.ndarray) -> np.ndarray:
    """Root rotations (F, 3, 3) in the networks' camera frame (x right, y down, z away) → our Y-up world,
    where a person facing the camera faces +Z: ``diag(1, −1, −1) @ R``."""
    return np.einsum("ab,fbc->fac", CAMERA_TO_WORLD, root_rotmats)


def median_betas(betas: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """(10,) per-component median over the frames (only the detected ones when ``weights`` says which)."""
    use = betas if weights is None or not np.any(weights > 0) else betas[weights > 0]
    return np.median(use, axis=0)


def motion_from_mesh_sequence(
    seq: MeshSequence,
    windows: SquareBoxes,
    image_size: tuple[int, int],
    fps: float,
    *,
    focal: float,
    skeleton: Skeleton | None = None,
    confidence: np.ndarray | None = None,
    betas: np.ndarray | None = None,
    provenance: dict[str, str] | None = None,
    camera: CameraMotion | None = None,
) -> Motion:
    """Per-frame SMPL rotations + crop cameras → a grounded Motion (world frame, Y up, metres).

    ``windows`` are the crop windows actually cropped, ``focal`` the assumed full-image focal length (pixels).
    ``skeleton`` must have SMPL's rest pose as its identity pose (SMPL rest skeleton) or be the canonical one.
    ``camera``: how the filming camera turned (``Clip.camera_motion``), undone as ``posing.undo_camera_rotation``
    does for joints.
    """
    num_frames = len(seq.rotmats)
    rotmats = np.asarray(seq.rotmats, dtype=np.float64).copy()
    cam = np.asarray(seq.cam, dtype=np.float64).copy()
    cam[:, 0] = np.maximum(cam[:, 0], MIN_CAM_SCALE)
    translation_cam = crop_cam_to_translation(cam, windows, image_size, focal)
    turns = origins = None
    if camera is not None and camera.moving:
        turns, origins = camera.rotations, camera_origins(translation_cam, camera)
        rotmats[:, 0] = np.einsum("fij,fjk->fik", turns, rotmats[:, 0])
        translation_cam = root_path_in_first_camera(translation_cam, camera)
    rotmats[:, 0] = camera_root_to_world(rotmats[:, 0])
    rotations = quat_continuous(quat_from_matrix(rotmats), axis=0)
    root = translation_cam @ CAMERA_TO_WORLD.T
    skeleton = skeleton or canonical_skeleton()
    conf = np.ones((num_frames, skeleton.num_joints)) if confidence is None else confidence
    motion = Motion.from_rotations(fps, skeleton, rotations, root, conf, provenance, betas)
    tilt = world_tilt(motion.joints, fps)
    tilted = quat_continuous(tilt_rotations(rotations, tilt), axis=0)
    motion = motion.with_rotations(tilted, rotate_points(tilt, root))
    grounded = ground_motion(motion)
    record_camera_pose(
        grounded.provenance,
        CameraPose.from_alignment(
            tilt, grounding_shift(motion.root_translation, grounded.root_translation), turns, origins
        ),
    )
    return grounded


# --------------------------------------------------------------------------------------------- the adapter


class MeshModel:
    """``MotionModel`` for one of the mesh networks."""

    def __init__(self, name: str, settings: ModelSettings) -> None:
        self.spec = mesh_net_specs()[name]
        self.name = name
        self.settings = settings
        self.weights = weights_path(self.spec, settings)  # fails early, before decoding
        self.smpl = smpl_path(settings)
        self._smpl_model = None
        if self.smpl is not None:  # a wrong SMPL file fails now, not after decoding
            from mocap_cli.body.smpl_files import load_smpl

            self._smpl_model = load_smpl(self.smpl)
        self._net: nn.Module | None = None

    def network(self) -> nn.Module:
        if self._net is None:
            self._net = self.spec.load(self.weights)
        return self._net

    def _autocast(self) -> bool:
        return self.settings.extra.get("autocast", "1") not in ("0", "false", "no")

    def run_network(self, clip: Clip, windows: SquareBoxes, progress: Progress | None = None) -> MeshSequence:
        device = torch.device(self.settings.torch_device)
        frames = clip.frames()
        try:
            crops = StreamingCrops(frames, windows, self.spec.crop_size, device, progress)
            return run_clip_model(
                self.network(),
                crops,
                len(windows),
                self.spec.schedule,
                windows_per_batch=int(self.settings.extra.get("windows_per_batch", "1")),
                device=device,
                autocast=self._autocast(),
            )
        finally:
            close_frames(frames)  # stops ffmpeg if the clip ended early

    def estimate(self, clip: Clip, progress: Progress | None = None) -> Motion:
        track = clip.track
        windows = crop_windows(track, self.spec.crop_scale)
        seq = self.run_network(clip, windows, progress)
        detected = np.asarray(track.detected, dtype=bool)
        betas = median_betas(seq.betas, detected.astype(float))
        skeleton = None
        if self._smpl_model is not None:
            from mocap_cli.body.smpl_body import smpl_rest

            skeleton, _ = smpl_rest(self._smpl_model, betas)
        confidence = np.repeat(detected.astype(np.float64)[:, None], 24, axis=1)
        camera = Pinhole.from_fov(track.image_size[0], track.image_size[1], self.settings.fov_degrees)
        provenance = {
            "model": self.name,
            "input": str(clip.video.path),
            "weights": str(self.weights),
            "mocap_version": __version__,
            "fov_degrees": f"{self.settings.fov_degrees:g}",
            "skeleton": f"smpl:{self.smpl}" if self.smpl else "canonical",
            "schedule": f"{self.spec.schedule.window}-frame windows of {self.spec.schedule.seqlen}-frame clips",
        }
        return motion_from_mesh_sequence(
            seq,
            windows,
            track.image_size,
            float(track.fps),
            focal=camera.focal,
            skeleton=skeleton,
            confidence=confidence,
            betas=betas.astype(np.float32),
            provenance=provenance,
            camera=clip.camera_motion(camera),
        )
