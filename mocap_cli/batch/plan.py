"""What a batch will do, decided before any clip runs: its options, the settings check, the clips found
under IN_DIR and where each one's outputs go (OUT_DIR mirrors IN_DIR's sub-folders).

Everything that can fail about the settings fails here, in one sentence, before a worker starts or a file is
written; a clip that cannot run at all (its outputs would overwrite another clip's) fails alone.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mocap_cli.batch.state import sidecar_path
from mocap_cli.errors import MocapError
from mocap_cli.preview.paths import preview_beside
from mocap_cli.settings import RunSettings

DEFAULT_PATTERNS = ("*.mp4", "*.mov", "*.m4v", "*.avi", "*.mkv", "*.webm", "*.mpg", "*.mpeg", "*.wmv")


@dataclass
class BatchOptions:
    in_dir: Path
    out_dir: Path
    settings: RunSettings = field(default_factory=RunSettings)
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    recursive: bool = False
    jobs: int | None = None  # None: one per CPU core
    resume: bool = False
    overwrite: bool = False
    ray_address: str | None = None  # None: local process pool; "auto", "local" or an address: Ray


@dataclass
class ClipJob:
    """One clip to run: where it is, where its outputs and sidecar go."""

    index: int
    source: Path
    rel: str  # path relative to IN_DIR, posix
    outputs: tuple[Path, ...]
    sidecar: Path
    input: dict[str, Any] = field(default_factory=dict)


def check_settings(settings: RunSettings, local: bool = True) -> bool:
    """Everything about the settings that can fail, checked before any clip starts (``settings.validate()``
    plus the model's readiness). Returns whether the model will compute on a GPU.
    ``local=False`` (Ray): the GPUs are on the cluster, so ``--device cuda`` is not checked here."""
    from mocap_cli.models.base import resolve_device
    from mocap_cli.models.registry import model_entry

    settings.validate(check_gpu=local)
    entry = model_entry(settings.model)
    model_settings = settings.model_settings()
    gpu = False
    if entry.kind != "landmarks":  # torch models run on a concrete device (as create_model decides)
        if local:
            model_settings = dataclasses.replace(model_settings, device=resolve_device(model_settings.device))
            gpu = model_settings.device == "cuda"
        else:
            gpu = model_settings.device == "cuda"
            model_settings = dataclasses.replace(model_settings, device="cpu")
    ready = entry.readiness(model_settings)
    if not ready.ready:
        raise MocapError(f"Model '{entry.name}' cannot run: {ready.detail}.")
    return gpu


def find_clips(
    in_dir: Path, patterns: tuple[str, ...] = DEFAULT_PATTERNS, recursive: bool = False, exclude: Path | None = None
) -> list[Path]:
    """Files under ``in_dir`` whose name (or relative path, for patterns with '/') matches a pattern,
    case-insensitively; hidden files and folders and anything under ``exclude`` are left out. Sorted."""
    if not in_dir.is_dir():
        raise MocapError(f"Input folder {in_dir} does not exist or is not a folder; check the path.")
    in_dir = in_dir.resolve()
    exclude = exclude.resolve() if exclude is not None and exclude.resolve() != in_dir else None
    found: list[Path] = []
    for root, dirs, files in os.walk(in_dir):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (exclude is None or here / d != exclude))
        if not recursive:
            dirs[:] = []
        for name in sorted(files):
            if name.startswith("."):
                continue
            rel = (here / name).relative_to(in_dir).as_posix()
            if any(fnmatch.fnmatch((rel if "/" in p else name).lower(), p.lower()) for p in patterns):
                found.append(here / name)
    return sorted(found, key=lambda p: p.relative_to(in_dir).as_posix())


def output_paths(out_dir: Path, rel: str, formats: tuple[str, ...]) -> tuple[Path, ...]:
    stem = out_dir / Path(rel).with_suffix("")
    return tuple(stem.with_name(f"{stem.name}.{fmt}") for fmt in formats)


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def plan(options: BatchOptions) -> tuple[list[ClipJob], dict[int, str]]:
    """The clips to consider, and the ones that cannot run at all (output name clash) with their reason."""
    out_dir = options.out_dir.resolve()
    sources = find_clips(options.in_dir, options.patterns, options.recursive, exclude=out_dir)
    if not sources:
        where = "under" if options.recursive else "in"
        raise MocapError(
            f"No clips matching {', '.join(options.patterns)} {where} {options.in_dir}; "
            "check the folder, --pattern or --recursive."
        )
    in_dir = options.in_dir.resolve()
    jobs: list[ClipJob] = []
    clashes: dict[int, str] = {}
    owners: dict[Path, str] = {}
    for i, source in enumerate(sources):
        rel = source.relative_to(in_dir).as_posix()
        outputs = output_paths(out_dir, rel, options.settings.formats)
        if options.settings.preview:  # an output like the others: cleaned up, recorded, checked for clashes
            outputs += (preview_beside(outputs[0]),)
        jobs.append(ClipJob(i, source, rel, outputs, sidecar_path(out_dir, rel)))
        for path in outputs:
            if path in owners:
                clashes[i] = (
                    f"Its output {path.name} would overwrite that of {owners[path]}; rename one of the two clips."
                )
            owners.setdefault(path, rel)
    return jobs, clashes
