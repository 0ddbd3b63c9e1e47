"""Safe loading of model checkpoint files as the authors published them.

Checkpoints are pickles; a pickle can run arbitrary code. We always load with ``weights_only=True`` and
allow only the few non-tensor types the released files are known to contain (numpy arrays and the numpy
random state some training scripts save next to the weights). Anything else is refused.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mocap_cli.errors import MocapError


def _numpy_safe_globals() -> list[Any]:
    """Types a pickled ``numpy.random.RandomState`` and plain numpy arrays need (numpy 1.x and 2.x names)."""
    import numpy.random._pickle as np_pickle

    found: list[Any] = [np.ndarray, np.dtype, np.random.RandomState, np.random.MT19937]
    for name in ("__randomstate_ctor", "__bit_generator_ctor", "__generator_ctor"):
        if hasattr(np_pickle, name):
            found.append(getattr(np_pickle, name))
    for module_name in ("numpy.core.multiarray", "numpy._core.multiarray"):
        try:
            module = __import__(module_name, fromlist=["_reconstruct", "scalar"])
        except ImportError:
            continue
        found += [getattr(module, "_reconstruct"), getattr(module, "scalar")]
    # dtype classes (numpy >= 1.25 pickles dtypes through numpy.dtypes.*DType)
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return found


def load_checkpoint(path: Path) -> Any:
    """Load a checkpoint file without executing code from it; map tensors to the CPU."""
    path = Path(path)
    if not path.is_file():
        raise MocapError(f"Weights file {path} does not exist; check the path.")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise MocapError(
            f"{path} contains Python objects other than weights and was refused for safety; "
            "use the checkpoint file exactly as the authors published it."
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError, TypeError) as exc:
        raise MocapError(f"{path} is not a readable PyTorch checkpoint ({exc.__class__.__name__}); re-download it.") from exc


def strip_prefix(state_dict: dict[str, torch.Tensor], prefix: str = "module.") -> dict[str, torch.Tensor]:
    """Remove a DataParallel-style prefix from every key that has it."""
    return {(k[len(prefix):] if k.startswith(prefix) else k): v for k, v in state_dict.items()}


def tensors_only(obj: Any, where: Path) -> dict[str, torch.Tensor]:
    """The state dict inside a loaded checkpoint object, checked to be a str -> Tensor mapping."""
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise MocapError(f"{where} does not hold a model state dict; check that it is the right file.")
    return obj
