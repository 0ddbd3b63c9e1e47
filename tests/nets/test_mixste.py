"""MixSTE: parity with the authors' reference vectors, whole-clip inference and loading the released file layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import reference_cases, reference_dir
from mocap_cli.capture.keypoints import denormalize_screen, normalize_screen
from mocap_cli.errors import MocapError
from mocap_cli.models.lifters.windows import (
    flip_keypoints_2d,
    lift_clip,
    load_mixste,
    load_strided,
    mixste_window_starts,
    unflip_pose_3d,
)
from mocap_cli.nets.checkpoints import load_checkpoint
from mocap_cli.nets.mixste import MixSTE2, MixSTEConfig, mixste_config_from_state_dict

ATOL = 1e-5  # spec §16
CASES = reference_cases("mixste")
if not CASES:
    pytest.skip("MixSTE reference cases not found (../shared/reference/mixste)", allow_module_level=True)


def _load_case(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)  # trusted team data


def _model(case: dict) -> MixSTE2:
    model = MixSTE2(MixSTEConfig.from_official(case["config"])).eval()
    model.load_state_dict(case["state_dict"], strict=True)
    return model


def _max_err(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def _authors_checkpoint(state_dict: dict[str, torch.Tensor], path: Path) -> None:
    """Write a file laid out like run.py's ``torch.save``: model_pos with module. keys, RandomState, AdamW state."""
    params = list(state_dict.values())
    # exp_avg / exp_avg_sq share storage with the weights so the file stays small; the structure is AdamW's.
    optimizer = {
        "state": {i: {"step": torch.tensor(3.0), "exp_avg": p, "exp_avg_sq": p} for i, p in enumerate(params)},
        "param_groups": [
            {"lr": 4e-5, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1, "amsgrad": False, "maximize": False,
             "foreach": None, "capturable": False, "differentiable": False, "fused": None,
             "params": list(range(len(params)))}
        ],
    }  # fmt: skip
    rng = np.random.RandomState(1234)
    rng.permutation(100)  # a used shuffler, as after training
    torch.save(
        {"epoch": 120, "lr": 1.2e-5, "random_state": rng, "optimizer": optimizer,
         "model_pos": {f"module.{k}": v for k, v in state_dict.items()}},
        path,
    )  # fmt: skip


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_forward_matches_reference(path: Path) -> None:
    case = _load_case(path)
    model = _model(case)
    assert list(model.state_dict()) == list(case["state_dict"])  # same keys in the same order
    with torch.no_grad():
        out = model(case["inputs"]["keypoints_2d"])
    err = _max_err(out, case["outputs"]["pose_3d"])
    print(f"{path.stem}: pose_3d max abs err {err:.2e} (tol {ATOL})")
    assert err < ATOL


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_config_inferred_from_weights(path: Path) -> None:
    case = _load_case(path)
    inferred = mixste_config_from_state_dict(case["state_dict"], num_heads=case["config"]["num_heads"])
    assert inferred == MixSTEConfig.from_official(case["config"])
    assert mixste_config_from_state_dict(case["state_dict"]).num_heads == 8  # not in the weights: released value


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_normalisation_matches_authors(path: Path) -> None:
    inputs = _load_case(path)["inputs"]
    if "keypoints_2d_pixels" not in inputs:
        pytest.skip("case has no pixel keypoints")
    w, h = int(inputs["image_width"]), int(inputs["image_height"])
    norm = normalize_screen(inputs["keypoints_2d_pixels"].numpy(), w, h)
    assert _max_err(norm, inputs["keypoints_2d"]) < 1e-6
    assert _max_err(denormalize_screen(norm, w, h), inputs["keypoints_2d_pixels"]) < 1e-3  # pixels


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_authors_checkpoint_layout_loads(path: Path, tmp_path: Path) -> None:
    case = _load_case(path)
    file = tmp_path / "best_epoch.bin"
    _authors_checkpoint(case["state_dict"], file)
    model, config = load_mixste(file, num_heads=case["config"]["num_heads"])
    assert config == MixSTEConfig.from_official(case["config"])
    with torch.no_grad():
        out = model(case["inputs"]["keypoints_2d"])
    assert _max_err(out, case["outputs"]["pose_3d"]) < ATOL


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_flip_and_whole_clip_inference(path: Path) -> None:
    case = _load_case(path)
    inputs, outputs = case["inputs"], case["outputs"]
    if "sequence_2d" not in inputs:
        pytest.skip("case has no whole-clip data")
    model = _model(case)
    window = case["config"]["num_frame"]
    seq = inputs["sequence_2d"]

    # windows of run.py's eval_data_prepare, and the mirrored windows
    windows = torch.stack([seq[s : s + window] for s in mixste_window_starts(len(seq), window)])
    assert _max_err(windows, inputs["keypoints_2d"]) == 0
    assert _max_err(flip_keypoints_2d(windows), inputs["keypoints_2d_flip"]) == 0
    sw = case["flip"]
    assert (sw["kps_left"], sw["kps_right"]) == ([4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16])

    with torch.no_grad():
        raw_flip = model(inputs["keypoints_2d_flip"])
    errs = {
        "pose_3d_flip_raw": _max_err(raw_flip, outputs["pose_3d_flip_raw"]),
        "pose_3d_flip": _max_err(unflip_pose_3d(raw_flip), outputs["pose_3d_flip"]),
        "pose_3d_tta": _max_err(
            (outputs["pose_3d"] + unflip_pose_3d(outputs["pose_3d_flip_raw"])) / 2, outputs["pose_3d_tta"]
        ),
    }
    for batch_size in (1, 64):
        errs[f"sequence_3d_tta[bs={batch_size}]"] = _max_err(
            lift_clip(model, seq.numpy(), batch_size=batch_size), outputs["sequence_3d_tta"]
        )
    # the clip from the pixels through our normalisation
    w, h = int(inputs["image_width"]), int(inputs["image_height"])
    from_pixels = lift_clip(model, normalize_screen(inputs["sequence_2d_pixels"].numpy(), w, h))
    errs["sequence_3d_tta(from pixels)"] = _max_err(from_pixels, outputs["sequence_3d_tta"])

    # without flip: window k gives frames [kT, (k+1)T), the last window only its tail
    plain = lift_clip(model, seq.numpy(), flip=False)
    n = len(seq)
    tail = n - (len(windows) - 1) * window
    expected = np.concatenate(
        [outputs["pose_3d"][:-1].reshape(-1, 17, 3).numpy(), outputs["pose_3d"][-1, window - tail :].numpy()]
    )
    errs["sequence_3d(no flip)"] = _max_err(plain, expected)

    # a clip shorter than the window: padded with its last frame, the first L frames are kept (authors' bug fixed)
    short = inputs["short_sequence_2d"]
    padded = torch.cat([short, short[-1:].expand(window - len(short), -1, -1)])
    assert _max_err(padded[None], inputs["short_keypoints_2d"]) == 0
    short_out = lift_clip(model, short.numpy())
    assert short_out.shape == (len(short), 17, 3)
    errs["short_sequence_3d_tta"] = _max_err(short_out, outputs["short_sequence_3d_tta"])
    errs["short_pose_3d_tta[:L]"] = _max_err(short_out, outputs["short_pose_3d_tta"][0, : len(short)])

    for name, err in errs.items():
        print(f"{path.stem}: {name} max abs err {err:.2e} (tol {ATOL})")
    assert max(errs.values()) < ATOL, errs


def test_clip_lengths_at_window_edges() -> None:
    case = _load_case(CASES[0])
    model = _model(case)
    window = case["config"]["num_frame"]
    rng = np.random.default_rng(0)
    for length in (1, window - 1, window, window + 1, 2 * window):
        clip = rng.normal(scale=0.3, size=(length, 17, 2)).astype(np.float32)
        out = lift_clip(model, clip, flip=False, batch_size=2)
        assert out.shape == (length, 17, 3) and out.dtype == np.float32 and np.isfinite(out).all()
        if length == window + 1:  # the last frame comes from the window ending at the clip's end
            with torch.no_grad():
                last = model(torch.from_numpy(clip[1:])[None])[0, -1].numpy()
            assert _max_err(out[-1], last) < ATOL
    assert mixste_window_starts(70, 27) == [0, 27, 43]
    assert mixste_window_starts(54, 27) == [0, 27]
    assert mixste_window_starts(5, 27) == [0]


def test_lift_clip_rejects_bad_input() -> None:
    model = _model(_load_case(CASES[0]))
    bad = np.zeros((30, 17, 2), np.float32)
    bad[3, 4, 0] = np.nan
    with pytest.raises(MocapError):
        lift_clip(model, bad)
    with pytest.raises(MocapError):
        lift_clip(model, np.zeros((30, 33, 2), np.float32))


def _released_state_dict(layout: dict, frames: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(frames)
    sd = {}
    for entry in layout["state_dict"]:
        shape = list(entry["shape"])
        if entry["key"] == "Temporal_pos_embed":
            shape[1] = frames
        sd[entry["key"]] = torch.randn(shape, generator=gen) * 0.02
    return sd


def test_released_layouts_243_and_81_frames(tmp_path: Path) -> None:
    layout = json.loads((reference_dir("mixste") / "official_layout.json").read_text())
    assert layout["checkpoint"]["state_dict_entry"] == "model_pos" and layout["checkpoint"]["key_prefix"] == "module."
    released = layout["config"]
    for frames in (243, 81):
        sd = _released_state_dict(layout, frames)
        file = tmp_path / f"best_epoch_cpn_{frames}f.bin"
        _authors_checkpoint(sd, file)
        raw = load_checkpoint(file)  # weights_only=True despite the pickled RandomState
        assert sorted(raw) == sorted(layout["checkpoint"]["top_level_keys"])
        assert isinstance(raw["random_state"], np.random.RandomState)
        model, config = load_mixste(file)
        assert config == MixSTEConfig.from_official({**released, "num_frame": frames})
        assert sum(p.numel() for p in model.parameters()) == layout["param_count_by_num_frame"][str(frames)]
        loaded = model.state_dict()
        assert all(torch.equal(loaded[k], v) for k, v in sd.items())
        del model, loaded, raw


def test_wrong_or_malicious_files_are_refused(tmp_path: Path) -> None:
    case = _load_case(CASES[0])
    # a Strided Transformer-style flat file, a truncated state dict, and a MixSTE file given to the other loader
    flat = tmp_path / "no_refine_1_4500.pth"
    torch.save({"encoder.0.weight": torch.zeros(4, 34, 1)}, flat)
    truncated = tmp_path / "truncated.bin"
    _authors_checkpoint({k: v for k, v in case["state_dict"].items() if not k.startswith("head.")}, truncated)
    good = tmp_path / "good.bin"
    _authors_checkpoint(case["state_dict"], good)
    for call in (lambda: load_mixste(flat), lambda: load_mixste(truncated), lambda: load_strided(good),
                 lambda: load_mixste(tmp_path / "missing.bin")):  # fmt: skip
        with pytest.raises(MocapError) as info:
            call()
        message = str(info.value)
        assert message.count(". ") == 0 and message.endswith(".")  # one sentence

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.bin"
    torch.save({"epoch": 1, "random_state": Exploit(), "model_pos": {}}, evil)
    with pytest.raises(MocapError):
        load_mixste(evil)
    assert not marker.exists()
