"""The model registry: every ``--model`` name, one entry point (``create_model``), one output type.

Entries are data (name, summary, kind, how to build, how to check readiness); the heavy imports happen
only when a model is built, so ``mocap models`` and ``mocap --help`` stay fast.
"""

from __future__ import annotations

from mocap_cli.errors import MocapError
from dataclasses import replace

from mocap_cli.models.base import ModelEntry, ModelSettings, MotionModel, Readiness, resolve_device


def _mediapipe_build(settings: ModelSettings) -> MotionModel:
    from mocap_cli.models.mediapipe_model import MediaPipeModel

    return MediaPipeModel(settings)


def _mediapipe_ready(settings: ModelSettings) -> Readiness:
    from mocap_cli.models.mediapipe_model import readiness

    return readiness(settings)


def _lifter_build(name: str):
    def build(settings: ModelSettings) -> MotionModel:
        from mocap_cli.models.lifter_model import LifterModel

        return LifterModel(name, settings)

    return build


def _lifter_ready(name: str):
    def ready(settings: ModelSettings) -> Readiness:
        from mocap_cli.models.lifter_model import readiness

        return readiness(name, settings)

    return ready


def _unspat_build(settings: ModelSettings) -> MotionModel:
    from mocap_cli.models.unspat_model import UnspatModel

    return UnspatModel(settings)


def _unspat_ready(settings: ModelSettings) -> Readiness:
    from mocap_cli.models.unspat_model import readiness

    return readiness(settings)


def registry() -> dict[str, ModelEntry]:
    entries = [
        ModelEntry("mediapipe", "MediaPipe Pose 3D landmarks + IK (default, nothing to download)", "landmarks",
                   _mediapipe_build, _mediapipe_ready),
        ModelEntry("mixste", "MixSTE 2D->3D keypoint lifter on MediaPipe 2D + IK (needs the authors' weights)", "lifter",
                   _lifter_build("mixste"), _lifter_ready("mixste")),
        ModelEntry("strided", "Strided Transformer 2D->3D keypoint lifter on MediaPipe 2D + IK (needs the authors' weights)",
                   "lifter", _lifter_build("strided"), _lifter_ready("strided")),
        ModelEntry("unspat", "UNSPAT video mesh model on HybrIK ResNet-34: person crops → SMPL pose (WACV 2023)", "mesh",
                   _unspat_build, _unspat_ready),
    ]
    return {e.name: e for e in entries}


DEFAULT_MODEL = "mediapipe"


def model_entry(name: str) -> ModelEntry:
    entries = registry()
    key = name.lower()
    if key not in entries:
        raise MocapError(f"Unknown model '{name}'; choose one of: {', '.join(entries)} (see `mocap models`).")
    return entries[key]


def create_model(name: str, settings: ModelSettings) -> MotionModel:
    """Build a model by name, or fail with one sentence saying what is missing."""
    entry = model_entry(name)
    if entry.kind != "landmarks":  # torch models run on a concrete device
        settings = replace(settings, device=resolve_device(settings.device))
    ready = entry.readiness(settings)
    if not ready.ready:
        raise MocapError(f"Model '{entry.name}' cannot run: {ready.detail}.")
    return entry.build(settings)
