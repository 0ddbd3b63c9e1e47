"""``core.atomic``: a file is replaced whole or not at all, also when its writer raises or is killed."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from mocap_cli.batch.state import sweep_partials
from mocap_cli.core.atomic import atomic_path, atomic_write, temp_path_beside, write_text_atomic


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_replaces_the_whole_file_with_usual_permissions(tmp_path: Path) -> None:
    target = tmp_path / "report.csv"
    target.write_text("old\n")
    old_mask = os.umask(0o027)
    try:
        with atomic_write(target, "w", newline="") as f:
            f.write("clip,status\r\nwalk.mp4,done\r\n")
            assert target.read_text() == "old\n"  # nothing visible before the block ends
    finally:
        os.umask(old_mask)
    assert target.read_bytes() == b"clip,status\r\nwalk.mp4,done\r\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # 0o666 minus the umask, not mkstemp's 0o600
    assert _leftovers(tmp_path) == []


def test_a_failing_writer_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "motion.glb"
    target.write_bytes(b"previous export")
    with pytest.raises(RuntimeError, match="writer bug"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half of a")
            raise RuntimeError("writer bug")
    assert target.read_bytes() == b"previous export"
    assert _leftovers(tmp_path) == []


def test_no_overwrite_never_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "smpl_neutral.npz"
    with atomic_write(target, "wb", overwrite=False) as f:
        f.write(b"first")
    with pytest.raises(FileExistsError):
        with atomic_write(target, "wb", overwrite=False) as f:
            f.write(b"second")
    assert target.read_bytes() == b"first"
    assert _leftovers(tmp_path) == []


def test_temp_files_sit_beside_the_target_in_the_shape_batch_sweeps(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "walk.bvh"
    write_text_atomic(target, "HIERARCHY\n")  # creates the missing folder
    tmp = temp_path_beside(target)
    assert tmp.parent == target.parent and tmp.name.startswith(".walk.bvh.") and tmp.name.endswith(".part")
    assert sweep_partials(tmp_path) == [tmp]
    assert target.read_text() == "HIERARCHY\n" and not tmp.exists()
    with pytest.raises(ValueError, match="whole files"):
        with atomic_write(target, "a"):
            pass


def test_a_writer_killed_mid_write_leaves_the_old_file(tmp_path: Path) -> None:
    """SIGKILL (an OOM kill) skips every clean-up: the target is still the old one, and the temp file left
    behind is one the batch sweep recognises."""
    target = tmp_path / "report.json"
    target.write_text('{"old": true}\n')
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from mocap_cli.core.atomic import atomic_write\n"
        "with atomic_write(Path(sys.argv[1]), 'w') as f:\n"
        "    f.write('{\"new\": ')\n"
        "    f.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(target)], env=dict(os.environ, PYTHONPATH=str(REPO)),
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert target.read_text() == '{"old": true}\n'
    left = _leftovers(tmp_path)
    assert len(left) == 1 and left[0].startswith(".report.json.")
    sweep_partials(tmp_path)
    assert _leftovers(tmp_path) == [] and target.read_text() == '{"old": true}\n'
