"""Checking a weights file before it enters the cache: with the family's own loader, named in its TOML.

A registry entry's ``loader = "mocap_cli.<module>:<function>"`` is the function the model itself builds its
network with; ``mocap weights import`` and ``download`` call that same function, so a file that installs is a
file that loads. Every loader takes ``(path, *, spec=...)`` and raises MocapError when the file is wrong.
Entries without a loader (a family mocap cannot run yet) get the weaker check that the file is a safe
checkpoint whose state dict has the declared tensor count.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any, Callable

from mocap_cli.errors import MocapError
from mocap_cli.weights.registry import WeightSpec

Validator = Callable[[Path], None]


def family_loader(spec: WeightSpec) -> Callable[..., Any] | None:
    """The function named by the entry's ``loader`` field, or None when the entry names none."""
    if not spec.loader:
        return None
    module_name, _, function = spec.loader.partition(":")
    try:
        found = getattr(import_module(module_name), function, None)
    except ImportError:
        found = None
    if not callable(found):
        raise MocapError(
            f"Weights entry {spec.name} names loader {spec.loader}, which this mocap does not have; fix "
            f"weights/{spec.family}.toml."
        )
    return found


def has_loader(spec: WeightSpec) -> bool:
    """Whether the family's own loader validates the file (otherwise only :func:`readable_checkpoint` does)."""
    return bool(spec.loader)


def validator_for(spec: WeightSpec) -> Validator:
    """``validate(path)`` for :func:`~mocap_cli.weights.cache.import_weights` and downloads: the family's loader."""

    def validate(path: Path) -> None:
        loader = family_loader(spec)
        if loader is None:
            readable_checkpoint(spec, path)
        else:
            loader(path, spec=spec)

    return validate


def readable_checkpoint(spec: WeightSpec, path: Path) -> None:
    """The fallback check: a checkpoint that loads safely and holds a state dict of tensors in the spec's
    layout (and with its ``num_tensors``, when the registry gives it)."""
    from mocap_cli.nets.checkpoints import read_state_dict

    sd = read_state_dict(path, spec)
    if spec.num_tensors is not None and len(sd) != spec.num_tensors:
        raise MocapError(
            f"{path} holds {len(sd)} weight tensors but {spec.name} has {spec.num_tensors}; check that it is "
            f"{spec.file_name} from {spec.page}."
        )


def run_validator(validate: Validator, path: Path, spec: WeightSpec) -> None:
    """Run a validator; anything but a MocapError it raises becomes one sentence naming the file."""
    try:
        validate(path)
    except MocapError:
        raise
    except Exception as exc:  # a validator bug or a loader error must not leave a traceback for the user
        raise MocapError(
            f"{path} could not be opened as {spec.name} weights ({exc.__class__.__name__}: {exc}); check that it is "
            f"{spec.file_name} from {spec.page}."
        ) from exc
