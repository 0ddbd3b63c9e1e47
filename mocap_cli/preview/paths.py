"""Where a preview may go: checked before any work, and named beside a clip's outputs for ``mocap batch``.

Kept free of OpenCV so the pipeline and the batch engine can import it cheaply.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from mocap_cli.errors import MocapError

PREVIEW_SUFFIX = ".mp4"
PREVIEW_NAME_SUFFIX = ".preview.mp4"


def preview_beside(output: Path) -> Path:
    """``out/clip.glb`` → ``out/clip.preview.mp4``."""
    return output.with_name(output.stem + PREVIEW_NAME_SUFFIX)


def check_preview_path(path: Path, *, overwrite: bool, taken: Iterable[Path] = ()) -> None:
    """Fail before any work on a preview path that is not .mp4, in a missing or read-only folder, already there
    (without ``overwrite``) or the same as another output."""
    if path.suffix.lower() != PREVIEW_SUFFIX:
        raise MocapError(f"The preview '{path.name}' must be an .mp4 file (e.g. --preview preview.mp4).")
    if path.is_dir():
        raise MocapError(f"Preview path {path} is a folder; give a file name such as {path / 'preview.mp4'}.")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise MocapError(f"Preview folder {folder} does not exist; create it or choose another path.")
    if not os.access(folder, os.W_OK):
        raise MocapError(f"Cannot write to {folder} (permission denied); choose another folder for the preview.")
    if any(path.resolve() == p.resolve() for p in taken):
        raise MocapError(f"--preview {path} is also an input or an --export path; give the preview its own name.")
    if path.exists() and not overwrite:
        raise MocapError(f"{path} already exists; pass --overwrite to replace it.")
