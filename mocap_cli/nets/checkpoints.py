"""Safe loading of model checkpoint files as the authors published them, and the one place that unwraps them.

Checkpoints are pickles; a pickle can run arbitrary code. We always load with ``weights_only=True`` and
allow only the few non-tensor types the released files are known to contain (numpy arrays and the numpy
random state some training scripts save next to the weights). Anything else is refused.

Where the weights sit inside a file (under which key, with which DataParallel prefix, next to which
non-weight buffers) is not written in any loader: every family's ``weights/<family>.toml`` entry declares
it, and :func:`state_dict_from_checkpoint` applies that declaration for all of them.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np
import torch

from mocap_cli.errors import MocapError

if TYPE_CHECKING:
    from mocap_cli.weights.registry import WeightSpec

DATA_PARALLEL_PREFIX = "module."


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
        found += [module._reconstruct, module.scalar]
    # dtype classes (numpy >= 1.25 pickles dtypes through numpy.dtypes.*DType)
    dtypes = getattr(np, "dtypes", None)
    if dtypes is not None:
        found += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    return found


def load_checkpoint(path: Path) -> Any:
    """Load a checkpoint file without executing code from it; map tensors to the CPU."""
    path = Path(path)
    if path.is_dir():
        raise MocapError(f"{path} is a folder, not a weights file; give the checkpoint file inside it.")
    if not path.is_file():
        raise MocapError(f"Weights file {path} does not exist; check the path.")
    try:
        with torch.serialization.safe_globals(_numpy_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # Only a pickle that names a forbidden class or function is a safety refusal; random bytes, another
        # file type or a damaged download fail on their first unknown opcode instead.
        if "global" not in str(exc).lower():
            raise MocapError(
                f"{path} is not a PyTorch checkpoint (it is damaged or another kind of file); download it again."
            ) from exc
        raise MocapError(
            f"{path} contains Python objects other than weights and was refused for safety; "
            "use the checkpoint file exactly as the authors published it."
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, IndexError, KeyError, TypeError) as exc:
        raise MocapError(
            f"{path} is not a readable PyTorch checkpoint ({exc.__class__.__name__}); re-download it."
        ) from exc


def state_dict_from_checkpoint(
    spec: WeightSpec, obj: Any, *, where: Path | str | None = None, what: str = ""
) -> dict[str, torch.Tensor]:
    """The network state dict inside a loaded checkpoint object, as ``spec`` (its TOML entry) declares it.

    Taken from under ``state_dict_key`` (or ``alt_state_dict_key``; required when the layout is "wrapped"),
    checked to be a non-empty ``str -> Tensor`` mapping, the declared ``key_prefix`` or DataParallel's
    ``module.`` removed from each key, and keys under ``ignore_prefixes`` (SMPL buffers) dropped.
    ``where`` (the file) and ``what`` (the network's name, e.g. "MixSTE") only shape the error messages.
    """
    source = str(where) if where is not None else "The file"
    label = what or spec.name
    article = "an" if label[:1].lower() in "aeiou" else "a"
    hint = f"check that it is {spec.file_name} from {spec.page}"
    inner = obj
    if isinstance(obj, Mapping):
        for key in (spec.state_dict_key, spec.alt_state_dict_key):
            if key and isinstance(obj.get(key), Mapping):
                inner = obj[key]
                break
        else:
            if spec.layout == "wrapped":
                raise MocapError(
                    f"{source} is not {article} {label} checkpoint (it has no '{spec.state_dict_key}' entry); {hint}."
                )
    if (
        not isinstance(inner, Mapping)
        or not inner
        or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in inner.items())
    ):
        raise MocapError(
            f"{source} is not {article} {label} checkpoint (no state dict of weights in the expected place); {hint}."
        )
    prefixes = tuple(p for p in (spec.key_prefix, DATA_PARALLEL_PREFIX) if p)
    out: dict[str, torch.Tensor] = {}
    for key, value in inner.items():
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        if spec.ignore_prefixes and key.startswith(spec.ignore_prefixes):
            continue
        out[key] = value
    if not out:
        raise MocapError(f"{source} holds no {label} network weights; {hint}.")
    return out


def read_state_dict(path: Path | str, spec: WeightSpec, what: str = "") -> dict[str, torch.Tensor]:
    """:func:`load_checkpoint` then :func:`state_dict_from_checkpoint`: the weights of a released file.

    Any other failure to parse the file (e.g. a text file named .pth) becomes a one-sentence MocapError too.
    """
    path = Path(path)
    try:
        obj = load_checkpoint(path)
    except MocapError:
        raise
    except Exception as exc:  # the unpickler raises assorted types on garbage input
        raise MocapError(
            f"{path} is not a readable PyTorch checkpoint; download the {what or spec.name} weights file again."
        ) from exc
    return state_dict_from_checkpoint(spec, obj, where=path, what=what)
