"""The model registry: every ``--model`` name, one entry point (``create_model``), one output type.

Entries are data (name, summary, kind, how to build, how to check readiness); the heavy imports happen
only when a model is built, so ``mocap models`` and ``mocap --help`` stay fast.
"""

from __future__ import annotations

from mocap_cli.errors import MocapError
from mocap_cli.models.base import ModelEntry, ModelSettings, MotionModel, Readiness


def _mediapipe_build(settings: ModelSettings) -> MotionModel:
    from mocap_cli.models.mediapipe_model import MediaPipeModel

    return MediaPipeModel(settings)


def _mediapipe_ready(settings: ModelSettings) -> Readiness:
    from mocap_cli.models.mediapipe_model import readiness

    return readiness(settings)


def _mesh_build(name: str):  # type: ignore[no-untyped-def]
    def build(settings: ModelSettings) -> MotionModel:
        from mocap_cli.models.mesh_model import MeshModel

        return MeshModel(name, settings)

    return build


def _mesh_ready(name: str):  # type: ignore[no-untyped-def]
    def ready(settings: ModelSettings) -> Readiness:
        from mocap_cli.models.mesh_model import readiness

        return readiness(name, settings)

    return ready


def registry() -> dict[str, ModelEntry]:
    entries = [
        ModelEntry("mediapipe", "MediaPipe Pose 3D landmarks + IK (default, nothing to download)", "landmarks",
                   _mediapipe_build, _mediapipe_ready),
        ModelEntry("maed", "MAED video mesh network: person crops → SMPL pose and shape (ICCV 2021)", "mesh",
                   _mesh_build("maed"), _mesh_ready("maed")),
        ModelEntry("int", "INT video mesh network: person crops → SMPL pose and shape (ICLR 2023)", "mesh",
                   _mesh_build("int"), _mesh_ready("int")),
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
    ready = entry.readiness(settings)
    if not ready.ready:
        raise MocapError(f"Model '{entry.name}' cannot run: {ready.detail}.")
    return entry.build(settings)
