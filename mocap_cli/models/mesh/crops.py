"""Person crops for the image-feature mesh networks (MAED, INT; later HybrIK/UNSPAT).

Pipeline, as the authors' evaluation prepares its inputs (specs maed.md / int.md §3):

1. ``boxes_from_landmarks``: square person box per frame from 2D landmarks + visibility — centre of the
   visible-landmark extent, side = 1.1 × extent (the diagonal by default, as the official 3DPW boxes). The
   official boxes come from 3DPW's OpenPose-18 keypoints (no toes, heels or fingertips), so the mesh adapter
   passes only MediaPipe's matching points (``openpose_points``); all 33 made the boxes 4-11 % larger than
   the same rule on the true joints of the rendered clips (the subset: within 4 %).
2. ``smooth_boxes``: centre and inverse side smoothed over time (median 11, then Gaussian σ=8, as 3DPW).
3. ``boxes.scaled(CROP_SCALE[model])``: the crop *window* (MAED 1.3, INT 1.1).
4. ``warp_crops``: bilinear warp of the window to S×S (black outside the image), ImageNet normalisation.

Pixel convention everywhere: x right, y down, pixel centres at integer coordinates (OpenCV). The window maps
to the crop by ``u = (x − cx)·S/side + S/2`` (no half-pixel offset), exactly the authors' ``cv2.warpAffine``
matrix built from (centre, centre + side/2 down, centre + side/2 right) → (S/2, S/2), ...
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mocap_cli.capture.keypoints import COCO_FROM_MEDIAPIPE
from mocap_cli.errors import MocapError

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)

BOX_EXTENT_SCALE = 1.1  # person box side = 1.1 × landmark extent (official 3DPW / MPI-INF-3DHP boxes)
CROP_SCALE: dict[str, float] = {"maed": 1.3, "int": 1.1}  # crop window = box × this at evaluation (specs §3.1 / §3)
CROP_SIZE: dict[str, int] = {"maed": 224, "int": 224}


@dataclass(frozen=True)
class SquareBoxes:
    """Square boxes per frame: ``centers`` (F, 2) pixels, ``sides`` (F,) pixels."""

    centers: np.ndarray
    sides: np.ndarray

    def __len__(self) -> int:
        return len(self.sides)

    def scaled(self, factor: float) -> SquareBoxes:
        """Same centres, sides × factor (box → crop window)."""
        return SquareBoxes(self.centers.copy(), self.sides * factor)

    def __getitem__(self, index: slice | np.ndarray) -> SquareBoxes:
        return SquareBoxes(self.centers[index], self.sides[index])


def openpose_points(landmarks: np.ndarray, visibility: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe (F, 33, D) landmarks + (F, 33) visibility → the OpenPose-18 points MediaPipe has (F, 17, D), (F, 17).

    OpenPose-18 = COCO-17 (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles) + the neck, the
    shoulder midpoint, which never widens the extent and is left out.
    """
    idx = list(COCO_FROM_MEDIAPIPE)
    return np.asarray(landmarks)[:, idx], np.asarray(visibility)[:, idx]


def _fill_missing(values: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN rows (held constant before the first / after the last valid row)."""
    valid = ~np.isnan(values).any(axis=-1)
    frames = np.arange(len(values))
    return np.stack([np.interp(frames, frames[valid], values[valid, c]) for c in range(values.shape[1])], -1)


def boxes_from_landmarks(
    landmarks: np.ndarray,
    visibility: np.ndarray | None = None,
    *,
    extent_scale: float = BOX_EXTENT_SCALE,
    min_visibility: float = 0.3,
    extent: str = "diagonal",
) -> SquareBoxes:
    """Square box per frame around the visible landmarks.

    ``landmarks`` (F, K, 2) pixels (e.g. MediaPipe's 33 pose landmarks), ``visibility`` (F, K) in [0, 1].
    Landmarks with visibility <= ``min_visibility`` are ignored (official 3DPW threshold 0.3). Centre = centre
    of the visible extent; side = ``extent_scale`` × the extent's diagonal (``extent="diagonal"``, official
    3DPW) or its larger side (``"max_side"``, official MPI-INF-3DHP). Frames with fewer than two visible
    landmarks are interpolated from their neighbours.
    """
    landmarks = np.asarray(landmarks, dtype=np.float64)
    if landmarks.ndim != 3 or landmarks.shape[-1] != 2:
        raise ValueError(f"landmarks must be (F, K, 2), got {landmarks.shape}")
    visible = np.ones(landmarks.shape[:2], bool) if visibility is None else np.asarray(visibility) > min_visibility
    visible &= np.isfinite(landmarks).all(-1)
    enough = visible.sum(1) >= 2
    if not enough.any():
        raise MocapError("No person was detected in any frame of the video; check that a person is fully visible.")
    masked = np.where(visible[..., None], landmarks, np.nan)
    lo = np.full((len(landmarks), 2), np.nan)
    hi = np.full((len(landmarks), 2), np.nan)
    lo[enough] = np.nanmin(masked[enough], axis=1)
    hi[enough] = np.nanmax(masked[enough], axis=1)
    size = hi - lo
    if extent == "diagonal":
        side = np.linalg.norm(size, axis=-1)
    elif extent == "max_side":
        side = size.max(-1)
    else:
        raise ValueError(f"extent must be 'diagonal' or 'max_side', got {extent!r}")
    box = _fill_missing(np.concatenate([(lo + hi) / 2, side[:, None]], -1))
    return SquareBoxes(box[:, :2], np.maximum(box[:, 2], 1.0) * extent_scale)


def _median_filter(x: np.ndarray, size: int) -> np.ndarray:
    """Running median along axis 0, window ``size`` (odd), edges padded by repetition."""
    half = size // 2
    padded = np.pad(x, [(half, half)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, size, axis=0)
    return np.median(windows, axis=-1)


def _gaussian_filter(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing along axis 0 (kernel truncated at 4σ), edges padded by repetition."""
    radius = int(4 * sigma + 0.5)
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps /= taps.sum()
    padded = np.pad(x, [(radius, radius)] + [(0, 0)] * (x.ndim - 1), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * radius + 1, axis=0)
    return windows @ taps


def smooth_boxes(boxes: SquareBoxes, median: int = 11, sigma: float = 8.0) -> SquareBoxes:
    """Temporal smoothing as the official 3DPW boxes: median filter then Gaussian on centre and 1/side.

    (The authors smooth ``150 / diagonal``, i.e. the inverse size; the edge handling is ours.)
    """
    if len(boxes) < 2:
        return boxes
    signal = np.concatenate([boxes.centers, 1.0 / boxes.sides[:, None]], -1)
    if median > 1:
        signal = _median_filter(signal, median | 1)
    if sigma > 0:
        signal = _gaussian_filter(signal, sigma)
    return SquareBoxes(signal[:, :2], 1.0 / signal[:, 2])


def crop_affine(windows: SquareBoxes, size: int) -> np.ndarray:
    """(F, 2, 3) image-pixel → crop-pixel affine of each window (the authors' warpAffine matrix)."""
    k = size / windows.sides
    m = np.zeros((len(windows), 2, 3))
    m[:, 0, 0] = m[:, 1, 1] = k
    m[:, :, 2] = size / 2 - k[:, None] * windows.centers
    return m


def image_to_crop(points: np.ndarray, windows: SquareBoxes, size: int) -> np.ndarray:
    """Image pixels (F, K, 2) → crop pixels."""
    k = (size / windows.sides)[:, None, None]
    return (points - windows.centers[:, None]) * k + size / 2


def crop_to_image(points: np.ndarray, windows: SquareBoxes, size: int) -> np.ndarray:
    """Crop pixels (F, K, 2) → image pixels."""
    k = (windows.sides / size)[:, None, None]
    return (points - size / 2) * k + windows.centers[:, None]


def warp_crops(
    frames: np.ndarray | torch.Tensor,
    windows: SquareBoxes,
    size: int = 224,
    *,
    device: torch.device | str | None = None,
    normalize: bool = True,
    quantize: bool = True,
) -> torch.Tensor:
    """Crop each window of each frame to ``size``×``size``: (F, H, W, 3) uint8 RGB → (F, 3, S, S) float32.

    Bilinear sampling with zero (black) fill outside the image, like ``cv2.warpAffine(INTER_LINEAR,
    BORDER_CONSTANT)``. Crop pixel (u, v) samples image point ``centre + ((u, v) − S/2)·side/S``; with
    ``grid_sample(align_corners=False)`` an image coordinate x is grid value ``(2x + 1)/W − 1`` (pixel centres
    at integers, matching OpenCV). ``quantize`` rounds to integer levels as the authors' uint8 crops are
    (cv2's fixed-point weights can still differ by one level). Then ÷255 and ImageNet mean/std if
    ``normalize``. Frames may be a torch tensor already on ``device`` (GPU batching).
    """
    if isinstance(frames, np.ndarray):
        frames = torch.from_numpy(np.ascontiguousarray(frames))
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be (F, H, W, 3), got {tuple(frames.shape)}")
    if len(frames) != len(windows):
        raise ValueError(f"{len(frames)} frames but {len(windows)} crop windows")
    device = torch.device(device) if device is not None else frames.device
    images = frames.to(device).permute(0, 3, 1, 2).float()
    _, _, height, width = images.shape

    step = torch.as_tensor(windows.sides / size, dtype=torch.float64, device=device)  # image px per crop px
    centers = torch.as_tensor(windows.centers, dtype=torch.float64, device=device)
    offsets = torch.arange(size, dtype=torch.float64, device=device) - size / 2
    xs = centers[:, 0, None] + offsets[None] * step[:, None]  # (F, S) image x of each crop column
    ys = centers[:, 1, None] + offsets[None] * step[:, None]
    gx = (2 * xs + 1) / width - 1
    gy = (2 * ys + 1) / height - 1
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1).float()  # (F, S, S, 2)
    crops = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    if quantize:
        crops = crops.round().clamp_(0, 255)
    crops = crops / 255.0
    if normalize:
        mean = torch.tensor(IMAGENET_MEAN, device=device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
        crops = (crops - mean) / std
    return crops


# ------------------------------------------------------------------ crop camera → full image (VIBE convention)


def crop_cam_to_orig_img(cam: np.ndarray, windows: SquareBoxes, image_size: tuple[int, int]) -> np.ndarray:
    """Weak-perspective crop camera [s, tx, ty] → full-image camera [sx, sy, tx', ty'] (F, 4).

    ``windows`` must be the crop windows actually cropped (box × crop scale), ``image_size`` = (W, H).
    A model-frame point (X, Y) lands at ``x_ndc = sx·(X + tx')``, ``y_ndc = sy·(Y + ty')`` with NDC spanning
    the full image (y down), i.e. pixel ``u = W/2·(1 + x_ndc)``, ``v = H/2·(1 + y_ndc)``. Equals the authors'
    ``convert_crop_cam_to_orig_img``.
    """
    width, height = image_size
    s, tx, ty = cam[:, 0], cam[:, 1], cam[:, 2]
    sx = s * windows.sides / width
    sy = s * windows.sides / height
    tx_full = (windows.centers[:, 0] - width / 2) / (width / 2) / sx + tx
    ty_full = (windows.centers[:, 1] - height / 2) / (height / 2) / sy + ty
    return np.stack([sx, sy, tx_full, ty_full], -1)


def crop_cam_to_translation(
    cam: np.ndarray, windows: SquareBoxes, image_size: tuple[int, int], focal: float
) -> np.ndarray:
    """Camera-frame translation (F, 3) of the model frame for a full-image pinhole camera.

    Pinhole: focal ``focal`` pixels, principal point (W/2, H/2), x right, y down, z forward (the models'
    output frame). Points at the translation's depth project exactly where the weak-perspective crop camera
    puts them: ``Tz = 2·focal / (s·side)``, ``Tx = tx + (cx − W/2)·Tz/focal``, ``Ty = ty + (cy − H/2)·Tz/focal``.
    """
    width, height = image_size
    s = np.maximum(cam[:, 0], 1e-9)
    tz = 2 * focal / (s * windows.sides)
    tx = cam[:, 1] + (windows.centers[:, 0] - width / 2) * tz / focal
    ty = cam[:, 2] + (windows.centers[:, 1] - height / 2) * tz / focal
    return np.stack([tx, ty, tz], -1)
