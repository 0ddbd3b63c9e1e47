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
    for part in parts:
        pts = pixels[part]
        pts = pts[np.all(np.isfinite(pts), axis=-1)]
        if len(pts) >= 3:
            cv2.fillConvexPoly(mask, cv2.convexHull(_fixed(pts)), 255, cv2.LINE_8, _SUBPIXEL_BITS)
    return mask


def tint(image: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], alpha: float) -> None:
    """Blend ``colour`` over ``image`` where ``mask`` is set (in place), and outline the mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if len(rows) == 0:
        return
    cols = np.flatnonzero(mask.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    roi, m = image[y0:y1, x0:x1], mask[y0:y1, x0:x1]
    flat = np.empty_like(roi)
    flat[:] = colour
    cv2.copyTo(cv2.addWeighted(roi, 1.0 - alpha, flat, alpha, 0.0), m, roi)
    contours, _ = cv2.findContours(m, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(roi, contours, -1, colour, 1, cv2.LINE_AA)
