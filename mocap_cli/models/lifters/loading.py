"""Loading the released MixSTE and Strided Transformer checkpoint files exactly as the authors published them.

* MixSTE (run.py): ``{'epoch', 'lr', 'random_state' (numpy RandomState), 'optimizer', 'model_pos'}``, every
  ``model_pos`` key prefixed ``module.`` (DataParallel). 243- and 81-frame variants exist.
* Strided Transformer: a flat state dict (``no_refine_*.pth``); the refine MLP is a separate flat file
  (``refine_*.pth``).

Files are read with ``weights_only=True`` (see ``mocap_cli.nets.checkpoints``) and loaded with ``strict=True``:
a file that does not match the layout is refused instead of leaving the network randomly initialised.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from mocap_cli.nets.checkpoints import load_checkpoint, strip_prefix
from mocap_cli.errors import MocapError
from mocap_cli.nets.mixste import RELEASED_NUM_HEADS, MixSTE2, MixSTEConfig, mixste_config_from_state_dict
from mocap_cli.nets.strided import RefineNet, StridedConfig, StridedTransformer, strided_config_from_state_dict


def _state_dict_in(obj: Any, entry: str | None, path: Path, what: str) -> dict[str, torch.Tensor]:
    if entry is not None and isinstance(obj, dict) and entry in obj:
        obj = obj[entry]
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise MocapError(f"{path} is not a {what} checkpoint (no state dict in the expected place); check that it is the right file.")
    return strip_prefix(dict(obj), "module.")


def _load_strict(model: nn.Module, sd: dict[str, torch.Tensor], path: Path, what: str) -> None:
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as exc:
        raise MocapError(f"{path} does not match the {what} weight layout; check that it is the right file.") from exc
    model.eval()


def _mixste_safetensors(path: Path, num_heads: int) -> tuple[dict[str, torch.Tensor], int]:
    """State dict and head count (metadata ``num_heads``, else ``num_heads``) of a MixSTE .safetensors file."""
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise MocapError(f"Weights file {path} does not exist; check the path.")
    try:
        with safe_open(str(path), framework="pt") as f:
            heads = int((f.metadata() or {}).get("num_heads", num_heads))
            return {k: f.get_tensor(k) for k in f.keys()}, heads
    except (SafetensorError, OSError, ValueError) as exc:
        raise MocapError(f"{path} is not a readable safetensors file ({exc.__class__.__name__}); re-create or re-copy it.") from exc


def load_mixste(path: Path | str, num_heads: int = RELEASED_NUM_HEADS) -> tuple[MixSTE2, MixSTEConfig]:
    """A released MixSTE checkpoint, or mocap's own ``.safetensors`` weights → (eval-mode ``MixSTE2`` on the CPU,
    its configuration inferred from the weights)."""
    path = Path(path)
    if path.suffix == ".safetensors":  # mocap's own trained weights (mocap train mixste): bare state dict
        sd, num_heads = _mixste_safetensors(path, num_heads)
    else:
        sd = _state_dict_in(load_checkpoint(path), "model_pos", path, "MixSTE")
    if "Temporal_pos_embed" not in sd:
        raise MocapError(f"{path} is not a MixSTE checkpoint (no MixSTE weights in it); check that it is the right file.")
    config = mixste_config_from_state_dict(sd, num_heads=num_heads)
    model = MixSTE2(config)
    _load_strict(model, sd, path, "MixSTE")
    return model, config


def load_strided(
    path: Path | str, refine_path: Path | str | None = None, stride_num: tuple[int, ...] | None = None
) -> tuple[StridedTransformer, StridedConfig, RefineNet | None]:
    """A released Strided Transformer lifter (and optionally its refine MLP) → (lifter, config, refine or None).

    Strides are not stored in the weights; they come from the authors' table for the window length unless given.
    """
    path = Path(path)
    sd = _state_dict_in(load_checkpoint(path), None, path, "Strided Transformer")
    if "Transformer.pos_embedding" not in sd:
        raise MocapError(
            f"{path} is not a Strided Transformer lifter checkpoint (no lifter weights in it); check that it is the right file."
        )
    config = strided_config_from_state_dict(sd, stride_num)
    model = StridedTransformer(config)
    _load_strict(model, sd, path, "Strided Transformer")
    refine = None
    if refine_path is not None:
        refine_path = Path(refine_path)
        rsd = _state_dict_in(load_checkpoint(refine_path), None, refine_path, "Strided Transformer refine")
        refine = RefineNet(config.out_joints)
        _load_strict(refine, rsd, refine_path, "Strided Transformer refine")
    return model, config, refine
