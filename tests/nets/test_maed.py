"""MAED: parity with the authors' code on every reference case, released-layout loading, clip schedule."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import reference_cases
from mesh_helpers import (
    assert_intermediates_match,
    count_parameters,
    layout,
    max_err,
    optimizer_state,
    performance,
    random_tensor,
    save,
)
from mocap_cli.errors import MocapError
from mocap_cli.models.mesh.inference import MAED_SCHEDULE, ClipSchedule, run_clip_model, window_clips
from mocap_cli.nets.checkpoints import load_checkpoint
from mocap_cli.nets.maed import MAED, MAEDConfig, load_maed, smpl_ancestors

OUTPUT_ATOL = 1e-5  # spec §12
INTERMEDIATE_ATOL = 1e-4

CASES = reference_cases("maed")


def _published(state_dict: dict[str, torch.Tensor]) -> dict:
    """The checkpoint as the authors' Trainer.save_model writes it (DDP ``module.`` prefix)."""
    return {
        "epoch": 30,
        "state_dict": {f"module.{k}": v for k, v in state_dict.items()},
        "performance": performance(),
        "optimizer": optimizer_state(),
    }


@pytest.fixture(scope="module", params=CASES, ids=[p.stem for p in CASES])
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, MAED]:
    data = torch.load(request.param, map_location="cpu", weights_only=True)
    path = save(_published(data["state_dict"]), tmp_path_factory.mktemp("maed") / "maed_case.pth.tar")
    return data, load_maed(path, num_heads=data["config"]["maed"]["num_heads"])


def test_config_inferred_from_shapes(case: tuple[dict, MAED]) -> None:
    data, model = case
    cfg, ref = model.cfg, data["config"]
    assert cfg.num_blocks == ref["maed"]["num_blocks"]
    assert cfg.hidden_dim == ref["maed"]["hidden_dim"]
    assert cfg.embed_dim == ref["vit"]["embed_dim"]
    assert cfg.representation_size == ref["vit"]["representation_size"]
    assert cfg.img_size == ref["vit"]["img_size"]
    assert list(cfg.layers) == list(ref["resnetv2"]["layers"])
    assert list(cfg.channels) == list(ref["resnetv2"]["channels"])
    assert cfg.stem_chs == ref["resnetv2"]["stem_chs"]


def test_outputs_match_reference(case: tuple[dict, MAED]) -> None:
    data, model = case
    with torch.no_grad():
        out = model(data["inputs"]["images"], return_intermediates=True)
    ref = data["outputs"]
    theta = out.theta()
    errors = {
        "pose_6d": max_err(out.pose_6d, ref["pose_6d"]),
        "pose_rotmat": max_err(out.rotmats, ref["pose_rotmat"]),
        "betas": max_err(out.betas, ref["betas"]),
        "cam": max_err(out.cam, ref["cam"]),
        "features": max_err(out.features, ref["features"]),
        "theta": max_err(theta, ref["theta"]),
    }
    print("outputs max abs error", errors)
    assert set(errors) >= set(ref), f"reference outputs not checked: {set(ref) - set(errors)}"
    assert max(errors.values()) <= OUTPUT_ATOL, errors


def test_intermediates_match_reference(case: tuple[dict, MAED]) -> None:
    data, model = case
    assert_intermediates_match(model, data, INTERMEDIATE_ATOL)


def test_ancestor_lists_from_spec() -> None:
    assert smpl_ancestors(0) == []
    assert smpl_ancestors(15) == [0, 3, 6, 9, 12]
    assert smpl_ancestors(23) == [0, 3, 6, 9, 14, 17, 19, 21]
    assert smpl_ancestors(11) == [0, 2, 5, 8]


# ------------------------------------------------------------------------------- released checkpoint layout


@pytest.fixture(scope="module")
def released_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = layout("maed")
    g = torch.Generator().manual_seed(0)
    state = {e["checkpoint_key"]: random_tensor(e["shape"], e["dtype"], g) for e in spec["state_dict"]}
    assert len(state) == spec["num_state_dict_entries"]
    obj = {"epoch": 30, "state_dict": state, "performance": performance(), "optimizer": optimizer_state()}
    assert list(obj) == spec["checkpoint_top_level_keys"]
    path = save(obj, tmp_path_factory.mktemp("maed_release") / "maed_release.pth.tar")
    del state, obj
    gc.collect()
    return path


def test_released_layout_loads_with_release_config(released_file: Path) -> None:
    spec = layout("maed")
    model = load_maed(released_file)
    assert model.cfg == MAEDConfig()
    assert count_parameters(model) == spec["num_non_smpl_scalars"] == 72_132_153
    stored = load_checkpoint(released_file)["state_dict"]
    ours = model.state_dict()
    for entry in spec["state_dict"]:
        if entry["kind"] == "parameter":
            assert torch.equal(ours[entry["key"]], stored[entry["checkpoint_key"]]), entry["key"]
    del stored
    with torch.no_grad():
        out = model(torch.randn(1, 2, 3, 224, 224))
    assert out.rotmats.shape == (2, 24, 3, 3) and out.betas.shape == (2, 10) and out.cam.shape == (2, 3)
    assert torch.isfinite(out.rotmats).all()
    det = torch.linalg.det(out.rotmats.double())
    assert torch.allclose(det, torch.ones_like(det), atol=1e-5)


def test_wrong_files_raise_one_sentence_error(tmp_path: Path) -> None:
    not_torch = tmp_path / "notes.pth"
    not_torch.write_text("this is not a checkpoint")
    with pytest.raises(MocapError):
        load_maed(not_torch)
    other = save(
        {"state_dict": {"cls_token": torch.zeros(1, 1, 8), "joint3d_head.weight": torch.zeros(6, 8)}},
        tmp_path / "int_like.pth",
    )
    with pytest.raises(MocapError) as info:
        load_maed(other)
    message = str(info.value)
    assert "MAED" in message and message.count(". ") == 0 and message.endswith(".")


# ------------------------------------------------------------------------------------------- clip schedule


def test_official_schedule_interleaves_16_frame_clips_in_128_windows() -> None:
    clips = window_clips(300, MAED_SCHEDULE)
    assert clips.shape == (3, 8, 16)
    assert clips[0, 0].tolist() == list(range(0, 128, 8))
    assert clips[0, 7].tolist() == list(range(7, 128, 8))
    assert sorted(clips[1].ravel().tolist()) == list(range(128, 256))
    # window 2 covers positions 256..383; positions >= 300 are reflections 298, 297, ...
    assert clips[2, 0, :6].tolist() == [256, 264, 272, 280, 288, 296]
    assert clips[2, 0, 6] == 294  # position 304 reflects to 2 * 299 - 304


def test_run_clip_model_matches_direct_clip_calls(case: tuple[dict, MAED]) -> None:
    data, model = case
    size = data["inputs"]["images"].shape[-1]
    g = torch.Generator().manual_seed(7)
    crops = torch.randn(20, 3, size, size, generator=g)
    schedule = ClipSchedule(seqlen=4, window=8)
    requested: list[tuple[int, int]] = []

    def source(start: int, stop: int) -> torch.Tensor:
        requested.append((start, stop))
        return crops[start:stop]

    seq = run_clip_model(model, source, 20, schedule)
    assert all(stop - start <= 8 for start, stop in requested)
    # Hand-built clips: window 0 -> [0,2,4,6], [1,3,5,7]; window 2 (frames 16..19 + reflection) -> [16,18,18,16],
    # [17,19,17,15]
    expected = {
        (0, 2, 4, 6): [0, 2, 4, 6],
        (1, 3, 5, 7): [1, 3, 5, 7],
        (9, 11, 13, 15): [9, 11, 13, 15],
        (16, 18, 18, 16): [16, 18],
        (17, 19, 17, 15): [17, 19],
    }
    with torch.no_grad():
        for clip, frames in expected.items():
            out = model(crops[list(clip)][None])
            for frame in frames:
                t = clip.index(frame)
                np.testing.assert_allclose(seq.rotmats[frame], out.rotmats[t].numpy(), atol=1e-6)
                np.testing.assert_allclose(seq.betas[frame], out.betas[t].numpy(), atol=1e-6)
                np.testing.assert_allclose(seq.cam[frame], out.cam[t].numpy(), atol=1e-6)
