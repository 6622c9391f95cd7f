"""Export: the .nvdb files we write for a real bake pass NanoVDB's own reader and validator and hold exactly the
active voxels of the .vdb files beside them; `vdbforge export` re-exports a kept cache with other settings."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vdbforge_addon.core.render_run import format_frame_list

from .conftest import run_cli
from .nanovdb.build import run_checker, sort_voxels

# Reads a .vdb with Blender's openvdb module (the reference, independent of our NanoVDB code) and prints, per grid,
# the active voxel count and the dense values over the active bounding box.
VDB_DUMP = """
import sys, json, numpy as np, bpy
from vdbforge_addon.blender.openvdb_import import import_openvdb
vdb = import_openvdb()
grids, _ = vdb.readAll(sys.argv[1])
out = {}
for g in grids:
    lo, hi = g.evalActiveVoxelBoundingBox()
    shape = tuple(h - l + 1 for l, h in zip(lo, hi))
    vec = "vec3" in g.valueTypeName
    arr = np.zeros(shape + ((3,) if vec else ()), np.float32)
    g.copyToArray(arr, ijk=lo)
    np.save(sys.argv[2] + "/" + g.name + ".npy", arr)
    out[g.name] = {"count": int(g.activeVoxelCount()), "lo": list(lo), "vec": vec}
print(json.dumps(out))
"""


def vdb_reference(vdb_path: Path, tmp: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", VDB_DUMP, str(vdb_path), str(tmp)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    for name in info:
        info[name]["dense"] = np.load(tmp / f"{name}.npy")
    return info


def assert_nvdb_matches_vdb(nvdb: Path, vdb: Path, tmp: Path, atol: float = 0.0) -> None:
    check = run_checker(nvdb)
    assert not check.read_error, check.read_error
    reference = vdb_reference(vdb, tmp)
    assert {g.summary["name"] for g in check.grids} == set(reference)
    for grid in check.grids:
        assert grid.ok, grid.problems()
        ref = reference[grid.summary["name"]]
        ijk, values = sort_voxels(grid.vox_ijk, grid.vox_val)
        assert len(ijk) == ref["count"], f"{grid.summary['name']}: active voxel count differs"
        local = ijk - np.asarray(ref["lo"])
        expected = ref["dense"][local[:, 0], local[:, 1], local[:, 2]]
        np.testing.assert_allclose(values, expected, rtol=0, atol=atol, err_msg=grid.summary["name"])


@pytest.fixture(scope="module")
def kept_cache_render(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fire") / "out"
    proc = run_cli("render", "--preset", "fire", "--out", str(out), "--resolution", "20", "--frames", "1:6",
                   "--angles", "1", "--preview-size", "64", "--keep-cache", "--nanovdb")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def test_render_nanovdb_matches_vdb_through_official_reader(kept_cache_render, tmp_path):
    nvdbs = sorted((kept_cache_render / "nvdb").glob("fire_*.nvdb"))
    vdbs = sorted((kept_cache_render / "vdb").glob("fire_*.vdb"))
    assert [p.stem for p in nvdbs] == [p.stem for p in vdbs] and len(vdbs) == 6
    for nvdb, vdb in zip(nvdbs, vdbs, strict=True):
        assert_nvdb_matches_vdb(nvdb, vdb, tmp_path)


def test_export_reexports_kept_cache_with_new_settings(kept_cache_render, tmp_path, monkeypatch):
    out = tmp_path / "re"
    # frames this small stay in one process by default; force the helper process the sequence export uses at scale
    monkeypatch.setenv("VDBFORGE_NVDB_HELPERS", "1")
    proc = run_cli("export", "--cache", str(kept_cache_render / "cache"), "--out", str(out), "--frames", "2:6:2",
                   "--grids", "flame,velocity", "--precision", "float", "--nanovdb", "--quantize", "fp16", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert [Path(p).name for p in result["vdb_files"]] == ["fire_0002.vdb", "fire_0004.vdb", "fire_0006.vdb"]
    assert result["nanovdb_helpers"] == 1
    for name, grids in result["grids_per_frame"].items():
        assert set(grids) <= {"flame", "velocity"}, name
    for nvdb, vdb in zip(result["nanovdb_files"], result["vdb_files"], strict=True):
        # fp16 quantization: flame lies in [0, 1], so 16-bit codes over a leaf's range err by at most 2^-16 of it.
        assert_nvdb_matches_vdb(Path(nvdb), Path(vdb), tmp_path, atol=2e-5)


def test_export_reports_a_skipped_grid_once_with_its_frames(kept_cache_render, tmp_path):
    proc = run_cli("export", "--cache", str(kept_cache_render / "cache"), "--out", str(tmp_path / "re"),
                   "--frames", "2:6:2", "--grids", "flame,color", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    # the fire preset has no colour: one notice for the three frames, not one per frame
    assert json.loads(proc.stdout)["notices"] == ["frames 2-6: grid 'color' is not in the cache; skipped"]


def test_export_refuses_bad_settings_before_writing(kept_cache_render, tmp_path):
    out = tmp_path / "bad"
    cache = str(kept_cache_render / "cache")
    for args, needle in [
        (["--grids", "density,nonsense"], "export.grids.1"),
        (["--tolerance", "0.1"], "--tolerance applies to --quantize fpn only"),
    ]:
        proc = run_cli("export", "--cache", cache, "--out", str(out), *args)
        assert proc.returncode == 1 and needle in proc.stderr.strip().splitlines()[-1]
        assert not out.exists()
    proc = run_cli("export", "--cache", str(tmp_path), "--out", str(out))
    assert "is not a VDBForge cache" in proc.stderr


def _grid_listing(path: Path) -> tuple[list[str], list[str]]:
    """`vdb_print -l -m` (OpenVDB's own reader): the grid names, types and voxel counts, and the file_compression."""
    proc = subprocess.run(["vdb_print", "-l", "-m", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line.strip() for line in proc.stdout.splitlines()]
    keys = ("Name:", "Type:", "Number of active voxels:", "Bounding box of active voxels:", "Min value:", "Max value:")
    return [line for line in lines if line.startswith(keys)], [line for line in lines if "file_compression" in line]


@pytest.mark.parametrize("compression", ["zip", "none"])
def test_export_writes_zip_and_uncompressed_vdb(kept_cache_render, tmp_path, compression):
    """Blender's module writes Blosc; the export re-encodes it (core/vdb_recompress.py) into the same grids."""
    out = tmp_path / compression
    proc = run_cli("export", "--cache", str(kept_cache_render / "cache"), "--out", str(out), "--frames", "2:6:4",
                   "--compression", compression, "--nanovdb", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert [Path(p).name for p in result["vdb_files"]] == ["fire_0002.vdb", "fire_0006.vdb"]
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]
    flag = "zip + active values" if compression == "zip" else "active values"
    for path in map(Path, result["vdb_files"]):
        blosc_twin = kept_cache_render / "vdb" / path.name  # the render wrote the same frame with the same settings
        grids, compressions = _grid_listing(path)
        reference_grids, reference_compressions = _grid_listing(blosc_twin)
        assert grids == reference_grids and len(grids) >= 4
        assert compressions == [f"file_compression: {flag}"] * len(reference_compressions) != []
        got, expected = vdb_reference(path, tmp_path), vdb_reference(blosc_twin, tmp_path)
        assert set(got) == set(expected)
        for name, ref in expected.items():
            assert got[name]["count"] == ref["count"] and got[name]["lo"] == ref["lo"], name
            assert np.array_equal(got[name]["dense"], ref["dense"]), name
        assert path.stat().st_size != blosc_twin.stat().st_size
        assert path.stat().st_mode & 0o777 == blosc_twin.stat().st_mode & 0o777
    # The .nvdb beside each file was converted from the re-encoded .vdb.
    assert_nvdb_matches_vdb(Path(result["nanovdb_files"][-1]), Path(result["vdb_files"][-1]), tmp_path)


def test_liquid_render_writes_nanovdb_level_sets(tmp_path):
    out = tmp_path / "splash"
    proc = run_cli("render", "--preset", "splash", "--out", str(out), "--resolution", "16", "--frames", "1:4",
                   "--angles", "1", "--preview-size", "64", "--nanovdb", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert len(result["nanovdb_files"]) == len(result["vdb_files"]) > 0
    for nvdb, vdb in zip(result["nanovdb_files"], result["vdb_files"], strict=True):
        assert_nvdb_matches_vdb(Path(nvdb), Path(vdb), tmp_path)


def test_per_frame_notices_are_reported_once_with_their_frames():
    assert format_frame_list([7]) == "frame 7"
    assert format_frame_list([12, 1, 2, 3, 8, 10, 11]) == "frames 1-3,8,10-12"
    assert format_frame_list([2, 4, 6, 10]) == "frames 2-6,10"  # the export's frame step is a run
