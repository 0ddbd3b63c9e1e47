"""Write-then-rename: the one way mocap replaces a file (exports, batch report and sidecars, weights cache,
imported SMPL files).

A reader (Blender importing a GLB, a studio script tailing ``report.csv``) must see the old file or the new
one, never half of one, and a failure or a kill mid-write must not damage an existing file. So everything
is written to a temporary ``.NAME.PID.XXXXXXXX.part`` in the target's own folder (a rename is atomic only
within one filesystem), flushed to disk, given the permissions a plainly created file would get (mkstemp
makes owner-only files), then renamed over the target. When the target must not be replaced, the temp file
is hard-linked to the target's name instead of renamed: the link fails if a file of that name appeared
meanwhile, so two concurrent writers never clobber each other.

A temp file left by a killed process keeps the ``.*.part`` shape: ``mocap batch`` sweeps its output folder,
and every export sweeps the stale temp files of its own target (``sweep_stale_partials``). The writer's pid
in the name tells a dead writer's leftovers from a live writer's file in progress.
"""

from __future__ import annotations

import errno
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Iterator

TEMP_SUFFIX = ".part"
# A temp file untouched this long is stale even when its pid is alive (the pid was reused, or the writer
# is on another machine sharing the folder): writers write continuously, and whole files take seconds.
STALE_AFTER_S = 30 * 60
# Long target names are cut in temp names, so the temp name stays within the usual 255-byte limit.
_NAME_CHARS = 100
# Errors of filesystems without hard links (FAT, some network shares): publish by exclusive create instead.
_NO_HARDLINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS, errno.EXDEV}


def temp_path_beside(target: Path) -> Path:
    """A new, empty temp file ``.NAME.PID.XXXXXXXX.part`` in ``target``'s folder (created, so the name is ours)."""
    fd, name = tempfile.mkstemp(prefix=f"{_temp_prefix(target)}{os.getpid()}.", suffix=TEMP_SUFFIX, dir=_folder(target))
    os.close(fd)
    return Path(name)


def sweep_stale_partials(target: Path, *, stale_after_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete the temp files of ``target`` that earlier writers left behind when killed: those whose writer
    pid is no longer running, and any untouched for ``stale_after_s``. A live writer's file is kept."""
    removed: list[Path] = []
    prefix = _temp_prefix(target)
    try:
        entries = list(os.scandir(_folder(target)))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        if not (entry.name.startswith(prefix) and entry.name.endswith(TEMP_SUFFIX)):
            continue
        # "PID.XXXXXXXX.part" (mkstemp's random part has no dots); "XXXXXXXX.part" from older versions.
        parts = entry.name[len(prefix) :].split(".")
        if len(parts) not in (2, 3):
            continue  # another target's temp file, e.g. of "NAME.bak"
        try:
            age = now - entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            continue
        pid = int(parts[0]) if len(parts) == 3 and parts[0].isdigit() else None
        writer_dead = pid is not None and pid != os.getpid() and not _pid_alive(pid)
        if writer_dead or age > stale_after_s:
            try:
                os.unlink(entry.path)
            except OSError:
                continue
            removed.append(Path(entry.path))
    return removed


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
        _publish_exclusive(tmp, target)
    _fsync_folder(_folder(target))


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
def atomic_write(
    target: Path, mode: str = "w", *, overwrite: bool = True, encoding: str | None = None, newline: str | None = None
) -> Iterator[IO[Any]]:
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


def _publish_exclusive(tmp: Path, target: Path) -> None:
    """``tmp`` becomes ``target`` only if no ``target`` exists at that instant (``FileExistsError`` otherwise)."""
    try:
        os.link(tmp, target)  # fails when target exists, unlike a rename
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in _NO_HARDLINKS:
            raise
        # Claim the name atomically, then fill it by rename (readers may see an empty file for an instant).
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        os.replace(tmp, target)
        return
    tmp.unlink()


def _temp_prefix(target: Path) -> str:
    return f".{target.name[:_NAME_CHARS]}."


def _folder(target: Path) -> Path:
    return target.parent if str(target.parent) else Path(".")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:
        return True
    return True


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
