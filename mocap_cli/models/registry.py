"""The model registry: every ``--model`` name, one entry point (``create_model``), one output type.

Entries are data (name, summary, kind, how to build, how to check readiness); the heavy imports happen
only when a model is built, so ``mocap models`` and ``mocap --help`` stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Callable

from mocap_cli.errors import MocapError
from mocap_cli.models.base import ModelEntry, ModelSettings, MotionModel, Readiness


def _adapter(
    module: str, cls: str, name: str
) -> tuple[Callable[[ModelSettings], MotionModel], Callable[[ModelSettings], Readiness]]:
    """Build/readiness functions that import the adapter module only when called."""

    def build(settings: ModelSettings) -> MotionModel:
        model_cls = getattr(import_module(f"mocap_cli.models.{module}"), cls)
        return model_cls(name, settings)

    def ready(settings: ModelSettings) -> Readiness:
        check = import_module(f"mocap_cli.models.{module}").readiness
        return check(name, settings)

    return build, ready


def registry() -> dict[str, ModelEntry]:
    rows = [
        (
            "mediapipe",
            "MediaPipe Pose 3D landmarks + IK (default, nothing to download)",
            "landmarks",
            _adapter("mediapipe", "MediaPipeModel", "mediapipe"),
        ),
        (
            "fused",
            "MediaPipe's 3D landmarks averaged with the MixSTE lifter's 3D + IK (nothing to download: the shipped "
            "MixSTE weights)",
            "lifter",
            _adapter("fused", "FusedModel", "fused"),
        ),
        (
            "mixste",
            "MixSTE 2D->3D keypoint lifter on MediaPipe 2D + IK (CVPR 2022; the authors' weights if imported, else "
            "mocap's own, trained on CMU mocap)",
            "lifter",
            _adapter("lifters.adapter", "LifterModel", "mixste"),
        ),
        (
            "strided",
            "Strided Transformer 2D->3D lifter on MediaPipe 2D + IK (TMM 2022; the authors' weights)",
            "lifter",
            _adapter("lifters.adapter", "LifterModel", "strided"),
        ),
        (
            "maed",
            "MAED video mesh network: person crops -> SMPL pose and shape (ICCV 2021)",
            "mesh",
            _adapter("mesh.adapter", "MeshModel", "maed"),
        ),
        (
            "int",
            "INT video mesh network: person crops -> SMPL pose and shape (ICLR 2023)",
            "mesh",
            _adapter("mesh.adapter", "MeshModel", "int"),
        ),
        (
            "unspat",
            "UNSPAT video mesh model on HybrIK ResNet-34: person crops -> SMPL pose (WACV 2023)",
            "mesh",
            _adapter("unspat", "UnspatModel", "unspat"),
        ),
    ]
    return {name: ModelEntry(name, summary, kind, build, ready) for name, summary, kind, (build, ready) in rows}


def model_entry(name: str) -> ModelEntry:
    entries = registry()
    key = name.lower()
    if key not in entries:
        raise MocapError(f"Unknown model '{name}'; choose one of: {', '.join(entries)} (see `mocap models`).")
    return entries[key]


def create_model(name: str, settings: ModelSettings) -> MotionModel:
    """Build a model by name, or fail with one sentence saying what is missing."""
    entry = model_entry(name)
    ready = entry.readiness(settings)
    if not ready.ready:
        raise MocapError(f"Model '{entry.name}' cannot run: {ready.detail}.")
    return entry.build(settings)
