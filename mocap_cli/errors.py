"""The one exception type that reaches users as a single sentence, and the sentences for operating-system
failures (disk full, read-only disk, permissions), which otherwise reach users as errno jargon or tracebacks."""

from __future__ import annotations

import errno
from pathlib import Path


class MocapError(Exception):
    """A failure the user can act on; its message is one sentence: what went wrong, what to do.

    The CLI prints the message (no traceback) and exits with ``exit_code``.
    """

    exit_code: int = 1

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def os_error_sentence(exc: OSError, path: Path | str | None = None) -> str:
    """One sentence for an ``OSError`` met while reading or writing ``path`` (default: the error's own file
    name; pass the user's output path so a temp file's name never shows)."""
    where = str(path if path is not None else (exc.filename or "a file"))
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"The disk is full (or your quota is used up) while writing {where}; free some space or write elsewhere."
    if code == errno.EROFS:
        return f"{where} is on a read-only disk; choose an output on a writable one."
    if code in (errno.EACCES, errno.EPERM):
        return f"Permission denied for {where}; choose a file or folder you may write to."
    if code == errno.ENOTDIR:
        return f"Part of the path {where} is a file, not a folder; choose a path inside a folder."
    if code == errno.EISDIR:
        return f"{where} is a folder; give a file name."
    if code == errno.ENOENT:
        return f"{where} or its folder does not exist (or cannot hold files); check the path."
    if code == errno.ENAMETOOLONG:
        return f"The path {where} is too long for the filesystem; choose a shorter name."
    if code in (errno.EMFILE, errno.ENFILE):
        return "Too many files are open on this system; close other programs and try again."
    if code == errno.EIO:
        return f"The disk reported an input/output error on {where}; check the disk and try again."
    reason = (exc.strerror or exc.__class__.__name__).rstrip(".")
    return f"Could not read or write {where} ({reason}); check the path and the disk."
