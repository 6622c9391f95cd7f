"""Fp4 / Fp8 / Fp16 / FpN grids: valid for the official reader and within their stated error bounds."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from vdbforge_addon.core.nanovdb import Leaves, NanoGrid, Tiles, grid_from_dense, identity_transform, write_nvdb
from vdbforge_addon.core.nanovdb.quantize import dither_lut

from .nanovdb import build as H  # builds the official checker and computes reference answers

BITS = {"fp4": 4, "fp8": 8, "fp16": 16}


def plume(n=40, seed=0):
    rng = np.random.default_rng(seed)
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n),) * 3, indexing="ij")
    v = np.clip(1 - np.sqrt(x**2 + y**2 + (z + 0.2) ** 2) * 1.4, 0, None) * (0.7 + 0.3 * rng.random((n, n, n)))
    return v.astype(np.float32)


def leaf_ranges(grid):
    """Per active voxel (sorted like the checker dump): value range of its leaf, which sets the quantum."""
    lv = grid.leaves
    n = len(lv.origins)
    act = np.unpackbits(lv.masks.view(np.uint8).reshape(n, 64), axis=1, bitorder="little").astype(bool)
    li, vi = np.nonzero(act)
    ijk = lv.origins[li] + np.stack(np.unravel_index(vi, (8, 8, 8)), axis=1)
    order = np.lexsort((ijk[:, 2], ijk[:, 1], ijk[:, 0]))
    rng = (lv.values.max(axis=1) - lv.values.min(axis=1)).astype(np.float64)
    return rng[li][order]


def read_back(path, grid):
    res = H.run_checker(path, H.random_queries(grid, 4000))
    gc = res.grids[0]
    assert gc.ok, gc.problems()
    ijk, val = H.sort_voxels(gc.vox_ijk, gc.vox_val)
    exp_ijk, exp_val = H.expected_voxels(grid)
    assert np.array_equal(ijk, exp_ijk)
    return gc, val.astype(np.float64) - exp_val


def test_dither_table_is_the_official_one():
    src = Path("/usr/include/nanovdb/util/DitherLUT.h").read_text()
    body = src[src.index("LUT[512]") :]
    table = np.array(re.findall(r"([0-9.e-]+)f", body[body.index("{") : body.index("}")]), dtype=np.float32)
    assert table.shape == (512,)
    assert np.array_equal(dither_lut(), table)


@pytest.mark.parametrize("dither", [False, True])
@pytest.mark.parametrize("mode", ["fp4", "fp8", "fp16"])
def test_fixed_bit_quantization_error_bound(tmp_path, mode, dither):
    g = grid_from_dense("density", plume(), origin_ijk=(-20, -20, -3))
    info = write_nvdb(tmp_path / "q.nvdb", [g], quantize=mode, dither=dither)
    gc, err = read_back(tmp_path / "q.nvdb", g)
    assert gc.summary["type"] == {"fp4": "Float4", "fp8": "Float8", "fp16": "Float16"}[mode]
    quantum = leaf_ranges(g) / (2 ** BITS[mode] - 1)
    # rounding to nearest is off by at most half a step; a dither threshold moves that to under one step
    bound = quantum * (1.0 if dither else 0.5) * (1 + 1e-5) + 1e-7
    assert np.all(np.abs(err) <= bound)
    assert info["grids"][0]["max_abs_error"] == pytest.approx(np.abs(err).max(), rel=1e-6)


@pytest.mark.parametrize("tolerance", [None, 0.05, 0.001])
def test_fpn_respects_tolerance(tmp_path, tolerance):
    g = grid_from_dense("density", plume(seed=2), origin_ijk=(8, -16, 0))
    info = write_nvdb(tmp_path / "n.nvdb", [g], quantize="fpn", tolerance=tolerance)
    gc, err = read_back(tmp_path / "n.nvdb", g)
    assert gc.summary["type"] == "FloatN"
    tol = 0.01 if tolerance is None else tolerance  # default for fog volumes, as in OpenToNanoVDB
    assert info["grids"][0]["tolerance"] == pytest.approx(tol)
    # a leaf that cannot meet the tolerance with 8 bits falls back to 16 bits (half a 16-bit step)
    bound = np.maximum(tol, leaf_ranges(g) / 65535 / 2 * (1 + 1e-5)) + 1e-7
    assert np.all(np.abs(err) <= bound)
    bits = info["grids"][0]["bits_per_leaf"]
    assert sum(bits.values()) == len(g.leaves)


def test_fpn_level_set_default_tolerance_and_mixed_file(tmp_path):
    n = 48
    x, y, z = np.meshgrid(*(np.arange(n) - n / 2,) * 3, indexing="ij")
    dx = 0.05
    sdf = ((np.sqrt(x**2 + y**2 + z**2) - 14) * dx).astype(np.float32)
    bg = 3 * dx
    band = np.abs(sdf) < bg
    ls = grid_from_dense("surface", np.clip(sdf, -bg, bg), active=band, origin_ijk=(-24, -24, -24),
                         transform=identity_transform(dx), background=bg, grid_class="levelset")  # fmt: skip
    vel = grid_from_dense("velocity", np.random.default_rng(0).normal(size=(16, 16, 16, 3)).astype(np.float32))
    info = write_nvdb(tmp_path / "ls.nvdb", [ls, vel], quantize="fpn", codec="zip")
    assert info["grids"][0]["tolerance"] == pytest.approx(0.1 * dx)
    res = H.run_checker(tmp_path / "ls.nvdb", H.random_queries(ls, 3000))
    assert [g.summary["type"] for g in res.grids] == ["FloatN", "Vec3f"]  # vectors are never quantized
    H.assert_grid_matches(res.grids[1], vel)
    assert res.grids[0].ok, res.grids[0].problems()
    ijk, val = H.sort_voxels(res.grids[0].vox_ijk, res.grids[0].vox_val)
    _, want = H.expected_voxels(ls)
    assert np.abs(val - want).max() <= 0.1 * dx + 1e-7
    inside = res.grids[0].tile_val
    assert inside.size == 0  # interior tiles are inactive, so not in the active dump; they are sampled below
    _, inactive_vals = H.sample_reference(ls, np.zeros((1, 3), np.int32))
    q = np.zeros((1, 3), np.int32)
    r = H.run_checker(tmp_path / "ls.nvdb", q).grids[0]
    assert r.q_pnano[0][0] == pytest.approx(-bg) and not inactive_vals[0]


@pytest.mark.parametrize("mode", ["fp4", "fp8", "fp16", "fpn"])
def test_constant_leaves_tiles_and_negative_values(tmp_path, mode):
    """max == min gives a zero quantum (division by zero in the converter's arithmetic): values stay exact."""
    vals = np.full((3, 512), -2.5, np.float32)
    vals[1] = np.linspace(-1, 1, 512, dtype=np.float32)
    masks = np.full((3, 8), 0xFFFFFFFFFFFFFFFF, np.uint64)
    masks[2, ::2] = 0
    tiles = Tiles(np.array([[64, 64, 64], [8192, 0, 0]]), np.array([1, 3]), np.array([0.125, -9], np.float32),
                  np.array([True, True]))  # fmt: skip
    g = NanoGrid("c", "float", "unknown", identity_transform(), 0.0,
                 Leaves(np.array([[0, 0, 0], [-8, 0, 0], [0, -8, 0]]), vals, masks), tiles)  # fmt: skip
    write_nvdb(tmp_path / "c.nvdb", [g], quantize=mode)
    gc, err = read_back(tmp_path / "c.nvdb", g)
    ijk, _ = H.sort_voxels(gc.vox_ijk, gc.vox_val)
    ramp = ijk[:, 0] < 0
    bits = {"fp4": 4, "fp8": 8, "fp16": 16, "fpn": 16}[mode]  # fpn's default tolerance is 0 for class unknown
    # half a step, plus the float32 rounding of code * quantum + minimum (~1 ulp of the value)
    assert np.abs(err[ramp]).max() <= 2 / (2**bits - 1) / 2 * (1 + 1e-5) + 2.5e-7
    assert np.all(err[~ramp] == 0)
    order = np.argsort(gc.tile_ijk[:, 3])
    assert np.array_equal(gc.tile_val[order], np.array([0.125, -9], np.float32))
