"""UNSPAT training path: losses, data, a short CPU run that lowers the loss and writes a loadable checkpoint."""

from __future__ import annotations

import math
import subprocess
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import require_shared
from mocap_cli.capture.video import ffmpeg_executable, iter_frames, probe
from mocap_cli.models.mesh.crops import SquareBoxes
from mocap_cli.models.unspat import hybrik_crops
from mocap_cli.nets.unspat import load_unspat
from mocap_cli.training.unspat import crop_box_from_joints, crop_frame, laplacian_loss, load_clip, project, train_unspat


def test_laplacian_loss_closed_form_and_minimum() -> None:
    err = torch.tensor([[[0.1, -0.2, 0.0]], [[0.3, 0.0, 0.05]]])  # (2, 1, 3)
    sigma = torch.tensor([[0.5], [0.25]])
    want = (
        sum(
            math.log(math.sqrt(2) * s) + math.sqrt(2) * abs(e) / s
            for es, s in (([0.1, -0.2, 0.0], 0.5), ([0.3, 0.0, 0.05], 0.25))
            for e in es
        )
        / 6
    )
    assert abs(laplacian_loss(err, sigma).item() - want) < 1e-6
    w = torch.tensor([[[1.0, 0.0, 0.0]], [[0.0, 0.0, 0.0]]])
    assert abs(laplacian_loss(err, sigma, w).item() - (math.log(math.sqrt(2) * 0.5) + math.sqrt(2) * 0.1 / 0.5)) < 1e-6
    # one entry: the minimum over sigma is at sigma = sqrt(2)|e|
    e = torch.tensor([[[0.07]]])
    grid = torch.linspace(0.01, 0.5, 4901)
    vals = torch.stack([laplacian_loss(e, s.view(1, 1)) for s in grid])
    assert abs(grid[vals.argmin()].item() - math.sqrt(2) * 0.07) < 2e-4


def test_projection_uses_twice_hybrik_scale() -> None:
    pts = torch.tensor([[[0.1, -0.2, 3.0]]])
    cam = torch.tensor([[0.9, 0.05, 0.0]])
    assert torch.allclose(project(pts, cam), torch.tensor([[[2 * 0.9 * 0.15, 2 * 0.9 * -0.2]]]))


def test_crop_maps_joints_to_crop_coordinates() -> None:
    frame = torch.zeros(120, 160, 3, dtype=torch.uint8)
    frame[40, 100] = 255  # a single bright pixel at image (x=100, y=40)
    joints = np.array([[90.0, 30.0], [110.0, 50.0]])
    box = crop_box_from_joints(joints, margin=1.0, scale=1.0)  # centre (100, 40), side 20
    crop = crop_frame(frame, box, 20)
    bright = crop.sum(0)
    v, u = divmod(int(bright.argmax()), 20)
    assert (u, v) == (10, 10)  # crop pixel (size/2, size/2) samples the box centre


def test_clip_loading() -> None:
    folder = require_shared("data", "synthetic", "jumpingjacks_14_06")
    clip = load_clip(folder, 64, max_frames=10)
    assert clip.crops.shape == (10, 3, 64, 64) and clip.joints3d.shape == (10, 24, 3)
    assert clip.joints2d.abs().max() < 1.0  # joints inside the crop
    assert torch.all(clip.joints3d[:, 0] == 0)
    assert clip.crops.std() > 0.1  # real image content, not padding


def _rotated_clip(folder: Path, out: Path) -> Path:
    """``folder``'s clip with a phone-style display matrix (90° counter-clockwise, no re-encode) and its 2D
    ground truth turned the same way, so joints stay on the person in the upright picture."""
    out.mkdir()
    subprocess.run([ffmpeg_executable(), "-nostdin", "-v", "error", "-y", "-display_rotation", "90",
                    "-i", str(folder / "video.mp4"), "-c", "copy", str(out / "video.mp4")], check=True)  # fmt: skip
    gt = dict(np.load(folder / "gt.npz", allow_pickle=False))
    width = int(probe(folder / "video.mp4").width)
    x, y = gt["joints2d"][..., 0], gt["joints2d"][..., 1]
    gt["joints2d"] = np.stack([y, width - 1 - x], axis=-1)  # np.rot90(k=1): raw (x, y) -> upright (y, W-1-x)
    np.savez(out / "gt.npz", **gt)
    return out


@pytest.mark.parametrize("rotated", [False, True])
def test_training_crop_is_the_inference_crop_of_the_same_frame(tmp_path: Path, rotated: bool) -> None:
    """The trainer decodes with the tool's decoder (rotation metadata included) and crops with UNSPAT's
    inference crop: the same pixels for the same frame and window."""
    folder = require_shared("data", "synthetic", "squat_14_06")
    if rotated:
        folder = _rotated_clip(folder, tmp_path / "rotated")
    frames, size = 12, 256
    clip = load_clip(folder, size, max_frames=frames)
    joints2d = np.load(folder / "gt.npz")["joints2d"][:frames, :24].astype(np.float32)
    boxes = crop_box_from_joints(joints2d)
    with closing(iter_frames(folder / "video.mp4")) as decoded:
        images = np.stack([f.image for f, _ in zip(decoded, range(frames))])
    assert images.shape[1:3] == ((640, 480) if rotated else (480, 640))  # upright, as inference sees it
    inference = hybrik_crops(
        images, SquareBoxes(boxes[:, :2].astype(np.float64), boxes[:, 2].astype(np.float64)), size, "cpu"
    )
    assert clip.crops.shape == inference.shape == (frames, 3, size, size)
    assert torch.equal(clip.crops, inference)
    assert torch.equal(crop_frame(images[5], boxes[5], size), inference[5])  # one frame on its own, same crop
    assert clip.joints2d.abs().max() < 1.0 and clip.crops.std() > 0.1  # the person is in the crop


def test_short_training_lowers_loss_and_checkpoint_reloads(tmp_path: Path) -> None:
    data = require_shared("data", "synthetic")
    torch.set_num_threads(1)
    lines: list[str] = []
    result = train_unspat(
        data,
        tmp_path / "unspat_smoke",
        steps=15,
        batch_size=2,
        device="cpu",
        log=lines.append,
        seq_len=4,
        img_size=64,
        deconv=(16, 16, 16),
        max_clips=2,
        max_frames=40,
        lr=1e-4,
    )
    assert len(result.losses) == 15 and all(math.isfinite(x) for x in result.losses)
    assert np.mean(result.losses[-5:]) < np.mean(result.losses[:5]) - 0.2
    assert any(line.startswith("step 15/15") for line in lines)
    model, info = load_unspat(result.checkpoint)
    assert info.temporal_trained and model.cfg.seq_len == 4 and model.cfg.feat_hw == 2
    x = torch.randn(1, 4, 512, 2, 2)
    with torch.no_grad():
        out = model(features=x, with_smpl=False)
    assert torch.isfinite(out.pred.head.uvd).all()
    # the trained temporal modules are no longer at their identity start
    assert model.transformer.blocks[0].mlp.fc2.weight.abs().max() > 0
