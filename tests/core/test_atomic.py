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
from mocap_cli.core.atomic import (
    atomic_path,
    atomic_write,
    sweep_stale_partials,
    temp_path_beside,
    write_text_atomic,
)


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
    proc = subprocess.run(
        [sys.executable, "-c", script, str(target)],
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert target.read_text() == '{"old": true}\n'
    left = _leftovers(tmp_path)
    assert len(left) == 1 and left[0].startswith(".report.json.")
    sweep_partials(tmp_path)
    assert _leftovers(tmp_path) == [] and target.read_text() == '{"old": true}\n'


def _dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True, timeout=60
    )
    return int(proc.stdout)


def test_stale_partials_of_dead_writers_are_swept_live_ones_kept(tmp_path: Path) -> None:
    target = tmp_path / "out.glb"
    dead = tmp_path / f".out.glb.{_dead_pid()}.abcd1234.part"
    live = tmp_path / f".out.glb.{os.getppid()}.efgh5678.part"  # our parent is running: a live writer
    fresh_legacy = tmp_path / ".out.glb.ijkl9012.part"  # no pid (older mocap), recently touched
    old_legacy = tmp_path / ".out.glb.mnop3456.part"
    other_target = tmp_path / f".out.glb.bak.{_dead_pid()}.qrst7890.part"  # belongs to "out.glb.bak"
    for p in (dead, live, fresh_legacy, old_legacy, other_target):
        p.write_bytes(b"")
    an_hour_ago = os.stat(old_legacy).st_mtime - 3600
    os.utime(old_legacy, (an_hour_ago, an_hour_ago))
    removed = sweep_stale_partials(target)
    assert sorted(removed) == sorted([dead, old_legacy])
    assert live.exists() and fresh_legacy.exists() and other_target.exists()


def test_temp_names_carry_the_writer_pid(tmp_path: Path) -> None:
    tmp = temp_path_beside(tmp_path / "walk.bvh")
    assert tmp.name.startswith(f".walk.bvh.{os.getpid()}.")
    assert sweep_stale_partials(tmp_path / "walk.bvh") == [] and tmp.exists()  # our own file is never stale


def test_no_clobber_holds_when_the_target_appears_during_the_write(tmp_path: Path) -> None:
    """Another process creating the file between our check and our publish keeps its file."""
    target = tmp_path / "new.glb"
    with pytest.raises(FileExistsError):
        with atomic_path(target, overwrite=False) as tmp:
            tmp.write_bytes(b"ours")
            target.write_bytes(b"theirs")  # the other writer wins the race
    assert target.read_bytes() == b"theirs"
    assert _leftovers(tmp_path) == []


def test_concurrent_no_clobber_writers_exactly_one_wins(tmp_path: Path) -> None:
    """Eight processes publish the same new file at once without overwrite: one succeeds, the rest fail, and
    the file is one writer's complete content."""
    target = tmp_path / "new.bin"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from mocap_cli.core.atomic import atomic_path\n"
        "start = float(sys.argv[2])\n"
        "payload = sys.argv[3].encode() * 100000\n"
        "try:\n"
        "    with atomic_path(Path(sys.argv[1]), overwrite=False) as tmp:\n"
        "        tmp.write_bytes(payload)\n"
        "        time.sleep(max(0.0, start - time.time()))\n"
        "except FileExistsError:\n"
        "    sys.exit(3)\n"
    )
    import time

    start = time.time() + 3.0  # every writer has its temp file written before the first publishes
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(target), str(start), str(i)],
            cwd=REPO,
            env=dict(os.environ, PYTHONPATH=str(REPO)),
        )
        for i in range(8)
    ]
    codes = [p.wait(timeout=120) for p in procs]
    assert sorted(codes) == [0] + [3] * 7, codes
    winner = codes.index(0)
    assert target.read_bytes() == str(winner).encode() * 100000
    assert _leftovers(tmp_path) == []


def test_no_clobber_without_hard_links_still_refuses_an_existing_file(tmp_path: Path, monkeypatch) -> None:
    """Filesystems without hard links (FAT, some shares) publish by exclusive create instead."""
    import errno

    def no_links(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    target = tmp_path / "new.bvh"
    with atomic_write(target, "w", overwrite=False) as f:
        f.write("first")
    assert target.read_text() == "first"
    with pytest.raises(FileExistsError):
        with atomic_write(target, "w", overwrite=False) as f:
            f.write("second")
    assert target.read_text() == "first" and _leftovers(tmp_path) == []
