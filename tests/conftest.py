"""Shared fixtures. Tests run against the real bpy wheel; anything that bakes does so in a worker process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
VDBFORGE = [sys.executable, "-m", "vdbforge_addon.cli"]


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own user data folder, so user presets never leak between tests."""
    home = tmp_path_factory.mktemp("vdbforge_home")
    monkeypatch.setenv("VDBFORGE_HOME", str(home))
    return home


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """The real `vdbforge` command in a subprocess (exactly what a user runs)."""
    return subprocess.run(
        [*VDBFORGE, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=dict(os.environ)
    )


@pytest.fixture(scope="session")
def explosion_render(tmp_path_factory) -> dict:
    """One small real explosion render shared by the tests that inspect its output."""
    out = tmp_path_factory.mktemp("explosion") / "out"
    proc = run_cli(
        "render",
        "--preset",
        "explosion",
        "--out",
        str(out),
        "--resolution",
        "24",
        "--frames",
        "1:10",
        "--angles",
        "2",
        "--json",
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    result["_out"] = out
    return result
