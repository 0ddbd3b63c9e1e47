"""Reading the state dict out of a checkpoint file as the authors published it."""

from __future__ import annotations

from pathlib import Path

import torch

from mocap_cli.nets.checkpoints import load_checkpoint, strip_prefix, tensors_only
from mocap_cli.errors import MocapError


def read_state_dict(path: Path, model_name: str) -> dict[str, torch.Tensor]:
    """``checkpoint['state_dict']`` (or a bare state dict) with a DDP ``module.`` prefix removed.

    Loading goes through :func:`load_checkpoint` (weights_only, narrow allow-list); any other failure to
    parse the file (e.g. a text file named .pth) becomes a one-sentence MocapError too.
    """
    try:
        obj = load_checkpoint(path)
    except MocapError:
        raise
    except Exception as exc:  # the unpickler raises assorted types on garbage input
        raise MocapError(
            f"{path} is not a readable PyTorch checkpoint; download the {model_name} weights file again."
        ) from exc
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    return strip_prefix(tensors_only(obj, path))
