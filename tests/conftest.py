"""Shared fixtures: the committed small real-data fixtures and the optional full data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def fixtures() -> Path:
    """``tests/data``: small real alerts and PLAsTiCC objects committed with the project."""
    return FIXTURES


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The full real-data folder (``$ASTROT2_DATA`` or ``../shared/data``), else skip."""
    env = os.environ.get("ASTROT2_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if cand.is_dir():
            return cand
    pytest.skip("real data folder not available (set ASTROT2_DATA)")
