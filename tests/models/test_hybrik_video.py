"""HybrIK's head on video (``models/hybrik_video``): the paper model's metric skeleton from crop + pinhole camera,
checked on the rendered clips' exact joints, and the flip test's mirroring, checked on real heatmaps."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import require_shared
from mocap_cli.models.hybrik_video import (
    DEPTH_UNIT_PAPER_M,
    FLIP_PAIRS_24,
    bone_lengths,
    flip_average,
    paper_skeleton_on_video,
    unflip_head,
)
from mocap_cli.nets.hybrik import HeadOutput, soft_argmax_3d

CLIPS = ("kick_10_05", "squat_14_06", "turn_105_53")


def _paper_head_view(clip: str, frames: slice = slice(0, None, 7)) -> tuple[torch.Tensor, ...]:
    """What an ideal paper-model head sees of a rendered clip: its exact SMPL-24 joints (camera frame) as crop
    uvd of a 1.25× square window around them, depth in the 2.0 m unit; plus the truth and the camera."""
    gt = np.load(require_shared("data", "synthetic", clip, "gt.npz"))
    joints = torch.tensor(gt["smpl24"][frames], dtype=torch.float64)  # (F, 24, 3) camera frame, metres
    k = gt["K"].astype(np.float64)
    proj = joints @ torch.tensor(k).T
    pix = proj[..., :2] / proj[..., 2:]
    centers = (pix.max(1).values + pix.min(1).values) / 2
    sides = (pix.max(1).values - pix.min(1).values).max(1).values * 1.25
    uv = (pix - centers[:, None]) / sides[:, None, None]
    d = (joints[..., 2] - joints[:, :1, 2]) / DEPTH_UNIT_PAPER_M
    uvd = torch.cat([uv, d[..., None]], dim=-1)
    return uvd.float(), centers, sides, joints, torch.tensor(k)


@pytest.mark.parametrize("clip", CLIPS)
def test_paper_skeleton_recovers_the_rendered_joints(clip: str) -> None:
    uvd, centers, sides, joints, k = _paper_head_view(clip)
    rel = joints - joints[:, :1]
    lengths = bone_lengths(joints)
    skel, z_root = paper_skeleton_on_video(
        uvd, centers, sides, float(k[0, 0]), (float(k[0, 2]), float(k[1, 2])), lengths
    )
    assert (skel.double() - rel).abs().max() < 1e-4  # metres: exact up to float32 uvd
    np.testing.assert_allclose(z_root.numpy(), joints[:, 0, 2].numpy(), rtol=1e-4)
    # a rest skeleton 10 % larger puts the body further away (about 10 %; the depth offsets keep their metric
    # unit, so not exactly)
    _, z2 = paper_skeleton_on_video(
        uvd, centers, sides, float(k[0, 0]), (float(k[0, 2]), float(k[1, 2])), lengths * 1.1
    )
    assert np.all((z2.numpy() / z_root.numpy() > 1.07) & (z2.numpy() / z_root.numpy() < 1.17))
    # the former reading (2.2 m cube for depth and a 2.2 m-wide crop) is centimetres off on the same input
    former = 2.2 * (uvd.double() - uvd.double()[:, :1])
    assert (former - rel).norm(dim=-1).max() > 0.05
    assert (skel.double() - rel).norm(dim=-1).max() < 1e-3


def _head(logits: torch.Tensor, phis: torch.Tensor, betas: torch.Tensor) -> HeadOutput:
    uvd, marginals, maxvals = soft_argmax_3d(logits)
    b = logits.shape[0]
    return HeadOutput(
        uvd=uvd,
        marginals=marginals,
        maxvals=maxvals,
        fc2_out=torch.zeros(b, 1024),
        delta_shape=betas,
        betas=betas,
        phis=phis,
        cam=torch.zeros(b, 3),
        sigma=torch.zeros(b, logits.shape[1]),
    )


def test_flip_test_mirrors_heatmaps_and_twists_exactly() -> None:
    """The mirrored crop's heatmaps are the plain ones with columns reversed and left/right joints swapped (what
    an ideal mirror-equivariant head outputs); unflipping must give back the plain keypoints and twists, so the
    flip-averaged output equals the plain one. Heatmaps peak at the rendered clip's joint positions."""
    uvd, *_ = _paper_head_view("kick_10_05", slice(0, 40, 10))
    b, j = uvd.shape[:2]
    grid = (torch.arange(64, dtype=torch.float32) + 0.5) / 64 - 0.5  # voxel centres in crop units
    zz, yy, xx = torch.meshgrid(grid, grid, grid, indexing="ij")
    target = uvd.clamp(-0.45, 0.45)
    logits = -(
        (
            (xx - target[..., 0, None, None, None]) ** 2
            + (yy - target[..., 1, None, None, None]) ** 2
            + (zz - target[..., 2, None, None, None]) ** 2
        )
        / (2 * 0.03**2)
    )  # (B, J, 64, 64, 64)
    order = list(range(j))
    for a, c in FLIP_PAIRS_24:
        order[a], order[c] = order[c], order[a]
    mirrored_logits = logits.flip(-1)[:, order]
    gen = torch.Generator().manual_seed(0)
    phis = torch.randn(b, 23, 2, generator=gen)
    mirrored_phis = phis.clone()
    mirrored_phis[..., 1] *= -1
    rows = list(range(23))
    for a, c in FLIP_PAIRS_24:
        rows[a - 1], rows[c - 1] = rows[c - 1], rows[a - 1]
    mirrored_phis = mirrored_phis[:, rows]
    betas = torch.randn(b, 10, generator=gen)
    plain = _head(logits, phis, betas)
    mirrored = _head(mirrored_logits, mirrored_phis, betas)
    # the mirror really moved the keypoints (x reflected about the crop centre, sides swapped)
    assert (mirrored.uvd[..., 0] - plain.uvd[..., 0]).abs().max() > 0.05
    back_uvd, back_phis = unflip_head(mirrored)
    assert (back_uvd - plain.uvd).abs().max() < 1e-5
    assert torch.equal(back_phis, phis)
    avg = flip_average(plain, mirrored)
    assert (
        (avg.uvd - plain.uvd).abs().max() < 1e-5 and torch.allclose(avg.phis, phis) and torch.equal(avg.cam, plain.cam)
    )
