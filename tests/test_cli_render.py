"""`vdbforge render` end to end: real bake, real files read back by OpenVDB's own tools, real previews."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .conftest import run_cli

VDB_PRINT = shutil.which("vdb_print")


def test_render_writes_vdb_sequence_previews_and_result(explosion_render):
    out: Path = explosion_render["_out"]
    vdb_files = sorted((out / "vdb").glob("explosion_*.vdb"))
    assert [p.name for p in vdb_files] == [f"explosion_{f:04d}.vdb" for f in range(1, 11)]
    result = json.loads((out / "result.json").read_text())
    assert result["preset_id"] == "explosion" and result["resolution"] == 24
    assert set(result["params"]) >= {"domain.vorticity", "material.density_scale"}
    for stage in ("build", "bake", "export", "render", "total"):
        assert result["timings"][stage] > 0
    assert all(Path(p).is_file() for p in result["vdb_files"] + result["previews"])
    assert not [p for p in out.iterdir() if p.name.startswith(".vdbforge-staging-")]
    assert not (out / "cache").exists(), "the Mantaflow cache is removed unless --keep-cache"


@pytest.mark.skipif(VDB_PRINT is None, reason="vdb_print (Debian libopenvdb-tools) is installed by scripts/setup.sh")
def test_every_vdb_reads_back_with_vdb_print(explosion_render):
    out: Path = explosion_render["_out"]
    flame_seen = False
    for path in sorted((out / "vdb").glob("*.vdb")):
        proc = subprocess.run([VDB_PRINT, "-l", str(path)], capture_output=True, text=True, check=True)
        grids = dict(re.findall(r"Name: (\w+).*?Number of active voxels:\s+([\d,]+)", proc.stdout, re.S))
        assert int(grids["density"].replace(",", "")) > 0, path.name
        assert {"temperature", "velocity"} & set(grids)
        flame_seen |= int(grids.get("flame", "0").replace(",", "")) > 0
        assert "vdbforge_preset: explosion" in proc.stdout
    assert flame_seen, "an explosion has flame in its burst frames"


def test_previews_are_not_blank(explosion_render):
    out: Path = explosion_render["_out"]
    previews = sorted((out / "preview").glob("f*_a*.png"))
    assert len(previews) == 2 and (out / "preview" / "contact_sheet.png").is_file()
    for path in previews:
        pixels = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)
        border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]]).mean(axis=0)
        subject = np.abs(pixels - border).sum(axis=2) > 30
        assert 0.02 < subject.mean() < 0.9, f"{path.name}: subject covers {subject.mean():.1%} of the frame"
    sheet = Image.open(out / "preview" / "contact_sheet.png")
    assert sheet.size == (2 * 256, 256)


def test_presets_command_lists_pyro_presets():
    proc = run_cli("presets", "--json")
    assert proc.returncode == 0
    ids = {p["id"] for p in json.loads(proc.stdout)}
    assert {"explosion", "fire", "smoke_plume"} <= ids


def _assert_clean_failure(proc, needle, out: Path | None = None):
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("vdbforge: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    assert needle in errors[0], errors[0]
    if out is not None:
        assert not out.exists() or not any(out.iterdir()), "nothing half-written in --out"


def test_bad_inputs_give_one_line_errors_and_write_nothing(tmp_path):
    out = tmp_path / "out"
    render = ("render", "--out", str(out), "--resolution", "16", "--frames", "1:3")
    _assert_clean_failure(run_cli(*render, "--preset", "nope"), "unknown preset 'nope'", out)
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema_version": 1, "id": "x", "name": "x", "family": "pyro", "kind": "x", "evil": "rm -rf"}')
    _assert_clean_failure(run_cli(*render, "--preset", str(bad)), "evil: unknown key", out)
    bad.write_text("{ not json")
    _assert_clean_failure(run_cli(*render, "--preset", str(bad)), "not valid JSON", out)
    _assert_clean_failure(
        run_cli(*render, "--preset", "fire", "--set", "domain.resolution=20"), "is not a tunable parameter", out
    )
    _assert_clean_failure(run_cli(*render, "--preset", "fire", "--set", "domain.beta=99"), "outside its range", out)
    _assert_clean_failure(
        run_cli("render", "--preset", "fire", "--out", str(out), "--resolution", "100000"), "outside [8, 512]", out
    )
    _assert_clean_failure(run_cli(*render, "--preset", "fire", "--frames", "5:2"), "--frames '5:2'", out)
    _assert_clean_failure(
        run_cli(*render, "--preset", "fire", "--preview-frames", "2,9"),
        "--preview-frames: 9 is outside the baked frames 1:3",
        out,
    )
    _assert_clean_failure(run_cli("render", "--preset", "fire"), "the following arguments are required: --out")


def test_unwritable_out_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        proc = run_cli("render", "--preset", "fire", "--out", str(locked / "sub"), "--resolution", "16")
        if proc.returncode == 0:
            pytest.skip("running as a user who can write anywhere (root without capabilities dropped)")
        _assert_clean_failure(proc, "cannot write to output folder")
    finally:
        locked.chmod(0o700)
    file_out = tmp_path / "a_file"
    file_out.write_text("x")
    _assert_clean_failure(run_cli("render", "--preset", "fire", "--out", str(file_out)), "is not a folder")
    _assert_clean_failure(run_cli("render", "--preset", "fire", "--out", "/proc/vdbforge"), "cannot write")


def test_failed_bake_leaves_out_untouched(tmp_path):
    """A worker killed by its timeout: one-line error, and the output folder is as it was."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    proc = run_cli("render", "--preset", "smoke_plume", "--out", str(out), "--resolution", "32", "--timeout", "2")
    _assert_clean_failure(proc, "timeout failure")
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
