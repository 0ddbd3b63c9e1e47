"""The options that decide a clip's outputs: one frozen ``RunSettings`` with every default and every check.

`mocap run`, `mocap batch` and API callers describe a run the same way, so a flag means the same thing and
fails the same way everywhere. ``validate()`` runs every check that needs no decoding, before any work (the
CLI's Typer options also declare ranges and choices, but API callers reach the pipeline without them). The
output-rate limit depends on the video's own rate, so ``check_output_fps`` runs once the video is probed.

The stages keep their own views, built from these settings so defaults exist only here: the pipeline's
per-clip ``pipeline.RunOptions`` (output paths + settings, see ``build_run_options``) and the models'
``models.base.ModelSettings``. Smoothing presets, rig presets and models are data-driven names (files under
``presets/``, which ``$MOCAP_PRESETS`` may replace, and the model registry), so they are checked against
their registries rather than typed as fixed choices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral
from pathlib import Path
from typing import TYPE_CHECKING, Literal, get_args

from mocap_cli.body.select import MeshChoice
from mocap_cli.errors import MocapError
from mocap_cli.export.rig_presets import DEFAULT_RIG
from mocap_cli.export.root_motion import RootMode
from mocap_cli.post.resample import FPS_ALWAYS_ALLOWED, FPS_PER_SOURCE_RATE, max_output_fps  # noqa: F401 (re-exported)
from mocap_cli.solve.body_size import HEIGHT_MAX_M, HEIGHT_MIN_M
from mocap_cli.solve.camera import DEFAULT_FOV_DEGREES, FOV_MAX_DEGREES, FOV_MIN_DEGREES

if TYPE_CHECKING:
    from mocap_cli.models.base import ModelSettings
    from mocap_cli.pipeline import RunOptions

Device = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[str, ...] = get_args(Device)
FootLock = Literal["auto", "off"]
FOOT_LOCK_MODES: tuple[str, ...] = get_args(FootLock)
HandsMode = Literal["auto", "off"]
HANDS_MODES: tuple[str, ...] = get_args(HandsMode)
PeopleChoice = str | int  # "largest", "all" or a count ≥ 1 (see parse_people)

# The ranges are the computations' own (the camera solve and resampling guard themselves); they live there.


@dataclass(frozen=True)
class RunSettings:
    """Every option that decides a clip's outputs, with its default. ``formats`` are the output file types
    (`mocap batch --export-format`; for `mocap run` the extensions of its ``--export`` paths)."""

    model: str = "mediapipe"
    weights: str | None = None  # a checkpoint file or a registry variant name
    smpl: Path | None = None
    formats: tuple[str, ...] = ("glb",)
    start: float | None = None  # seconds
    end: float | None = None  # seconds
    fps: float | None = None  # None: the video's rate
    smooth: str = "light"  # smoothing preset (presets/smooth/<name>.toml)
    preset: str = DEFAULT_RIG  # rig preset (presets/rig/<name>.toml)
    root: RootMode = "world"
    mesh: MeshChoice = "auto"
    device: Device = "auto"  # torch models resolve auto when built
    fov: float = DEFAULT_FOV_DEGREES
    batch_size: int = 32  # windows or crops per model batch
    foot_lock: FootLock = "auto"  # ground contacts + foot locking (post.foot_lock)
    overwrite: bool = False
    reference_pose: str = "none"  # none | t | a: a bind-pose frame 0 in BVH/GLB/FBX (export.reference_pose)
    preview: bool = False  # a --preview video per clip (`mocap run` names it; `mocap batch` puts it beside)
    hands: HandsMode = "auto"  # auto: animated fingers from the hand stage; off: the 24-joint body only
    people: str = "largest"  # largest (run_clip), all or N (people_pipeline.run_people); see parse_people
    height: float | None = None  # the performer's stature (metres; solve.body_size); None: the model's own size

    def validate(self, *, check_gpu: bool = True) -> None:
        """Raise ``MocapError`` (one sentence naming the flag) for the first setting that cannot work.
        ``check_gpu=False`` when the model runs elsewhere (Ray: the GPUs are on the cluster)."""
        from mocap_cli.body.select import check_mesh_choice
        from mocap_cli.export.reference_pose import check_reference_pose
        from mocap_cli.export.rig_presets import load_rig_preset
        from mocap_cli.export.root_motion import check_root_mode
        from mocap_cli.models.registry import model_entry
        from mocap_cli.post.smoothing import load_smoothing_preset

        parse_formats(",".join(self.formats))
        entry = model_entry(self.model)
        load_smoothing_preset(self.smooth)
        load_rig_preset(self.preset)
        check_root_mode(self.root)
        check_mesh_choice(self.mesh)
        check_reference_pose(self.reference_pose)
        check_device(self.device, check_gpu=check_gpu)
        if self.start is not None and not (math.isfinite(self.start) and self.start >= 0):
            raise MocapError("--start must be zero or positive (seconds).")
        if self.end is not None and not self.end > (self.start or 0.0):  # also refuses NaN
            raise MocapError(
                "--end must be after --start." if self.start is not None else "--end must be positive (seconds)."
            )
        if self.fps is not None and not (math.isfinite(self.fps) and self.fps > 0):
            raise MocapError("--fps must be a positive number of frames per second.")
        if not FOV_MIN_DEGREES <= self.fov <= FOV_MAX_DEGREES:  # also refuses NaN
            raise MocapError(f"--fov must be between {FOV_MIN_DEGREES:g} and {FOV_MAX_DEGREES:g} degrees.")
        if self.hands not in HANDS_MODES:
            raise MocapError(f"Unknown --hands '{self.hands}'; use auto or off.")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, Integral) or self.batch_size < 1:
            raise MocapError("--batch-size must be a whole number of at least 1.")
        if self.foot_lock not in FOOT_LOCK_MODES:
            raise MocapError(f"Unknown --foot-lock '{self.foot_lock}'; use {' or '.join(FOOT_LOCK_MODES)}.")
        if self.people_choice() != "largest" and self.preview:
            raise MocapError("--preview draws one person; leave it out with --people all|N, or use --people largest.")
        if self.height is not None:
            self._check_height(entry.kind)

    def _check_height(self, model_kind: str) -> None:
        from mocap_cli.models.registry import registry

        if not HEIGHT_MIN_M <= self.height <= HEIGHT_MAX_M:  # also refuses NaN
            raise MocapError(
                f"--height is the performer's standing height in metres, between {HEIGHT_MIN_M:g} and "
                f"{HEIGHT_MAX_M:g} (e.g. --height 1.75), not {self.height:g}."
            )
        if model_kind == "mesh":
            *others, last = (n for n, e in registry().items() if e.kind != "mesh")
            raise MocapError(
                f"--model {self.model} takes the body's size from its SMPL shape; leave --height out, or use "
                f"{', '.join(others)} or {last}."
            )
        if self.people_choice() != "largest":
            raise MocapError("--height is one person's height; leave it out with --people all|N.")

    def people_choice(self) -> PeopleChoice:
        """``people`` parsed: "largest", "all" or a count (a ``MocapError`` for anything else)."""
        return parse_people(self.people)

    def model_settings(self) -> ModelSettings:
        """What models receive (``create_model``); ``auto`` devices are resolved when a torch model is built."""
        from mocap_cli.models.base import ModelSettings

        return ModelSettings(
            device=self.device.lower(),
            fov_degrees=self.fov,
            weights=weights_path(self.weights),
            smpl=self.smpl,
            batch_size=self.batch_size,
            height=self.height,
        )

    @classmethod
    def from_run_options(cls, options: RunOptions) -> RunSettings:
        """The settings a ``RunOptions`` describes (API callers build those directly); formats are taken from
        its output paths' extensions."""
        model = options.settings
        return cls(
            model=options.model,
            weights=None if model.weights is None else str(model.weights),
            smpl=model.smpl,
            formats=formats_of(options.exports),
            start=options.start,
            end=options.end,
            fps=options.fps,
            smooth=options.smooth,
            preset=options.preset,
            root=options.root,
            mesh=options.mesh,
            device=model.device,
            fov=model.fov_degrees,
            batch_size=model.batch_size,
            foot_lock=options.foot_lock,
            overwrite=options.overwrite,
            reference_pose=options.reference_pose,
            preview=options.preview is not None,
            hands=options.hands,
            height=model.height,
        )


DEFAULTS = RunSettings()


def build_run_options(
    exports: tuple[Path, ...], settings: RunSettings, *, overwrite: bool | None = None, preview: Path | None = None
) -> RunOptions:
    """One clip's ``RunOptions`` for ``pipeline.run_clip``: these output paths with these settings.
    ``overwrite`` replaces ``settings.overwrite`` (a batch decides per clip); ``preview`` is the clip's
    ``--preview`` video path."""
    from mocap_cli.pipeline import RunOptions

    return RunOptions(
        exports=tuple(exports),
        model=settings.model,
        start=settings.start,
        end=settings.end,
        fps=settings.fps,
        smooth=settings.smooth,
        overwrite=settings.overwrite if overwrite is None else overwrite,
        preset=settings.preset,
        root=settings.root,
        mesh=settings.mesh,
        foot_lock=settings.foot_lock,
        settings=settings.model_settings(),
        reference_pose=settings.reference_pose,
        preview=preview,
        hands=settings.hands,
    )


def parse_people(text: str) -> PeopleChoice:
    """``--people`` value → "largest", "all" or a positive count; anything else is one clear sentence."""
    value = str(text).strip().lower()
    if value in ("largest", "all"):
        return value
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1 or str(count) != value.lstrip("+"):
        raise MocapError(f"--people must be largest, all or a number of people of at least 1, not '{text}'.")
    return count


def check_device(choice: str, *, check_gpu: bool = True) -> Device:
    """``auto``, ``cpu`` or ``cuda`` (any case); ``cuda`` is refused here when no CUDA GPU is usable.
    torch is imported only for ``cuda``, so the other choices stay cheap."""
    device = choice.lower()
    if device not in DEVICES:
        raise MocapError(f"Unknown device '{choice}'; use {', '.join(DEVICES[:-1])} or {DEVICES[-1]}.")
    if device == "cuda" and check_gpu:
        from mocap_cli.models.base import resolve_device

        resolve_device(device)
    return device  # type: ignore[return-value]


def check_output_fps(fps: float | None, source_fps: float) -> None:
    """Refuse an output rate far above the source's (``FPS_PER_SOURCE_RATE`` times, or
    ``FPS_ALWAYS_ALLOWED`` when higher): every extra frame is interpolated, not measured."""
    if fps is None:
        return
    limit = max_output_fps(float(source_fps))
    if fps > limit:
        raise MocapError(
            f"--fps {fps:g} is too high for a {float(source_fps):g} fps source; "
            f"use at most {limit:g} frames per second."
        )


def weights_path(value: str | None) -> Path | None:
    """``--weights`` takes a file or a registry variant name; both travel to the model as a Path."""
    return Path(value) if value else None


def parse_formats(text: str) -> tuple[str, ...]:
    """``"glb,bvh"`` → ("glb", "bvh"); an unknown or missing format fails before any work."""
    from mocap_cli.export import supported_extensions

    known = [e.lstrip(".") for e in supported_extensions()]
    formats: list[str] = []
    for part in text.split(","):
        fmt = part.strip().lower().lstrip(".")
        if not fmt:
            continue
        if fmt not in known:
            raise MocapError(f"Unknown export format '{fmt}'; use a comma-separated list of {', '.join(known)}.")
        if fmt not in formats:
            formats.append(fmt)
    if not formats:
        raise MocapError(f"No export format given; use e.g. --export-format glb (known: {', '.join(known)}).")
    return tuple(formats)


def formats_of(exports: tuple[Path, ...] | list[Path]) -> tuple[str, ...]:
    """The distinct output formats of these paths (by extension, in order): `mocap run`'s ``formats``."""
    return tuple(dict.fromkeys(p.suffix.lower().lstrip(".") for p in exports))
