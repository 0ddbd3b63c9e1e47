"""HybrIK's head on video, as the authors run it: flip test, and the paper model's metric skeleton without
ground-truth intrinsics or root depth.

Why this module exists: the parity code in ``nets/hybrik.py`` reproduces HybrIK's evaluation exactly, which for
the paper model (``pretrained_res34.pth``, ``Simple3DPoseBaseSMPL24``) needs the dataset's intrinsics and the
ground-truth root position (spec unspat.md A.6). A video has neither, and the UNSPAT §2.7 fallback
(``2.2 m · (p − p₀)``) reads the paper model's depth in the camera models' 2.2 m unit and its x/y as a 2.2 m-wide
crop. Here instead (HybrIK ``hybrik/datasets/h36m_smpl.py``: ``depth_factor`` 2.0, i.e. 2000 mm cube):

* depth: ``z_j = z_root + (d_j − d_0) · 2.0 m``, the paper model's own unit;
* x/y: perspective back-projection of each joint's crop position through the crop window and the pinhole
  camera the pipeline uses (``solve.camera.Pinhole``), ``X_j = ray_j · z_j`` — HybrIK's own A.6 formula with
  our camera in place of the dataset's;
* ``z_root`` (the one unknown a video lacks): the depth at which the back-projected skeleton's bones have the
  lengths of the IK's rest skeleton (least squares over the 23 bones), so the body is as large as the skeleton
  that will be animated.

Flip test (HybrIK ``flip_test=True``, ``demo_video.py``; ``flip_xyz_coord`` / ``flip_phi`` in
``hybrik/models/simple3dpose_smpl_cam.py``): the head also runs on the mirrored crop; its output is mirrored
back (x negated, left/right joints swapped; twist sines negated, left/right twists swapped) and averaged with the
plain output (keypoints, twists, shape). HybrIK averages root-relative xyz; we average the crop-normalised uvd
(mirrored exactly: heatmap column x ↦ 63 − x, so ``u ↦ −u − 1/64``) and then run one geometry, which is the
same to first order and works for both variants. Camera, σ and the paper model's leaf rotations come from the
plain pass (HybrIK keeps one pass's camera too).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from mocap_cli.nets.hybrik import HeadOutput, HybrIKPrediction, hybrik_parents

DEPTH_UNIT_PAPER_M = 2.0  # h36m_smpl.py depth_factor: the paper model's 2000 mm depth cube
# SMPL left/right pairs (HybrIK joint_pairs_24), plus the 29-joint leaf tips (joint_pairs_29).
FLIP_PAIRS_24: tuple[tuple[int, int], ...] = (
    (1, 2),
    (4, 5),
    (7, 8),
    (10, 11),
    (13, 14),
    (16, 17),
    (18, 19),
    (20, 21),
    (22, 23),
)
FLIP_PAIRS_29: tuple[tuple[int, int], ...] = FLIP_PAIRS_24 + ((25, 26), (27, 28))
Z_RANGE_M = (0.3, 80.0)  # searched root depths


def _swap(x: torch.Tensor, pairs: tuple[tuple[int, int], ...], offset: int = 0) -> torch.Tensor:
    """``x`` (B, J, ...) with the joints of each pair exchanged (indices shifted by ``offset``)."""
    order = list(range(x.shape[1]))
    for a, b in pairs:
        if max(a, b) - offset < len(order):
            order[a - offset], order[b - offset] = order[b - offset], order[a - offset]
    return x[:, order]


def unflip_head(flipped: HeadOutput) -> tuple[torch.Tensor, torch.Tensor]:
    """(uvd (B, J, 3), phis (B, 23, 2)) of the mirrored crop's head output, mapped back to the plain crop."""
    num_joints = flipped.uvd.shape[1]
    width = flipped.marginals[0].shape[-1]
    uvd = flipped.uvd.clone()
    uvd[..., 0] = -uvd[..., 0] - 1.0 / width
    uvd = _swap(uvd, FLIP_PAIRS_29 if num_joints == 29 else FLIP_PAIRS_24)
    phis = flipped.phis.clone()
    phis[..., 1] = -phis[..., 1]
    phis = _swap(phis, FLIP_PAIRS_24, offset=1)  # twist row i−1 belongs to joint i
    return uvd, phis


def flip_average(plain: HeadOutput, flipped: HeadOutput) -> HeadOutput:
    """The flip test: plain and mirrored-back outputs averaged (uvd, twists, shape); the rest from ``plain``."""
    uvd, phis = unflip_head(flipped)
    return replace(
        plain, uvd=(plain.uvd + uvd) / 2, phis=(plain.phis + phis) / 2, betas=(plain.betas + flipped.betas) / 2
    )


def bone_lengths(rest: torch.Tensor) -> torch.Tensor:
    """(B, J, 3) rest joints → (B, J−1) lengths of the bones to joints 1..J−1 (HybrIK parents)."""
    parents = hybrik_parents(rest.shape[1]).to(rest.device)
    return torch.linalg.norm(rest[:, 1:] - rest[:, parents[1:]], dim=-1)


def paper_skeleton_on_video(
    uvd: torch.Tensor,
    centers: torch.Tensor,
    sides: torch.Tensor,
    focal: float,
    principal: tuple[float, float],
    rest_lengths: torch.Tensor,
    *,
    depth_unit: float = DEPTH_UNIT_PAPER_M,
    iterations: int = 40,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Paper-model head keypoints → (skeleton (B, J, 3) metres, root-relative, camera axes; root depth (B,) m).

    ``uvd`` (B, J, 3) crop-normalised in [−0.5, 0.5) (the crop of window ``centers`` (B, 2) / ``sides`` (B,)
    pixels: crop pixel ``(u + 0.5)·256`` is image point ``centre + u·side``); ``focal`` pixels and ``principal``
    point of the full-image pinhole camera; ``rest_lengths`` (B, J−1) the IK rest skeleton's bone lengths.

    With rays ``r_j = ((p_j − principal)/f, 1)`` and ``Δ_j = (d_j − d_0)·depth_unit``, the root-relative joints
    are ``Y_j(z) = r_j (z + Δ_j) − r_0 z``, so every bone is ``A_k z + B_k``; ``z`` minimises
    ``Σ_k (‖A_k z + B_k‖ − L_k)²``: a log-spaced search over ``Z_RANGE_M`` then golden-section refinement.
    """
    uvd = uvd.double()
    pix = centers.double()[:, None, :] + uvd[..., :2] * sides.double()[:, None, None]  # (B, J, 2)
    pp = torch.tensor(principal, dtype=torch.float64, device=uvd.device)
    rays = torch.cat([(pix - pp) / focal, torch.ones_like(pix[..., :1])], dim=-1)  # (B, J, 3)
    delta = (uvd[..., 2] - uvd[..., :1, 2]) * depth_unit  # (B, J)
    parents = hybrik_parents(uvd.shape[1]).to(uvd.device)
    a = (rays - rays[:, :1])[:, 1:] - (rays - rays[:, :1])[:, parents[1:]]  # (B, J−1, 3): bone slope in z
    off = rays * delta[..., None]
    b = off[:, 1:] - off[:, parents[1:]]  # (B, J−1, 3)
    lengths = rest_lengths.double()

    def cost(z: torch.Tensor) -> torch.Tensor:  # z (B, K) → (B, K)
        bones = a[:, None] * z[..., None, None] + b[:, None]  # (B, K, J−1, 3)
        return ((torch.linalg.norm(bones, dim=-1) - lengths[:, None]) ** 2).sum(-1)

    lo, hi = Z_RANGE_M
    grid = torch.logspace(
        torch.log10(torch.tensor(lo)), torch.log10(torch.tensor(hi)), 64, dtype=torch.float64, device=uvd.device
    )
    costs = cost(grid.expand(uvd.shape[0], -1))
    best = costs.argmin(dim=1)
    left = grid[(best - 1).clamp(min=0)]
    right = grid[(best + 1).clamp(max=len(grid) - 1)]
    ratio = (5**0.5 - 1) / 2
    for _ in range(iterations):
        m1 = right - ratio * (right - left)
        m2 = left + ratio * (right - left)
        c = cost(torch.stack([m1, m2], dim=1))
        keep_left = c[:, 0] < c[:, 1]
        right = torch.where(keep_left, m2, right)
        left = torch.where(keep_left, left, m1)
    z = (left + right) / 2
    joints = rays * (z[:, None] + delta)[..., None]
    return (joints - joints[:, :1]).float(), z.float()


def paper_prediction(head: HeadOutput, skeleton_m: torch.Tensor) -> HybrIKPrediction:
    """A :class:`HybrIKPrediction` for the paper model from the video skeleton (xyz in its 2.0 m unit)."""
    return HybrIKPrediction(
        head=head, xyz=skeleton_m / DEPTH_UNIT_PAPER_M, skeleton_m=skeleton_m, depth_factor=DEPTH_UNIT_PAPER_M
    )
