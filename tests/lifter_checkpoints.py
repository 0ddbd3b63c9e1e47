"""Small MixSTE / Strided Transformer checkpoints written in each authors' exact file layout (random weights)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mocap_cli.nets.mixste import MixSTE2, MixSTEConfig
from mocap_cli.nets.strided import StridedConfig, StridedTransformer

WINDOW = 27


def write_mixste(path: Path, seed: int = 0) -> Path:
    """A MixSTE checkpoint as run.py saves it: {epoch, lr, random_state, optimizer, model_pos: module.*}."""
    torch.manual_seed(seed)
    net = MixSTE2(MixSTEConfig(num_frame=WINDOW, embed_dim=32, depth=2))
    params = list(net.state_dict().values())
    optimizer = {"state": {i: {"step": torch.tensor(5.0), "exp_avg": p, "exp_avg_sq": p} for i, p in enumerate(params)},
                 "param_groups": [{"lr": 4e-5, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.1,
                                   "params": list(range(len(params)))}]}  # fmt: skip
    rng = np.random.RandomState(seed)
    rng.permutation(10)
    torch.save({"epoch": 80, "lr": 1e-5, "random_state": rng, "optimizer": optimizer,
                "model_pos": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)  # fmt: skip
    return path


def write_strided(path: Path, seed: int = 0) -> Path:
    """A Strided Transformer lifter as the authors save it: the flat state dict (BatchNorm stats included)."""
    torch.manual_seed(seed)
    net = StridedTransformer(StridedConfig(layers=2, channel=32, d_hid=64, frames=WINDOW, stride_num=(3, 3, 3)))
    for m in net.modules():  # non-trivial running statistics, as a trained file has
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    torch.save(net.state_dict(), path)
    return path
