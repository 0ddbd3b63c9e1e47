"""Helpers shared by the MAED / INT / UNSPAT tests: released-layout checkpoint files with random weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mocap_cli.nets.hybrik import HybrIK, official_to_ours
from mocap_cli.nets.int_hmr import INT, INTConfig
from mocap_cli.nets.maed import MAED, MAEDConfig

DTYPES = {"float32": torch.float32, "int64": torch.int64}


def random_tensor(shape: list[int], dtype: str, generator: torch.Generator) -> torch.Tensor:
    if DTYPES[dtype] == torch.int64:
        return torch.randint(0, 24, shape, generator=generator, dtype=torch.int64)
    return torch.randn(shape, generator=generator) * 0.02


def optimizer_state() -> dict:
    """A small Adam state_dict of the kind ``Trainer`` saves next to the weights (plain dicts/tuples/tensors)."""
    return {
        "state": {0: {"step": torch.tensor(1000.0), "exp_avg": torch.zeros(4), "exp_avg_sq": torch.zeros(4)}},
        "param_groups": [
            {
                "lr": 1e-4,
                "betas": (0.9, 0.999),
                "eps": 1e-8,
                "weight_decay": 1e-5,
                "amsgrad": False,
                "initial_lr": 1e-4,
                "params": [0],
            }
        ],
    }


def layout(model: str) -> dict:
    from conftest import require_shared

    return json.loads(require_shared("reference", model, "official_layout.json").read_text())


def count_parameters(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def save(obj: dict, path: Path) -> Path:
    torch.save(obj, path)
    return path


def performance() -> np.float64:
    return np.float64(45.7)


def max_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return (ours.reshape(ref.shape) - ref).abs().max().item()


def assert_intermediates_match(model: torch.nn.Module, data: dict, atol: float) -> None:
    """Every intermediate stored in a reference case, recomputed by ``model``, within ``atol``."""
    with torch.no_grad():
        out = model(data["inputs"]["images"], return_intermediates=True)
    errors = {k: max_err(out.intermediates[k], v) for k, v in data["intermediates"].items()}
    print("intermediates max abs error", errors)
    assert max(errors.values()) <= atol, errors


# ------------------------------------------------------------------ small networks in the authors' layouts

SMALL = dict(layers=(1, 1, 1), channels=(128, 128, 128), stem_chs=32)


def _plausible_camera(head: torch.nn.Linear) -> None:
    """Random networks give random cameras; a trained one gives s ≈ 0.9, t ≈ 0 for a centred person."""
    with torch.no_grad():
        head.weight.mul_(0.01)
        head.bias.copy_(torch.tensor([0.9, 0.0, 0.0]))


def small_maed_file(path: Path) -> Path:
    torch.manual_seed(1)
    net = MAED(MAEDConfig(embed_dim=64, num_blocks=1, num_heads=1, representation_size=64, hidden_dim=64, **SMALL))
    _plausible_camera(net.decoder.deccam)
    sd = {f"module.{k}": v for k, v in net.state_dict().items()}
    return save({"epoch": 30, "state_dict": sd, "performance": performance(), "optimizer": optimizer_state()}, path)


def small_int_file(path: Path) -> Path:
    torch.manual_seed(2)
    net = INT(INTConfig(embed_dim=64, depth=1, num_heads=1, temporal_layers=1, temporal_num_heads=1, **SMALL))
    _plausible_camera(net.cam_head)
    return save(
        {
            "epoch": 20,
            "performance": performance(),
            "history_best_performance": performance(),
            "state_dict": net.state_dict(),
            "optimizer": optimizer_state(),
        },
        path,
    )


def _layout(name: str) -> dict:
    from conftest import reference_dir

    path = reference_dir("hybrik") / "official_layout.json"
    if not path.is_file():
        pytest.skip(f"official layout not found: {path}")
    return json.loads(path.read_text())[name]


def hybrik_layout_checkpoint(path: Path, layout_name: str, variant: str, seed: int = 0) -> Path:
    """A HybrIK file with exactly the released keys, shapes and dtypes; random weights scaled so the heatmaps
    are not flat (the heads' own initialisation is ~0.001 and would give every joint the crop centre)."""
    torch.manual_seed(seed)
    net = HybrIK(variant)  # type: ignore[arg-type]
    head = net.head
    for i in (1, 2, 3):
        nn.init.kaiming_normal_(getattr(head, f"deconv{i}").weight)
    nn.init.normal_(head.heatmap_conv.weight, std=0.05)
    for m in (head.fc1, head.fc2, head.dec_shape, head.dec_twist, head.dec_cam, head.dec_leaf):
        if m is not None:
            nn.init.normal_(m.weight, std=0.03)
            nn.init.normal_(m.bias, std=0.1)
    own = net.state_dict()
    sd: dict[str, torch.Tensor] = {}
    for entry in _layout(layout_name)["keys"]:
        key, shape, dtype = entry["key"], tuple(entry["shape"]), getattr(torch, entry["dtype"])
        mapped, _ = official_to_ours({key: torch.zeros(shape, dtype=dtype)})
        if mapped:  # a network tensor: ours, at the released shape
            ((ours, _),) = mapped.items()
            assert tuple(own[ours].shape) == shape, key
            sd[key] = own[ours].clone().to(dtype)
        else:  # smpl.* buffers: present in the released files, ignored by the loader; zeros here
            sd[key] = torch.zeros(shape, dtype=dtype)
    torch.save(sd, path)
    return path
