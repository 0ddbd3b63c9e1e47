"""Loading the released MixSTE and Strided Transformer checkpoint files exactly as the authors published them.

* MixSTE (run.py): ``{'epoch', 'lr', 'random_state' (numpy RandomState), 'optimizer', 'model_pos'}``, every
  ``model_pos`` key prefixed ``module.`` (DataParallel). 243- and 81-frame variants exist.
* Strided Transformer: a flat state dict (``no_refine_*.pth``); the refine MLP is a separate flat file
  (``refine_*.pth``).

Where the weights sit in each file is declared by ``weights/mixste.toml`` / ``weights/strided.toml`` and
applied by ``mocap_cli.nets.checkpoints.read_state_dict`` (``weights_only=True``); the networks are then loaded
with ``strict=True``: a file that does not match the layout is refused instead of leaving the network randomly
initialised. These functions are also what ``mocap weights import`` validates mixste / strided files with.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from mocap_cli.errors import MocapError
from mocap_cli.nets.checkpoints import read_state_dict
from mocap_cli.nets.mixste import RELEASED_NUM_HEADS, MixSTE2, MixSTEConfig, mixste_config_from_state_dict
from mocap_cli.nets.strided import RefineNet, StridedConfig, StridedTransformer, strided_config_from_state_dict
from mocap_cli.solve.body_size import BODY_SIZE_KEY
from mocap_cli.weights.registry import WeightSpec, family_spec, get_spec

REFINE_VARIANT = "strided-351-refine"  # the registry entry of the refine MLP file
_REFINE = "Strided Transformer refine"


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
        raise MocapError(
            f"{path} is not a readable safetensors file ({exc.__class__.__name__}); re-create or re-copy it."
        ) from exc


# A recorded size outside this range (metres, four limbs summed; an adult's is about 2.7) is a damaged record.
PLAUSIBLE_BODY_SIZE = (0.5, 5.0)


def trained_body_size(path: Path | str) -> float | None:
    """The training bodies' mean size (``body_size.BODY_SIZE_KEY``, metres) recorded in mocap's own weights; None
    for other files (the authors' checkpoints) and for weights trained before it was recorded."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if path.suffix != ".safetensors":
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            value = (f.metadata() or {}).get(BODY_SIZE_KEY)
    except (SafetensorError, OSError, ValueError):
        return None  # load_mixste reports an unreadable file
    try:
        size = float(value)
    except (TypeError, ValueError):  # no record (None), or not a number
        return None
    return size if PLAUSIBLE_BODY_SIZE[0] < size < PLAUSIBLE_BODY_SIZE[1] else None


def load_mixste(
    path: Path | str, num_heads: int = RELEASED_NUM_HEADS, *, spec: WeightSpec | None = None
) -> tuple[MixSTE2, MixSTEConfig]:
    """A released MixSTE checkpoint, or mocap's own ``.safetensors`` weights → (eval-mode ``MixSTE2`` on the CPU,
    its configuration inferred from the weights).

    ``spec`` is the file's registry entry (default: the mixste family's; its variants share the layout).
    """
    path = Path(path)
    if path.suffix == ".safetensors":  # mocap's own trained weights (mocap train mixste): bare state dict
        sd, num_heads = _mixste_safetensors(path, num_heads)
    else:
        sd = read_state_dict(path, spec or family_spec("mixste"), "MixSTE")
    if "Temporal_pos_embed" not in sd:
        raise MocapError(
            f"{path} is not a MixSTE checkpoint (no MixSTE weights in it); check that it is the right file."
        )
    config = mixste_config_from_state_dict(sd, num_heads=num_heads)
    model = MixSTE2(config)
    _load_strict(model, sd, path, "MixSTE")
    return model, config


def load_strided(
    path: Path | str,
    refine_path: Path | str | None = None,
    stride_num: tuple[int, ...] | None = None,
    *,
    spec: WeightSpec | None = None,
) -> tuple[StridedTransformer, StridedConfig, RefineNet | None]:
    """A released Strided Transformer lifter (and optionally its refine MLP) → (lifter, config, refine or None).

    Strides are not stored in the weights; they come from the authors' table for the window length unless given.
    ``spec`` is the lifter file's registry entry (default: the strided family's).
    """
    path = Path(path)
    sd = read_state_dict(path, spec or family_spec("strided"), "Strided Transformer")
    if "Transformer.pos_embedding" not in sd:
        raise MocapError(
            f"{path} is not a Strided Transformer lifter checkpoint (no lifter weights in it); check that it is the "
            "right file."
        )
    config = strided_config_from_state_dict(sd, stride_num)
    model = StridedTransformer(config)
    _load_strict(model, sd, path, "Strided Transformer")
    refine = None
    if refine_path is not None:
        refine_path = Path(refine_path)
        refine = _refine_from(
            read_state_dict(refine_path, get_spec(REFINE_VARIANT), _REFINE), config.out_joints, refine_path
        )
    return model, config, refine


def load_strided_refine(path: Path | str, *, spec: WeightSpec | None = None) -> RefineNet:
    """The refine MLP file on its own (joint count read from its output layer), eval mode on the CPU."""
    path = Path(path)
    sd = read_state_dict(path, spec or get_spec(REFINE_VARIANT), _REFINE)
    out = sd.get("post_refine.3.weight")
    return _refine_from(sd, int(out.shape[0]) // 2 if out is not None else 17, path)


def _refine_from(sd: dict[str, torch.Tensor], joints: int, path: Path) -> RefineNet:
    refine = RefineNet(joints)
    _load_strict(refine, sd, path, _REFINE)
    return refine
