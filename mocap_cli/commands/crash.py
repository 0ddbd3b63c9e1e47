"""The last resort for failures nobody foresaw: one sentence for the user, the full traceback in a log file.

A traceback on the terminal tells an animator nothing and hides the one line that matters, but a bug report
needs it; so it goes to ``<mocap_home>/logs/crash-*.log`` (or the system temp folder when that cannot be
written) and the sentence says where. ``MOCAP_DEBUG=1`` lets the exception through instead.
"""

from __future__ import annotations

import os
import tempfile
import time
import traceback
from pathlib import Path

DEBUG_ENV = "MOCAP_DEBUG"
# Longest excerpt of the exception's own message quoted in the sentence.
_MESSAGE_CHARS = 160


def debug_enabled() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip() not in ("", "0", "false", "no")


def crash_sentence(exc: BaseException) -> str:
    """``<Type> in <module.function>: <message>; the full traceback is in <log> …`` for ``exc``, after
    writing that log."""
    log = write_crash_log(exc)
    message = " ".join(str(exc).split())[:_MESSAGE_CHARS] or "no message"
    where = f" in {_origin(exc)}" if _origin(exc) else ""
    saved = (
        f"the full traceback is in {log}; please include that file when reporting the problem"
        if log is not None
        else f"the traceback could not be saved; run again with {DEBUG_ENV}=1 to see it"
    )
    return f"mocap failed unexpectedly ({exc.__class__.__name__}{where}: {message}); {saved}."


def write_crash_log(exc: BaseException) -> Path | None:
    """Write the traceback to a new file under ``<mocap_home>/logs`` (else the temp folder); its path, or
    None when neither can be written."""
    from mocap_cli import __version__
    from mocap_cli.weights.cache import mocap_home

    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    header = f"mocap {__version__}, pid {os.getpid()}, {time.strftime('%Y-%m-%d %H:%M:%S')}\n"
    name = f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    for folder in (mocap_home() / "logs", Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / name
            path.write_text(header + text, encoding="utf-8")
            return path
        except OSError:
            continue
    return None


def _origin(exc: BaseException) -> str:
    """``module.function`` of the innermost mocap frame of the traceback ('' when none)."""
    origin = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        parts = Path(frame.filename).with_suffix("").parts
        if "mocap_cli" in parts:
            module = ".".join(parts[parts.index("mocap_cli") :])
            origin = f"{module}.{frame.name}"
    return origin
