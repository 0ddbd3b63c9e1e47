"""The left panel: the exported skeleton (and body silhouette) reprojected onto the source frame.

Points go through the camera the pipeline solved (``solve.camera_pose.SolvedCamera``), so a skeleton that sits
off the person shows a real error of the export, not a drawing offset. Pixel positions are computed once per
frame by ``project_joints`` and used as is by the drawing (tests read them from there). Colours are BGR
(OpenCV); left-side bones are blue, right-side orange, the trunk light grey; a joint fades towards grey and
thins to a ring as its confidence drops.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mocap_cli.solve.camera_pose import SolvedCamera

LEFT = (235, 150, 40)  # BGR: blue
RIGHT = (40, 140, 255)  # BGR: orange
CENTRE = (225, 225, 225)
FADED = (128, 128, 128)
SILHOUETTE = (120, 220, 120)
SILHOUETTE_ALPHA = 0.35
_SUBPIXEL_BITS = 4  # OpenCV draws at 1/16 pixel precision with ``shift=4``
_SUBPIXEL = float(1 << _SUBPIXEL_BITS)


def side_colour(name: str) -> tuple[int, int, int]:
    """The colour of a joint's bone (the bone from its parent) from its canonical name."""
    if name.startswith("left_"):
        return LEFT
    if name.startswith("right_"):
        return RIGHT
    return CENTRE


def project_joints(camera: SolvedCamera, joints: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """World joints (J, 3) → pixel positions (J, 2) in a frame resized by ``scale``; NaN behind the camera."""
    pixels, _ = camera.project(joints)
    return pixels_in_panel(pixels, scale)


def pixels_in_panel(pixels: np.ndarray, scale: float) -> np.ndarray:
    """Source-frame pixels (OpenCV convention: centres at integers) → the same points in a frame resized by
    ``scale`` (cv2.resize's convention: u' = (u + 0.5) * scale - 0.5)."""
    return (pixels + 0.5) * scale - 0.5


def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(points * _SUBPIXEL).astype(np.int32)


@dataclass(frozen=True)
class SkeletonStyle:
    """Sizes in pixels for a panel of ``height`` rows."""

    bone: int
    joint: int

    @classmethod
    def for_height(cls, height: int) -> SkeletonStyle:
        return cls(bone=max(2, round(height / 180)), joint=max(3, round(height / 110)))


def draw_skeleton(
    image: np.ndarray,
    pixels: np.ndarray,
    confidence: np.ndarray,
    parents: tuple[int, ...],
    names: tuple[str, ...],
    style: SkeletonStyle,
) -> None:
    """Draw bones (parent → joint) and joints in place on ``image`` (H, W, 3) BGR uint8.

    pixels (J, 2) float; confidence (J,) in [0, 1]; joints with a NaN position are skipped with their bones."""
    ok = np.all(np.isfinite(pixels), axis=-1)
    fixed = _fixed(np.nan_to_num(pixels)).tolist()
    conf = np.clip(np.nan_to_num(np.asarray(confidence, dtype=np.float64)), 0.0, 1.0)
    base = np.array([side_colour(n) for n in names], dtype=np.float64)
    grey = np.asarray(FADED, dtype=np.float64)
    parent_conf = np.array([min(conf[j], conf[p]) if p >= 0 else conf[j] for j, p in enumerate(parents)])
    bone_colours = np.rint(parent_conf[:, None] * base + (1.0 - parent_conf[:, None]) * grey).astype(int).tolist()
    joint_colours = np.rint(conf[:, None] * base + (1.0 - conf[:, None]) * grey).astype(int).tolist()
    for j, p in enumerate(parents):
        if p >= 0 and ok[j] and ok[p]:
            cv2.line(image, fixed[p], fixed[j], bone_colours[j], style.bone, cv2.LINE_AA, _SUBPIXEL_BITS)
    radius = style.joint * int(_SUBPIXEL)
    ring = max(1, style.bone // 2)
    for j in range(len(parents)):
        if ok[j]:
            cv2.circle(
                image, fixed[j], radius, joint_colours[j], -1 if conf[j] >= 0.5 else ring, cv2.LINE_AA, _SUBPIXEL_BITS
            )


def body_parts(joints: np.ndarray, weights: np.ndarray) -> list[np.ndarray]:
    """Vertex indices of a skinned mesh grouped by their most influential joint (``SkinnedMesh.joints`` and
    ``weights``, (V, 4) each); groups of fewer than 3 vertices are dropped."""
    dominant = joints[np.arange(len(joints)), np.argmax(weights, axis=1)]
    parts = [np.flatnonzero(dominant == j) for j in np.unique(dominant)]
    return [p for p in parts if len(p) >= 3]


def silhouette_mask(pixels: np.ndarray, parts: list[np.ndarray], size: tuple[int, int]) -> np.ndarray:
    """A (H, W) uint8 mask (255 inside) of a body projected to ``pixels`` (V, 2), ``size`` = (W, H): the union of
    each body part's convex outline (``body_parts``). Each part (a thigh, a forearm, the chest) is close to
    convex, so two dozen filled hulls draw the silhouette at a fraction of the cost of thousands of triangles
    (``cv2.fillPoly`` cannot fill them in one call: it fills by the even-odd rule, punching holes where limbs
    overlap)."""
    mask = np.zeros((size[1], size[0]), dtype=np.uint8)
    part_mask, (x0, y0) = silhouette(pixels, parts, size)
    mask[y0 : y0 + part_mask.shape[0], x0 : x0 + part_mask.shape[1]] = part_mask
    return mask


def silhouette(
    pixels: np.ndarray, parts: list[np.ndarray], size: tuple[int, int]
) -> tuple[np.ndarray, tuple[int, int]]:
    """``silhouette_mask`` cropped to the body's box in the frame: the mask (h, w) and its top-left corner
    (x, y); (0, 0)-sized off frame. Per frame only the box is allocated and filled, not the whole panel."""
    finite = pixels[np.all(np.isfinite(pixels), axis=-1)]
    if len(finite) < 3:
        return np.zeros((0, 0), dtype=np.uint8), (0, 0)
    x0, y0 = np.clip(np.floor(finite.min(axis=0)).astype(int), 0, size)
    x1, y1 = np.clip(np.ceil(finite.max(axis=0)).astype(int) + 2, 0, size)
    mask = np.zeros((max(y1 - y0, 0), max(x1 - x0, 0)), dtype=np.uint8)
    if mask.size == 0:
        return mask, (int(x0), int(y0))
    # Fixed-point positions in the box once for the whole body; each part then only gathers its rows.
    ok = np.all(np.isfinite(pixels), axis=-1)
    fixed = _fixed(np.where(ok[:, None], pixels - np.array([x0, y0], dtype=np.float64), 0.0))
    every = bool(ok.all())
    for part in parts:
        pts = fixed[part] if every else fixed[part[ok[part]]]
        if len(pts) >= 3:
            cv2.fillConvexPoly(mask, cv2.convexHull(pts), 255, cv2.LINE_8, _SUBPIXEL_BITS)
    return mask, (int(x0), int(y0))


def tint(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], alpha: float) -> None:
    """Blend ``colour`` over ``image`` where ``mask`` is set (in place), and outline the mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    roi, m = image[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    # (1 - alpha) * roi + alpha * colour, written through the mask; no colour-filled image per frame.
    faded = cv2.multiply(roi, (1.0 - alpha,) * 3 + (0.0,))
    cv2.add(faded, tuple(alpha * c for c in colour) + (0.0,), dst=roi, mask=m)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(roi, contours, -1, colour, 1, cv2.LINE_AA)
