"""Run the real ``mocap`` entry point (``mocap_cli.cli.main``, with its last-resort handler) in this process
and capture what a user would see: exit code, stdout, stderr. Much faster than a subprocess per case."""

from __future__ import annotations

import io
import os
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from mocap_cli.cli import main


@dataclass
class Outcome:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def run_main(*args: str | Path, env: dict[str, str] | None = None) -> Outcome:
    """``mocap ARGS`` in-process. MOCAP_VERBOSE keeps ``main`` from re-pointing stderr at the terminal."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with (
        mock.patch.dict(os.environ, {"MOCAP_VERBOSE": "1", "COLUMNS": "200", **(env or {})}),
        redirect_stdout(out),
        redirect_stderr(err),
    ):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return Outcome(code, out.getvalue(), err.getvalue())


def assert_one_sentence(res: Outcome, *needles: str, code: int = 1) -> str:
    """Exit ``code``, no traceback, and the error as one line starting ``error:``; returns that line."""
    assert res.code == code, (res.code, res.text)
    assert "Traceback" not in res.text, res.text
    lines = [ln for ln in res.err.splitlines() if ln.strip() and "━" not in ln]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def stray_files(folder: Path) -> list[str]:
    """Temp files and anything else mocap may have left in ``folder`` (names)."""
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name or p.name.startswith("."))
