"""SMPL parameter outputs shared by the image-feature mesh networks (MAED, INT), and their rotation maths."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F


@dataclass
class MeshNetOutput:
    """Per-frame SMPL parameters; frames are the flattened (B, T) clips, batch-major (row = b * T + t).

    ``rotmats`` are SMPL local joint rotations (joint 0 = global orientation) in the authors' image-aligned
    frame (x right, y down, z away from the camera). ``cam`` is the weak-perspective crop camera [s, tx, ty].
    """

    rotmats: torch.Tensor  # (N, 24, 3, 3)
    betas: torch.Tensor  # (N, 10)
    cam: torch.Tensor  # (N, 3)
    pose_6d: torch.Tensor  # (N, 24, 6), the raw network output
    features: torch.Tensor | None = None  # (N, F) per-frame feature where the model has one (MAED)
    intermediates: dict[str, torch.Tensor] = field(default_factory=dict)

    def pose_axis_angle(self) -> torch.Tensor:
        """(N, 72) axis-angle of the 24 rotations (the authors' ``theta[:, 3:75]``; angles in [0, pi])."""
        return rotmat_to_axis_angle(self.rotmats).reshape(self.rotmats.shape[0], -1)

    def theta(self) -> torch.Tensor:
        """(N, 85) = [cam (3), axis-angle pose (72), betas (10)], the authors' ``theta`` layout."""
        return torch.cat([self.cam, self.pose_axis_angle(), self.betas], dim=-1)


def rot6d_to_rotmat(x: torch.Tensor) -> torch.Tensor:
    """(..., 6) -> (..., 3, 3), the authors' interleaved layout.

    The 6 numbers are a row-major 3x2 matrix: first column (x0, x2, x4), second (x1, x3, x5); Gram-Schmidt
    with norms clamped at 1e-6; the result's columns are b1, b2, b1 x b2.
    """
    m = x.reshape(*x.shape[:-1], 3, 2)
    b1 = F.normalize(m[..., 0], dim=-1, eps=1e-6)
    a2 = m[..., 1]
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1, eps=1e-6)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def rotmat_to_quaternion_wxyz(r: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> unit quaternion (..., 4) as w, x, y, z with w >= 0 (largest-component branch)."""
    m00, m01, m02 = r[..., 0, 0], r[..., 0, 1], r[..., 0, 2]
    m10, m11, m12 = r[..., 1, 0], r[..., 1, 1], r[..., 1, 2]
    m20, m21, m22 = r[..., 2, 0], r[..., 2, 1], r[..., 2, 2]
    candidates = torch.stack(
        [
            torch.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20], -1),
            torch.stack([m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21], -1),
            torch.stack([m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22], -1),
        ],
        dim=-2,
    )  # row i is 4 * q_i * q, best conditioned for the largest |q_i|
    diag = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    best = diag.argmax(-1, keepdim=True)
    q = torch.gather(candidates, -2, best[..., None].expand(*best.shape, 4)).squeeze(-2)
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def rotmat_to_axis_angle(r: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) -> axis-angle (..., 3), angle in [0, pi]."""
    q = rotmat_to_quaternion_wxyz(r)
    v = q[..., 1:]
    sin_half = v.norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(sin_half, q[..., :1])
    scale = torch.where(sin_half > 1e-8, angle / sin_half.clamp_min(1e-8), torch.full_like(sin_half, 2.0))
    return v * scale
