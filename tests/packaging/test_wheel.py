"""The wheel a user installs (`pip install .` without -e, or from an index) carries every data file the tool
loads: presets, weights registry and shipped weights, the body, the JSON schemas and fitted tables. An editable
install reads them from the checkout, so only a built wheel shows one missing."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from conftest import REPO

# Where each data folder of the checkout lands in the wheel (pyproject.toml's package-dir and package-data).
DATA = {
    "presets": ("mocap_cli/_presets", ("*/*.toml",)),
    "weights": ("mocap_cli/_weights", ("*.toml", "shipped/*.safetensors")),
    "mocap_cli": (
        "mocap_cli",
        ("body/*.npz", "body/*.json", "commands/schema/*.json", "solve/*.json", "training/*.json"),
    ),
}


def test_the_wheel_carries_every_data_file(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "would be ignored" not in done.stderr, "setuptools warns about an unlisted data folder"
    (wheel,) = tmp_path.glob("mocap_cli-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        f"{prefix}/{path.relative_to(REPO / folder).as_posix()}"
        for folder, (prefix, patterns) in DATA.items()
        for pattern in patterns
        for path in (REPO / folder).glob(pattern)
    }
    assert len(expected) >= 20  # the presets, weights, body and tables above
    assert not expected - names, sorted(expected - names)
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "mocap = mocap_cli.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
