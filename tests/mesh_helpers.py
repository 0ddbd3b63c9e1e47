"""Helpers shared by the MAED / INT tests: released-layout checkpoint files with random weights."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

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
            {"lr": 1e-4, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-5, "amsgrad": False,
             "initial_lr": 1e-4, "params": [0]}
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
