"""grids of Blender's bundled `openvdb` module -> NanoGrid -> .nvdb, checked against an independent oracle:
values from copyToArray, active states from iterOnValues (one Python object per voxel or tile)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from vdbforge_addon.core.errors import VDBForgeError
from vdbforge_addon.core.nanovdb import convert_vdb_file, grid_from_openvdb, grids_from_openvdb, write_nvdb

from .nanovdb import build as H  # builds the official checker and computes reference answers


@pytest.fixture(scope="module")
def ovdb():
    bpy = pytest.importorskip("bpy")
    site = Path(bpy.utils.resource_path("LOCAL")) / "python" / "lib" / "python3.11" / "site-packages"
    if str(site) not in sys.path:
        sys.path.append(str(site))
    import openvdb

    return openvdb


def oracle(vdb_grid, lo, hi):
    """Dense values and active states of [lo, hi] (inclusive) from the openvdb module's own public API."""
    shape = tuple(int(b - a + 1) for a, b in zip(lo, hi, strict=True))
    vec = vdb_grid.valueTypeName.startswith("vec3")
    vals = np.empty(shape + ((3,) if vec else ()), np.float32)
    vdb_grid.copyToArray(vals, tuple(int(v) for v in lo))
    act = np.zeros(shape, bool)
    for item in vdb_grid.iterOnValues():
        a = np.maximum(np.array(item["min"]) - lo, 0)
        b = np.minimum(np.array(item["max"]) - lo + 1, shape)
        if np.all(b > a):
            act[a[0] : b[0], a[1] : b[1], a[2] : b[2]] = True
    return vals, act


def check_against_oracle(tmp_path, vdb_grid, margin=4, quantize=None, atol=0.0):
    g = grid_from_openvdb(vdb_grid)
    write_nvdb(tmp_path / "o.nvdb", [g], quantize=quantize)
    lo, hi = (np.array(b) for b in vdb_grid.evalActiveVoxelBoundingBox())
    lo, hi = lo - margin, hi + margin
    vals, act = oracle(vdb_grid, lo, hi)
    ii = np.stack(np.meshgrid(*(np.arange(a, b + 1) for a, b in zip(lo, hi, strict=True)), indexing="ij"), -1)
    res = H.run_checker(tmp_path / "o.nvdb", ii.reshape(-1, 3), dump=False)
    gc = res.grids[0]
    assert gc.ok, gc.problems()
    got_v, got_a = gc.q_pnano
    assert np.array_equal(got_a, act.reshape(-1)), f"{int((got_a != act.reshape(-1)).sum())} active states differ"
    want = vals.reshape(got_v.shape)
    if atol:
        assert np.abs(got_v - want).max() <= atol
    else:
        assert np.array_equal(got_v, want)
    assert gc.summary["voxel_count"] == vdb_grid.activeVoxelCount()
    return g, gc


def mantaflow_like(ovdb, n=40, seed=0, clip=1e-3):
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n),) * 3, indexing="ij")
    d = np.clip(1 - np.sqrt(x**2 + y**2 + (z + 0.3) ** 2) * 1.5, 0, None) * rng.random((n, n, n))
    grid = ovdb.FloatGrid(0.0)
    grid.copyFromArray(d.astype(np.float32), (0, 0, 0), clip)  # copyFromDense with Mantaflow's clip tolerance
    grid.name = "density"
    grid.gridClass = ovdb.GridClass.FOG_VOLUME
    grid.transform = ovdb.createLinearTransform([[0.05, 0, 0, 0], [0, 0.05, 0, 0], [0, 0, 0.05, 0], [-1, -1, 0, 1]])
    return grid


def test_sparse_fog_grid(tmp_path, ovdb):
    grid = mantaflow_like(ovdb)
    g, gc = check_against_oracle(tmp_path, grid)
    assert g.grid_class == "fog" and gc.summary["class"] == "FOG"
    want = grid.transform.indexToWorld((1, 2, 3))
    assert np.allclose(gc.summary["index_to_world_123"], want)


def test_inactive_voxels_with_other_values_and_active_background_voxels(tmp_path, ovdb):
    grid = mantaflow_like(ovdb, seed=1)
    acc = grid.getAccessor()
    acc.setValueOff((20, 20, 20), 0.75)  # inactive but not background: forces the exact (flood-fill) pass
    acc.setValueOn((0, 0, 0), 0.0)  # active yet equal to background
    acc.setValueOn((-30, 5, 7), 2.0)
    check_against_oracle(tmp_path, grid)


def test_active_tiles_and_fully_active_box(tmp_path, ovdb):
    grid = ovdb.FloatGrid(0.0)
    grid.fill((-128, 0, 0), (127, 127, 135), 1.5, True)  # whole 128^3 tiles, 8^3 tiles and partial leaves
    grid.name = "temperature"
    g, gc = check_against_oracle(tmp_path, grid, margin=2)
    assert gc.summary["tile_count"][1] == 2 and len(g.leaves) == 0
    acc = grid.getAccessor()
    acc.setValueOn((5, 6, 7), 3.0)
    check_against_oracle(tmp_path, grid, margin=2)


@pytest.mark.parametrize("odd_inactive", [False, True])
def test_vec3_grid(tmp_path, ovdb, odd_inactive):
    rng = np.random.default_rng(5)
    v = rng.normal(size=(24, 20, 16, 3)).astype(np.float32)
    v[rng.random((24, 20, 16)) < 0.6] = 0
    grid = ovdb.Vec3SGrid((0.0, 0.0, 0.0))
    grid.copyFromArray(v, (-10, 3, -20))
    grid.name = "velocity"
    if odd_inactive:  # the changeBackground rule cannot see this one; the mapOn path must
        grid.getAccessor().setValueOff((0, 10, -10), (1.0, 2.0, 3.0))
    g, gc = check_against_oracle(tmp_path, grid)
    assert gc.summary["type"] == "Vec3f"


def test_level_set_sphere_keeps_inside_values(tmp_path, ovdb):
    ls = ovdb.createLevelSetSphere(6.0, (0.5, 0.0, -0.25), 0.1, 3.0)
    g, gc = check_against_oracle(tmp_path, ls, quantize="fpn", atol=0.1 * 0.1 + 1e-6)
    assert g.grid_class == "levelset" and gc.summary["type"] == "FloatN"
    res = H.run_checker(tmp_path / "o.nvdb", np.array([[5, 0, -3], [0, 0, 0], [500, 0, 0]], np.int32))
    assert np.allclose(res.grids[0].q_pnano[0], [-ls.background, -ls.background, ls.background])


def test_double_grid_and_convert_file(tmp_path, ovdb):
    d = ovdb.DoubleGrid(0.0)
    d.fill((0, 0, 0), (9, 9, 9), 0.5, True)
    d.name = "shadow"
    f = mantaflow_like(ovdb, n=24)
    b = ovdb.BoolGrid(False)
    b.fill((0, 0, 0), (3, 3, 3), True, True)
    b.name = "mask"
    ovdb.write(str(tmp_path / "frame.vdb"), [f, d, b])
    info = convert_vdb_file(tmp_path / "frame.vdb", tmp_path / "frame.nvdb", ovdb, codec="zip")
    assert info["skipped"] == ["mask"] and [x["name"] for x in info["grids"]] == ["density", "shadow"]
    res = H.run_checker(tmp_path / "frame.nvdb")
    assert all(g.ok for g in res.grids), [g.problems() for g in res.grids]
    assert res.grids[1].summary["voxel_count"] == 1000
    assert [g.name for g in grids_from_openvdb([f, d, b], names=["shadow"])] == ["shadow"]


def test_unsupported_grids_are_one_line_errors(tmp_path, ovdb):
    with pytest.raises(VDBForgeError, match="value type 'bool'"):
        grid_from_openvdb(ovdb.BoolGrid())
    frustum = ovdb.FloatGrid()
    frustum.transform = ovdb.createFrustumTransform((0, 0, 0), (9, 9, 9), 1.0, 0.5)
    with pytest.raises(VDBForgeError, match="linear"):
        grid_from_openvdb(frustum)
    with pytest.raises(VDBForgeError, match="cannot read"):
        convert_vdb_file(tmp_path / "missing.vdb", tmp_path / "x.nvdb", ovdb)
