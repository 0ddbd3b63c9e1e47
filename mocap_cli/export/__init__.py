"""Exporters, chosen by file extension, and the atomic write every one of them goes through."""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from mocap_cli.body.mesh import SkinnedMesh
from mocap_cli.core.atomic import TEMP_SUFFIX, atomic_path, sweep_stale_partials, temp_path_beside
from mocap_cli.core.motion import Motion
from mocap_cli.core.motion_check import InvalidMotion, check_motion
from mocap_cli.errors import MocapError, os_error_sentence


@dataclass(frozen=True)
class ExportOptions:
    """How to write: an optional skinned mesh (GLB/FBX), the length unit of BVH/FBX (1 = metres, 100 = cm;
    glTF is always metres), the FBX up axis ("Y" or "Z") and the FBX armature node's name (``root`` for
    Unreal, where it becomes the single root bone). ``export.prepare.prepare_export`` fills these from a
    rig preset."""

    mesh: SkinnedMesh | None = None
    unit_scale: float = 1.0
    up_axis: str = "Y"
    armature_name: str = "Armature"


def _write_npz(motion: Motion, path: Path, options: ExportOptions) -> None:
    motion.save_npz(path)


def _write_bvh(motion: Motion, path: Path, options: ExportOptions) -> None:
    from mocap_cli.export.bvh import write_bvh

    write_bvh(motion, path, scale=options.unit_scale)


def _write_glb(motion: Motion, path: Path, options: ExportOptions) -> None:
    from mocap_cli.export.gltf import write_glb

    write_glb(motion, path, mesh=options.mesh)


def _write_fbx(motion: Motion, path: Path, options: ExportOptions) -> None:
    from mocap_cli.export.fbx import write_fbx

    write_fbx(
        motion,
        path,
        mesh=options.mesh,
        unit="cm" if options.unit_scale == 100.0 else "m",
        up_axis=options.up_axis,
        armature_name=options.armature_name,
    )  # type: ignore[arg-type]


Writer = Callable[[Motion, Path, ExportOptions], None]
WRITERS: dict[str, Writer] = {".npz": _write_npz, ".bvh": _write_bvh, ".glb": _write_glb, ".fbx": _write_fbx}


def supported_extensions() -> list[str]:
    return sorted(WRITERS)


def check_output_path(path: Path, *, overwrite: bool) -> None:
    """Fail early (before any work) on an unknown extension, an unwritable folder or an existing file."""
    if path.suffix.lower() not in WRITERS:
        raise MocapError(
            f"Cannot export to '{path.name}': unknown extension '{path.suffix or '(none)'}'; "
            f"use one of {', '.join(supported_extensions())}."
        )
    if path.is_dir():
        raise MocapError(f"Output path {path} is a folder; give a file name such as {path / 'motion.glb'}.")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        blocker = next((p for p in (folder, *folder.parents) if p.exists() or p.is_symlink()), None)
        if blocker is not None and not blocker.is_dir():
            raise MocapError(
                f"Cannot write {path}: {blocker} is a file, not a folder; choose an output path inside a folder."
            )
        raise MocapError(f"Output folder {folder} does not exist; create it or choose another path.")
    if path.exists() and not overwrite:
        raise MocapError(f"{path} already exists; pass --overwrite to replace it.")
    try:  # the real test (permissions, read-only disks, pseudo-filesystems such as /proc): make a temp file
        temp_path_beside(path).unlink()
    except OSError as exc:
        if exc.errno == errno.ENOENT:  # the folder exists but takes no files (/proc, a vanished mount)
            raise MocapError(f"Cannot create files in {folder}; choose another output folder.") from exc
        raise MocapError(os_error_sentence(exc, folder)) from exc


def export_motion(motion: Motion, path: Path, options: ExportOptions | None = None, *, overwrite: bool = True) -> None:
    """Write ``motion`` to ``path`` atomically: a temporary file in the same folder, renamed when complete,
    so a failure or interruption never leaves a partial output behind. With ``overwrite=False`` a file that
    appears at ``path`` meanwhile (another process) is never replaced. The motion is checked first
    (``core.motion_check``), so no writer turns NaN or a broken skeleton into a file."""
    options = options or ExportOptions()
    writer = WRITERS.get(path.suffix.lower())
    if writer is None:
        raise MocapError(f"Cannot export to '{path.name}'; use one of {', '.join(supported_extensions())}.")
    try:
        check_motion(motion)
    except InvalidMotion as exc:
        raise MocapError(f"Cannot write {path}: the motion {exc}; nothing was written.") from exc
    sweep_stale_partials(path)
    try:
        with atomic_path(path, overwrite=overwrite) as tmp:
            writer(motion, tmp, options)
    except FileExistsError as exc:
        raise MocapError(
            f"{path} was created by another program while mocap was writing it and was left as it "
            "is; pass --overwrite to replace it."
        ) from exc
    except OSError as exc:  # named by the output path, not the temp file; a file read meanwhile keeps its name
        ours = exc.filename is None or str(exc.filename).endswith(TEMP_SUFFIX) or Path(exc.filename) == path
        raise MocapError(os_error_sentence(exc, path if ours else None)) from exc
