"""A large frame (256^3 dense region, float + vec3) through the whole path; heavy, so marked slow:
.venv/bin/python -m pytest -m slow tests/test_nanovdb_large.py"""

from __future__ import annotations

import resource
import sys
from pathlib import Path

import numpy as np
import pytest

from vdbforge_addon.core.nanovdb import convert_vdb_file, grid_from_dense, write_nvdb

from .nanovdb import build as H  # builds the official checker and computes reference answers

pytestmark = pytest.mark.slow


N = 256


def plume(n=N, seed=0):
    rng = np.random.default_rng(seed)
    axis = np.linspace(-1, 1, n, dtype=np.float32)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    d = np.clip(1 - np.sqrt(x**2 + y**2 + (z + 0.2) ** 2) * 1.3, 0, None) * (
        0.5 + 0.5 * rng.random((n,) * 3, np.float32)
    )
    d[d < 0.02] = 0
    return d


def test_dense_256_frame(tmp_path):
    d = plume()
    vel = np.stack([d, -d, 0.5 * d], axis=-1)
    grids = [grid_from_dense("density", d, origin_ijk=(-128, -128, 0)),
             grid_from_dense("velocity", vel, origin_ijk=(-128, -128, 0))]  # fmt: skip
    info = write_nvdb(tmp_path / "big.nvdb", grids, codec="zip")
    assert info["grids"][0]["voxels"] == int(np.count_nonzero(d))
    rng = np.random.default_rng(1)
    q = np.concatenate([rng.integers(-140, 140, size=(200_000, 3)), np.argwhere(d)[::50] + (-128, -128, 0)])
    res = H.run_checker(tmp_path / "big.nvdb", q, dump=False)
    for gc, g in zip(res.grids, grids, strict=True):
        H.assert_grid_matches(gc, g, queries=q)


def test_openvdb_256_frame_converts_within_memory(tmp_path):
    bpy = pytest.importorskip("bpy")
    site = Path(bpy.utils.resource_path("LOCAL")) / "python" / "lib" / "python3.11" / "site-packages"
    if str(site) not in sys.path:
        sys.path.append(str(site))
    import openvdb

    d = plume(seed=3)
    g = openvdb.FloatGrid(0.0)
    g.copyFromArray(d, (0, 0, 0), 1e-4)
    g.name = "density"
    v = openvdb.Vec3SGrid((0.0, 0.0, 0.0))
    v.copyFromArray(np.stack([d, d, -d], axis=-1), (0, 0, 0))
    v.name = "velocity"
    openvdb.write(str(tmp_path / "big.vdb"), [g, v])
    active = g.activeVoxelCount()
    del g, v
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    info = convert_vdb_file(tmp_path / "big.vdb", tmp_path / "big.nvdb", openvdb, codec="blosc")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert info["grids"][0]["voxels"] == active
    # the peak stays within a small multiple of the frame (input grids + slabs + two grids in flight)
    assert grown_mb < 2000, f"peak memory grew by {grown_mb:.0f} MB"
    rng = np.random.default_rng(2)
    q = np.concatenate([rng.integers(-4, N + 4, size=(200_000, 3)), np.argwhere(d)[::50]])
    res = H.run_checker(tmp_path / "big.nvdb", q, dump=False)
    want = np.zeros(len(q), np.float32)
    inside = np.all((q >= 0) & (q < N), axis=1)
    want[inside] = d[tuple(q[inside].T)]
    gc = res.grids[0]
    assert gc.ok, gc.problems()
    assert np.array_equal(gc.q_pnano[0], np.where(np.abs(want) > 1e-4, want, 0))
    assert res.grids[1].ok, res.grids[1].problems()
