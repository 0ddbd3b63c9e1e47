"""The one exception type that reaches users as a single sentence."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class MocapError(Exception):
    """A failure the user can act on; its message is one sentence: what went wrong, what to do.

    The CLI prints the message (no traceback) and exits with ``exit_code``.
    """

    exit_code: int = 1

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# Exit codes of every command (README "Exit codes"): 0 success; 1 a clip failed (or another failure while
# working); 2 a usage error: bad flags, a missing input, an output that already exists; nothing was processed.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


@contextmanager
def usage_errors() -> Iterator[None]:
    """Inside this block a ``MocapError`` is a usage error (the checks made before any work): exit code 2."""
    try:
        yield
    except MocapError as exc:
        exc.exit_code = EXIT_USAGE
        raise
