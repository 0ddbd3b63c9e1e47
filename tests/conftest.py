"""Shared test fixtures: where the team's shared data lives, and temp outputs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``../shared`` beside the checkout (as laid out for CI), or ``MOCAP_SHARED_DIR``."""
    return Path(os.environ.get("MOCAP_SHARED_DIR", REPO.parent / "shared"))


def reference_dir(model: str) -> Path:
    """Reference cases of one model: ``$MOCAP_REFERENCE_DIR/<model>`` or ``../shared/reference/<model>``."""
    root = os.environ.get("MOCAP_REFERENCE_DIR")
    return Path(root) / model if root else shared_dir() / "reference" / model


def reference_cases(model: str) -> list[Path]:
    """Every ``*.pt`` case of a model, discovered (not named), so new cases run unchanged."""
    folder = reference_dir(model)
    return sorted(folder.glob("*.pt")) if folder.is_dir() else []


def require_shared(*parts: str) -> Path:
    """Path inside ../shared, or skip the test with the reason when it is absent."""
    path = shared_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data not found: {path} (set MOCAP_SHARED_DIR)")
    return path


def video(name: str) -> Path:
    return require_shared("data", "videos", name)
