"""Write-then-rename: the one way mocap replaces a file (exports, batch report and sidecars, weights cache,
imported SMPL files).

A reader (Blender importing a GLB, a studio script tailing ``report.csv``) must see the old file or the new
one, never half of one, and a failure or a kill mid-write must not damage an existing file. So everything
is written to a temporary ``.NAME.XXXXXXXX.part`` in the target's own folder (a rename is atomic only
within one filesystem), flushed to disk, given the permissions a plainly created file would get (mkstemp
makes owner-only files), then renamed over the target. A temp file left by a killed process keeps that
``.*.part`` shape, so ``mocap batch`` can sweep it up.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

TEMP_SUFFIX = ".part"


def temp_path_beside(target: Path) -> Path:
    """A new, empty temp file ``.NAME.XXXXXXXX.part`` in ``target``'s folder (created, so the name is ours)."""
    folder = target.parent if str(target.parent) else Path(".")
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=folder)
    os.close(fd)
    return Path(name)


def commit(tmp: Path, target: Path, *, overwrite: bool = True) -> None:
    """Make the complete file ``tmp`` become ``target`` in one step: flushed to disk, usual permissions, then
    renamed. With ``overwrite=False`` an existing ``target`` is left alone and ``FileExistsError`` raised
    (checked by the rename itself, so a file created meanwhile by someone else is never replaced)."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.chmod(tmp, 0o666 & ~_umask())
    if overwrite:
        os.replace(tmp, target)
    else:
        os.link(tmp, target)  # fails when target exists, unlike a rename
        tmp.unlink()
    _fsync_folder(target.parent if str(target.parent) else Path("."))


@contextmanager
def atomic_path(target: Path, *, overwrite: bool = True) -> Iterator[Path]:
    """A temp path to write ``target``'s new content to (for writers that take a path); it becomes ``target``
    when the block ends normally and is deleted when it raises (``target`` then is untouched)."""
    tmp = temp_path_beside(target)
    try:
        yield tmp
        commit(tmp, target, overwrite=overwrite)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_write(target: Path, mode: str = "w", *, overwrite: bool = True, encoding: str | None = None,
                 newline: str | None = None) -> Iterator[IO[Any]]:
    """``open(target, mode)`` that only replaces ``target`` once the block has written everything."""
    if "w" not in mode:
        raise ValueError(f"atomic_write writes whole files; mode {mode!r} has no 'w'")
    with atomic_path(target, overwrite=overwrite) as tmp:
        with open(tmp, mode, encoding=encoding, newline=newline) as f:
            yield f


def write_text_atomic(target: Path, text: str, *, encoding: str = "utf-8") -> None:
    """Replace ``target`` with ``text`` (no newline translation), creating its folder when missing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(target, "w", encoding=encoding, newline="") as f:
        f.write(text)


def _umask() -> int:
    """The process umask, read without changing it where Linux tells it (``os.umask`` can only set it, and
    setting it briefly would race with files other threads create meanwhile)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Persist the rename itself (the folder entry); best effort where a filesystem cannot sync folders."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
