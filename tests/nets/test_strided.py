"""Strided Transformer: parity with the authors' reference vectors (incl. intermediates, flip TTA, whole video,
refine) and loading the released flat-file layout."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import reference_cases, reference_dir
from mocap_cli.capture.keypoints import coco_to_h36m, normalize_screen
from mocap_cli.errors import MocapError
from mocap_cli.models.lifters.windows import (
    backproject_center,
    flip_keypoints_2d,
    lift_clip,
    load_mixste,
    load_strided,
    refine_center_pose,
    strided_window_indices,
    unflip_pose_3d,
)
from mocap_cli.nets.strided import RefineNet, StridedConfig, StridedTransformer, strided_config_from_state_dict

ATOL = 1e-5  # spec §13
CASES = reference_cases("strided_transformer")
if not CASES:
    pytest.skip("Strided Transformer reference cases not found", allow_module_level=True)


def _load_case(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _model(case: dict) -> StridedTransformer:
    model = StridedTransformer(StridedConfig.from_official(case["config"])).eval()
    model.load_state_dict(case["state_dict"], strict=True)
    return model


def _max_err(a, b) -> float:
    return float(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)).max())


def _report(stem: str, errs: dict[str, float]) -> None:
    for name, err in errs.items():
        print(f"{stem}: {name} max abs err {err:.2e} (tol {ATOL})")
    assert max(errs.values()) < ATOL, errs


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_forward_and_intermediates_match_reference(path: Path) -> None:
    case = _load_case(path)
    model = _model(case)
    assert list(model.state_dict()) == list(case["state_dict"])
    seen: dict[str, torch.Tensor] = {}
    model.encoder.register_forward_hook(lambda m, i, o: seen.__setitem__("embedding_out_BCT", o))
    model.Transformer.register_forward_hook(lambda m, i, o: seen.__setitem__("vte_out_BTC", o))
    for k, layer in enumerate(model.Transformer_reduce.model.layers):
        layer.register_forward_hook(lambda m, i, o, k=k: seen.__setitem__(f"ste_layer{k}_out_BLC", o))
    with torch.no_grad():
        center, full = model(case["inputs"]["keypoints_2d"])
    errs = {"pose_3d_center": _max_err(center, case["outputs"]["pose_3d_center"]),
            "pose_3d_full": _max_err(full, case["outputs"]["pose_3d_full"])}  # fmt: skip
    assert set(case["intermediates"]) == set(seen)
    errs.update({name: _max_err(seen[name], ref) for name, ref in case["intermediates"].items()})
    _report(path.stem, errs)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_flip_averaging_matches_reference(path: Path) -> None:
    case = _load_case(path)
    model = _model(case)
    inputs, outputs = case["inputs"], case["outputs"]
    flipped = flip_keypoints_2d(inputs["keypoints_2d"])
    assert _max_err(flipped, inputs["keypoints_2d_flip"]) == 0
    with torch.no_grad():
        center, full = model(inputs["keypoints_2d"])
        center_f, full_f = model(flipped)
    center_tta = (center + unflip_pose_3d(center_f)) / 2
    final = center_tta.clone()
    final[..., 0, :] = 0
    _report(path.stem, {
        "pose_3d_center_tta": _max_err(center_tta, outputs["pose_3d_center_tta"]),
        "pose_3d_full_tta": _max_err((full + unflip_pose_3d(full_f)) / 2, outputs["pose_3d_full_tta"]),
        "pose_3d_center_final": _max_err(final, outputs["pose_3d_center_final"]),
    })  # fmt: skip


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_normalisation_and_config(path: Path) -> None:
    case = _load_case(path)
    inputs = case["inputs"]
    w, h = inputs["image_wh"].tolist()
    assert _max_err(normalize_screen(inputs["keypoints_2d_pixels"].numpy(), w, h), inputs["keypoints_2d"]) < 1e-6
    assert strided_config_from_state_dict(case["state_dict"]) == StridedConfig.from_official(case["config"])


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_whole_video_matches_reference(path: Path) -> None:
    case = _load_case(path)
    inputs, outputs = case["inputs"], case["outputs"]
    if "video_keypoints_2d_pixels" not in inputs:
        pytest.skip("case has no whole-video data")
    h36m = coco_to_h36m(inputs["video_keypoints_coco_pixels"].numpy())
    ref = outputs["video_keypoints_h36m_from_coco"].numpy()
    np.testing.assert_allclose(h36m, ref, rtol=1e-5, atol=1e-3)  # pixels
    np.testing.assert_allclose(ref, inputs["video_keypoints_2d_pixels"].numpy(), rtol=0, atol=0)

    model = _model(case)
    w, h = inputs["image_wh"].tolist()
    kp = normalize_screen(inputs["video_keypoints_2d_pixels"].numpy(), w, h)
    errs = {
        f"video_pose_3d[bs={bs}]": _max_err(lift_clip(model, kp, batch_size=bs), outputs["video_pose_3d"])
        for bs in (1, 4, 64)
    }
    _report(path.stem, errs)

    # windows are centred on each frame and clamped to the clip (edge replication)
    idx = strided_window_indices(torch.tensor([0, 13]), 14, case["config"]["frames"])
    assert idx[0].tolist() == [0, 0, 0, 0, 0, 1, 2, 3, 4] and idx[1].tolist() == [9, 10, 11, 12, 13, 13, 13, 13, 13]
    # a clip shorter than the window, and one frame
    assert lift_clip(model, kp[:1]).shape == (1, 17, 3)
    out = lift_clip(model, kp[:3], flip=False)
    with torch.no_grad():
        center, _ = model(torch.from_numpy(kp[[0, 0, 0, 0, 1, 2, 2, 2, 2]])[None])
    expected = center[0, 0].numpy().copy()
    expected[0] = 0
    assert _max_err(out[1], expected) < ATOL


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_refine_matches_reference(path: Path, tmp_path: Path) -> None:
    case = _load_case(path)
    if "refine_state_dict" not in case:
        pytest.skip("case has no refine network")
    inputs, outputs = case["inputs"], case["outputs"]
    pad = (case["config"]["frames"] - 1) // 2
    # the separate refine file, flat as published, loaded next to the lifter
    torch.save(case["state_dict"], tmp_path / "no_refine_4_4350.pth")
    torch.save(case["refine_state_dict"], tmp_path / "refine_4_4270.pth")
    _, _, refine = load_strided(tmp_path / "no_refine_4_4350.pth", tmp_path / "refine_4_4270.pth")
    assert isinstance(refine, RefineNet)
    pose = outputs["pose_3d_center_tta"][:, 0]
    center_2d, cam, root_z = inputs["keypoints_2d"][:, pad], inputs["cam_intrinsic"], inputs["root_3d"][:, 2]
    with torch.no_grad():
        back = backproject_center(center_2d, pose, cam, root_z)
        refined = refine(pose[:, None], back[:, None])
    _report(path.stem, {
        "xyz_backprojected": _max_err(back, outputs["xyz_backprojected"][:, 0]),
        "pose_3d_refined": _max_err(refined, outputs["pose_3d_refined"]),
        "pose_3d_final": _max_err(refine_center_pose(refine, pose, center_2d, cam, root_z),
                                  outputs["pose_3d_final"][:, 0]),
    })  # fmt: skip


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_flat_checkpoint_loads(path: Path, tmp_path: Path) -> None:
    case = _load_case(path)
    file = tmp_path / "no_refine_12_4438.pth"
    torch.save(case["state_dict"], file)
    model, config, refine = load_strided(file)
    assert refine is None and config == StridedConfig.from_official(case["config"])
    with torch.no_grad():
        center, _ = model(case["inputs"]["keypoints_2d"])
    assert _max_err(center, case["outputs"]["pose_3d_center"]) < ATOL


def _layout_state_dict(keys: dict[str, list[int]], seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in keys.items():
        if key.endswith("num_batches_tracked"):
            sd[key] = torch.tensor(1000, dtype=torch.int64)
        elif key.endswith("running_var"):
            sd[key] = torch.rand(shape, generator=gen) + 0.5
        else:
            sd[key] = torch.randn(shape, generator=gen) * 0.02
    return sd


def test_released_351_frame_layout_and_refine(tmp_path: Path) -> None:
    layout = json.loads((reference_dir("strided_transformer") / "official_layout.json").read_text())
    released = layout["configs"]["frames351_released"]
    sd = _layout_state_dict(released["state_dict_keys"], 351)
    file = tmp_path / "no_refine_4_4438.pth"
    torch.save(sd, file)
    refine_file = tmp_path / "refine_4_4366.pth"
    torch.save(_layout_state_dict(layout["refine"]["state_dict_keys"], 1), refine_file)
    model, config, refine = load_strided(file, refine_file)
    assert config == StridedConfig.from_official(released["constructor"])
    assert config.stride_num == (3, 9, 13) and config.pad == 175
    assert sum(p.numel() for p in model.parameters()) == released["num_parameters"]
    assert sum(p.numel() for p in refine.parameters()) == layout["refine"]["num_parameters"]
    loaded = model.state_dict()
    assert list(loaded) == released["checkpoint_top_level_keys"]
    assert all(torch.equal(loaded[k], v) for k, v in sd.items())
    with torch.no_grad():
        center, full = model(torch.zeros(1, 351, 17, 2))
    assert center.shape == (1, 1, 17, 3) and full.shape == (1, 351, 17, 3)
    # the 27-frame table entry also infers its strides
    sd27 = _layout_state_dict(layout["configs"]["frames27_opt"]["state_dict_keys"], 27)
    assert strided_config_from_state_dict(sd27).stride_num == (3, 3, 3)


def test_wrong_or_malicious_files_are_refused(tmp_path: Path) -> None:
    case = _load_case(CASES[0])
    wrong = {
        "refine_as_lifter.pth": {"post_refine.0.weight": torch.zeros(1024, 102)},
        "missing_head.pth": {k: v for k, v in case["state_dict"].items() if not k.startswith("fcn.")},
        "mixste_layout.bin": {"epoch": 1, "model_pos": {"module.Temporal_pos_embed": torch.zeros(1, 27, 8)}},
    }
    for name, obj in wrong.items():
        torch.save(obj, tmp_path / name)
        with pytest.raises(MocapError) as info:
            load_strided(tmp_path / name)
        assert str(info.value).endswith(".") and ". " not in str(info.value)
    torch.save(case["state_dict"], tmp_path / "lifter.pth")
    with pytest.raises(MocapError):
        load_mixste(tmp_path / "lifter.pth")
    with pytest.raises(MocapError):  # the lifter given as the refine file
        load_strided(tmp_path / "lifter.pth", tmp_path / "lifter.pth")

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"encoder.0.weight": torch.zeros(1), "payload": Exploit()}, tmp_path / "evil.pth")
    with pytest.raises(MocapError):
        load_strided(tmp_path / "evil.pth")
    assert not marker.exists()
