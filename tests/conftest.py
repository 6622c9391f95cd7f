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


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory) -> Path:
    """This platform's wheels fetched and the zip built (and validated by the build) in a temporary folder.

    Session-wide: test_extension.py and test_panel_workflow.py install the same zip.
    """
    tmp = tmp_path_factory.mktemp("extension_build")
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "build_extension.py"),
            "--fetch",
            f"--wheels-dir={tmp / 'wheels'}",
            f"--build-dir={tmp / 'build'}",
            f"--output-dir={tmp / 'dist'}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    zip_path = Path(proc.stdout.strip().splitlines()[-1])
    assert zip_path.is_file() and zip_path.parent == tmp / "dist"
    return zip_path
