"""How several people's outputs are named: ``out.glb``/``out.fbx`` hold everyone (one armature per person,
``person_1``, ``person_2``, …); ``out.bvh``/``out.npz`` become ``out.person_1.bvh``, ``out.person_2.bvh``, …

Kept apart from the writers so the batch engine (resume records, clean-up) can name and find these files
without importing any exporter.
"""

from __future__ import annotations

import re
from pathlib import Path

# The formats that hold every person in one file; the others are written once per person.
SHARED_FORMATS = (".glb", ".fbx")


def person_name(number: int) -> str:
    """The armature name and file-name part of the ``number``-th person (1-based, by prominence)."""
    return f"person_{number}"


def person_path(path: Path, number: int) -> Path:
    """``out.bvh`` → ``out.person_2.bvh``."""
    return path.with_name(f"{path.stem}.{person_name(number)}{path.suffix}")


def one_file_per_person(path: Path) -> bool:
    return path.suffix.lower() not in SHARED_FORMATS


def existing_person_files(path: Path) -> list[Path]:
    """The ``out.person_N.ext`` files that exist beside ``path`` (``out.ext``), in person order."""
    pattern = re.compile(rf"{re.escape(path.stem)}\.person_(\d+){re.escape(path.suffix)}")
    found = []
    if path.parent.is_dir():
        for p in path.parent.iterdir():
            if (m := pattern.fullmatch(p.name)) and p.is_file():
                found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]
