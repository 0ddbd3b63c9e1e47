"""INT: parity with the authors' code on every reference case, both released layouts, clip schedule."""

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
    random_tensor,
    save,
)
from mocap_cli.errors import MocapError
from mocap_cli.models.mesh.inference import INT_SCHEDULE, ClipSchedule, run_clip_model, window_clips
from mocap_cli.nets.checkpoints import load_checkpoint
from mocap_cli.nets.int_hmr import INT, INTConfig, load_int, resample_temporal_embedding

OUTPUT_ATOL = 1e-5  # spec §12
INTERMEDIATE_ATOL = 1e-4  # "looser": backbone features reach |x|~9, ~2e-5 differences are normal

CASES = reference_cases("int")


def _published(state_dict: dict[str, torch.Tensor], epoch: int = 12) -> dict:
    """As the authors' Trainer.save_checkpoint writes it (no prefix: Horovod, no DDP)."""
    return {
        "epoch": epoch,
        "performance": 42.0,
        "history_best_performance": 42.0,
        "state_dict": state_dict,
        "optimizer": optimizer_state(),
    }


@pytest.fixture(scope="module", params=CASES, ids=[p.stem for p in CASES])
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, INT]:
    data = torch.load(request.param, map_location="cpu", weights_only=True)
    path = save(_published(data["state_dict"]), tmp_path_factory.mktemp("int") / "int_case.pth.tar")
    cfg = data["config"]["model"]
    return data, load_int(path, num_heads=cfg["num_heads"], temporal_num_heads=cfg["temporal_num_heads"])


def test_config_inferred_from_shapes(case: tuple[dict, INT]) -> None:
    data, model = case
    cfg, ref, backbone = model.cfg, data["config"]["model"], data["config"]["backbone"]
    assert cfg.embed_dim == ref["embed_dim"] and cfg.depth == ref["depth"]
    assert cfg.enable_temp_modeling == ref["enable_temp_modeling"]
    assert cfg.enable_temp_embedding == (ref["enable_temp_modeling"] and ref["enable_temp_embedding"])
    if cfg.enable_temp_modeling:
        assert cfg.temporal_layers == ref["temporal_layers"]
    if cfg.enable_temp_embedding:
        assert cfg.seq_length == ref["seq_length"]
    assert list(cfg.layers) == list(backbone["layers"])
    assert list(cfg.channels) == list(backbone["channels"][: len(backbone["layers"])])
    assert cfg.stem_chs == backbone["stem_chs"]
    assert (cfg.img_size // 16) == -(-ref["img_size"] // 16)  # token grid of the case's input size


def test_outputs_match_reference(case: tuple[dict, INT]) -> None:
    data, model = case
    with torch.no_grad():
        out = model(data["inputs"]["images"], return_intermediates=True)
    ref = data["outputs"]
    errors = {
        "pose_6d": max_err(out.pose_6d, ref["pose_6d"]),
        "pose_rotmat": max_err(out.rotmats, ref["pose_rotmat"]),
        "betas": max_err(out.betas, ref["betas"]),
        "cam": max_err(out.cam, ref["cam"]),
        "pose_axis_angle": max_err(out.pose_axis_angle(), ref["pose_axis_angle"]),
    }
    print("outputs max abs error", errors)
    assert set(errors) >= set(ref), f"reference outputs not checked: {set(ref) - set(errors)}"
    assert max(errors.values()) <= OUTPUT_ATOL, errors


def test_intermediates_match_reference(case: tuple[dict, INT]) -> None:
    data, model = case
    assert_intermediates_match(model, data, INTERMEDIATE_ATOL)


def test_temporal_embedding_resampling_rule() -> None:
    """Spec §4.5 formula, evaluated by hand for L=4 -> T=6."""
    e = torch.arange(4, dtype=torch.float32).reshape(1, 4, 1) * 10  # values 0, 10, 20, 30
    got = resample_temporal_embedding(e, 6).flatten().tolist()
    # p_i = max((i + 0.5) * 4/6 - 0.5, 0) -> 0, 0.5, 1.1667, 1.8333, 2.5, 3(clamped to last)
    want = [0.0, 5.0, 11.6667, 18.3333, 25.0, 30.0]
    assert np.allclose(got, want, atol=1e-3)
    assert resample_temporal_embedding(e, 4) is e


# ------------------------------------------------------------------------------ released checkpoint layouts


@pytest.fixture(scope="module")
def released_files(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """Model-1 (16-row) and Model-2 (64-row) files with the same random weights, SMPL buffers included."""
    configs = layout("int")["configurations"]
    g = torch.Generator().manual_seed(0)
    state = {e["key"]: random_tensor(e["shape"], e["dtype"], g) for e in configs["model1_tempemb16"]["keys"]}
    folder = tmp_path_factory.mktemp("int_release")
    files = {}
    for name, length in (("model1_tempemb16", 16), ("model2_tempemb64", 64)):
        spec = configs[name]
        state["temporal_pos_embedding"] = random_tensor(spec["temporal_pos_embedding_shape"], "float32", g)
        assert {k: list(v.shape) for k, v in state.items()} == {e["key"]: e["shape"] for e in spec["keys"]}
        obj = _published(state)
        assert list(obj) == spec["checkpoint_top_level_keys"]
        files[length] = save(obj, folder / f"{name}.pth.tar")
    del state, obj
    gc.collect()
    return files


@pytest.mark.parametrize("length,params", [(16, 76_673_363), (64, 76_710_227)])
def test_released_layout_loads_with_inferred_temporal_length(
    released_files: dict[int, Path], length: int, params: int
) -> None:
    model = load_int(released_files[length])
    assert model.cfg == INTConfig(seq_length=length)
    assert count_parameters(model) == params
    stored = load_checkpoint(released_files[length])["state_dict"]
    ours = model.state_dict()
    assert set(ours) == {k for k in stored if not k.startswith("smpl.")}
    assert all(torch.equal(ours[k], stored[k]) for k in ours)
    del stored
    with torch.no_grad():
        out = model(torch.randn(1, 3, 3, 224, 224), return_intermediates=True)  # T=3: embedding resampled
    assert out.intermediates["temporal_pos_embedding_used"].shape == (1, 3, 768)
    assert out.rotmats.shape == (3, 24, 3, 3) and out.betas.shape == (3, 10) and out.cam.shape == (3, 3)
    assert torch.isfinite(out.rotmats).all()
    del model, ours
    gc.collect()


def test_ddp_prefixed_state_dict_loads(case: tuple[dict, INT], tmp_path: Path) -> None:
    data, model = case
    prefixed = {f"module.{k}": v for k, v in data["state_dict"].items()}
    cfg = data["config"]["model"]
    again = load_int(save(_published(prefixed), tmp_path / "ddp.pth"), cfg["num_heads"], cfg["temporal_num_heads"])
    assert again.cfg == model.cfg


def test_wrong_files_raise_one_sentence_error(tmp_path: Path) -> None:
    garbage = tmp_path / "int.pth"
    garbage.write_bytes(b"\x00\x01 not a checkpoint")
    with pytest.raises(MocapError):
        load_int(garbage)
    maed_like = save({"state_dict": {"module.encoder.cls_token": torch.zeros(1, 1, 8)}}, tmp_path / "maed.pth")
    with pytest.raises(MocapError) as info:
        load_int(maed_like)
    assert "INT" in str(info.value) and str(info.value).endswith(".")


# ------------------------------------------------------------------------------------------- clip schedule


def test_official_schedule_two_interleaved_64_frame_clips() -> None:
    clips = window_clips(200, INT_SCHEDULE)
    assert clips.shape == (2, 2, 64)
    assert clips[0, 0].tolist() == list(range(0, 128, 2))
    assert clips[0, 1].tolist() == list(range(1, 128, 2))
    # window 1: positions 128..255, frames up to 199 then reflections 198, 197, ...
    assert clips[1, 0, :36].tolist() == list(range(128, 200, 2))
    assert clips[1, 0, 36] == 198  # position 200 -> 2 * 199 - 200
    assert clips[1, 0, 37] == 196  # position 202


def test_run_clip_model_matches_direct_clip_calls(case: tuple[dict, INT]) -> None:
    data, model = case
    size = data["inputs"]["images"].shape[-1]
    crops = torch.randn(11, 3, size, size, generator=torch.Generator().manual_seed(3))
    seq = run_clip_model(model, crops, 11, ClipSchedule(seqlen=3, window=6), windows_per_batch=2)
    # windows of 6 -> clips of 3 frames, 2 apart; window 1 = frames 6..10 + position 11 -> frame 9
    clips = {(0, 2, 4): [0, 2, 4], (1, 3, 5): [1, 3, 5], (6, 8, 10): [6, 8, 10], (7, 9, 9): [7, 9]}
    with torch.no_grad():
        for clip, frames in clips.items():
            out = model(crops[list(clip)][None])
            for frame in frames:
                t = clip.index(frame)
                np.testing.assert_allclose(seq.rotmats[frame], out.rotmats[t].numpy(), atol=1e-6)
                np.testing.assert_allclose(seq.betas[frame], out.betas[t].numpy(), atol=1e-6)
                np.testing.assert_allclose(seq.cam[frame], out.cam[t].numpy(), atol=1e-6)
