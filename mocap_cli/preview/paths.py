"""Where a preview goes when it is not named: ``mocap batch --preview`` writes one beside each clip's outputs."""

from __future__ import annotations

from pathlib import Path

PREVIEW_NAME_SUFFIX = ".preview.mp4"


def preview_beside(output: Path) -> Path:
    """``out/clip.glb`` → ``out/clip.preview.mp4``."""
    return output.with_name(output.stem + PREVIEW_NAME_SUFFIX)
