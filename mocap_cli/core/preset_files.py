"""Where preset data files live (``presets/<kind>/<name>.toml``)."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGED = Path(__file__).resolve().parents[1] / "_presets"
_REPO = Path(__file__).resolve().parents[2] / "presets"


def preset_dir(kind: str) -> Path:
    """``$MOCAP_PRESETS/<kind>``, else the repository's ``presets/<kind>`` (editable installs and checkouts),
    else the copy packaged inside the wheel."""
    override = os.environ.get("MOCAP_PRESETS")
    if override:
        return Path(override) / kind
    for root in (_REPO, _PACKAGED):
        if (root / kind).is_dir():
            return root / kind
    return _REPO / kind
