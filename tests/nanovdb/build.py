"""Build and run the NanoVDB checker (official 32.4 headers + PNanoVDB as C) for the test suite and benchmarks.

The binary lands in tests/nanovdb/build/ (gitignored), named after a hash of its sources and flags, so edits rebuild
it and unchanged sources reuse it. Missing compilers or headers fail loudly: without the official reader there is no
judge, and a skipped judge would pass everything.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
HEADERS = Path("/usr/include/nanovdb")
C_FLAGS = ["-O1", "-DPNANOVDB_C", "-fno-strict-aliasing"]
CXX_FLAGS = ["-std=c++17", "-O1", "-DNANOVDB_USE_ZIP", "-DNANOVDB_USE_BLOSC"]
LIBS = ["-lz", "-lblosc", "-lpthread"]


def checker_binary() -> Path:
    for tool in ("gcc", "g++"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is needed to build the NanoVDB checker")
    if not (HEADERS / "util" / "IO.h").exists():
        raise RuntimeError("NanoVDB headers missing: apt-get install libnanovdb-dev (scripts/setup.sh does it)")
    sources = [HERE / "checker.cpp", HERE / "pnano_sample.c"]
    digest = hashlib.sha1()
    for s in sources:
        digest.update(s.read_bytes())
    digest.update(" ".join(C_FLAGS + CXX_FLAGS + LIBS).encode())
    exe = BUILD / f"checker-{digest.hexdigest()[:12]}"
    if exe.exists():
        return exe
    BUILD.mkdir(parents=True, exist_ok=True)
    with open(BUILD / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one compile even if several test processes start together
        if exe.exists():
            return exe
        obj = exe.with_suffix(".pnano.o")
        _run(["gcc", "-c", *C_FLAGS, "-o", str(obj), str(HERE / "pnano_sample.c")])
        tmp = exe.with_suffix(".tmp")
        _run(["g++", *CXX_FLAGS, "-o", str(tmp), str(HERE / "checker.cpp"), str(obj), *LIBS])
        tmp.replace(exe)
    return exe


def _run(cmd: list[str]) -> None:
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"compile failed: {' '.join(cmd)}\n{res.stderr[-4000:]}")


@dataclass
class GridCheck:
    summary: dict
    channels: int
    vox_ijk: np.ndarray | None = None
    vox_val: np.ndarray | None = None
    tile_ijk: np.ndarray | None = None  # (T, 4): origin and size
    tile_val: np.ndarray | None = None
    q_cpp: tuple[np.ndarray, np.ndarray] | None = None  # values, active
    q_pnano: tuple[np.ndarray, np.ndarray] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        s = self.summary
        return (
            s.get("valid") is True
            and not s.get("checker_error")
            and s.get("layout_errors", 1) == 0
            and s.get("stats_mismatch", 1) == 0
            and s.get("pnano_mismatch", 1) == 0
            and s.get("pnano_status", 1) == 0
        )

    def problems(self) -> str:
        keys = ("name", "valid", "error", "checker_error", "layout_errors", "stats_mismatch", "stats_detail",
                "pnano_status", "pnano_mismatch")  # fmt: skip
        return json.dumps({k: self.summary.get(k) for k in keys})


@dataclass
class FileCheck:
    read_error: str
    grids: list[GridCheck]


def run_checker(nvdb: Path | str, queries: np.ndarray | None = None, dump: bool = True) -> FileCheck:
    exe = checker_binary()
    with tempfile.TemporaryDirectory(prefix="nvdbcheck-") as tmp:
        out = Path(tmp)
        args = [str(exe), str(nvdb), str(out)]
        q = None
        if queries is not None:
            q = np.ascontiguousarray(queries, dtype=np.int32).reshape(-1, 3)
            (out / "q.bin").write_bytes(q.tobytes())
            args.append(str(out / "q.bin"))
        if not dump:
            args.append("--no-dump")
        res = subprocess.run(args, capture_output=True, text=True, timeout=600)
        if res.returncode:
            raise RuntimeError(f"checker crashed ({res.returncode}): {res.stderr[-2000:]}")
        doc = json.loads(res.stdout)
        grids = []
        for s in doc["grids"]:
            c = 3 if s.get("type") == "Vec3f" else 1
            gc = GridCheck(s, c)
            pre = out / f"g{s['index']}_"
            if dump and (pre.parent / (pre.name + "vox_ijk.bin")).exists():
                gc.vox_ijk = _load(pre, "vox_ijk.bin", np.int32, 3)
                gc.vox_val = _load(pre, "vox_val.bin", np.float32, c)
                gc.tile_ijk = _load(pre, "tile_ijk.bin", np.int32, 4)
                gc.tile_val = _load(pre, "tile_val.bin", np.float32, c)
            if q is not None and len(q) == 0:
                empty = (np.zeros((0, c) if c > 1 else 0, np.float32), np.zeros(0, bool))
                gc.q_cpp, gc.q_pnano = empty, empty
            elif q is not None and (pre.parent / (pre.name + "q_cpp_val.bin")).exists():
                gc.q_cpp = (_load(pre, "q_cpp_val.bin", np.float32, c), _load(pre, "q_cpp_act.bin", np.uint8, 1) != 0)
                gc.q_pnano = (
                    _load(pre, "q_pnano_val.bin", np.float32, c),
                    _load(pre, "q_pnano_act.bin", np.uint8, 1) != 0,
                )
            grids.append(gc)
        return FileCheck(doc.get("read_error", ""), grids)


def _load(pre: Path, name: str, dtype, cols: int) -> np.ndarray:
    a = np.fromfile(pre.parent / (pre.name + name), dtype=dtype)
    return a if cols == 1 else a.reshape(-1, cols)


# ---- reference answers computed from the writer's input (a NanoGrid), independent of the writer's code ----


def _key(ijk: np.ndarray, shift: int) -> np.ndarray:
    c = (ijk.astype(np.int64) >> shift) + (1 << 20)
    return (c[:, 0] << 42) | (c[:, 1] << 21) | c[:, 2]


def expected_voxels(grid) -> tuple[np.ndarray, np.ndarray]:
    """Active leaf voxels (ijk, value) of a NanoGrid, sorted like np.lexsort over (x, y, z)."""
    lv = grid.leaves
    n = len(lv.origins)
    act = np.unpackbits(lv.masks.view(np.uint8).reshape(n, 64), axis=1, bitorder="little").astype(bool)
    local = np.stack(np.unravel_index(np.arange(512), (8, 8, 8)), axis=1).astype(np.int32)
    li, vi = np.nonzero(act)
    ijk = lv.origins[li] + local[vi]
    vals = lv.values[li, vi]
    return sort_voxels(ijk, vals)


def sort_voxels(ijk: np.ndarray, vals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((ijk[:, 2], ijk[:, 1], ijk[:, 0]))
    return ijk[order], vals[order]


def sample_reference(grid, ijk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a reader must return at `ijk`: the leaf's stored value, else a covering tile's value, else background."""
    ijk = np.asarray(ijk, dtype=np.int32).reshape(-1, 3)
    m = len(ijk)
    c = grid.channels
    bg = np.asarray(grid.background, np.float32)
    vals = np.empty((m, c) if c > 1 else m, np.float32)
    vals[...] = bg
    act = np.zeros(m, bool)
    t = grid.tiles
    for level, shift in ((3, 12), (2, 7), (1, 3)):
        sel = np.flatnonzero(t.levels == level)
        if len(sel):
            keys = _key(t.origins[sel], shift)
            order = np.argsort(keys)
            q = _key(ijk, shift)
            pos = np.clip(np.searchsorted(keys[order], q), 0, len(sel) - 1)
            hit = keys[order][pos] == q
            src = sel[order][pos[hit]]
            vals[hit] = t.values[src]
            act[hit] = t.active[src]
    lv = grid.leaves
    if len(lv.origins):
        keys = _key(lv.origins, 3)
        order = np.argsort(keys)
        q = _key(ijk, 3)
        pos = np.clip(np.searchsorted(keys[order], q), 0, len(keys) - 1)
        hit = keys[order][pos] == q
        leaf = order[pos[hit]]
        loc = ijk[hit] & 7
        n = (loc[:, 0] << 6) | (loc[:, 1] << 3) | loc[:, 2]
        vals[hit] = lv.values[leaf, n]
        act[hit] = ((lv.masks[leaf, n >> 6] >> (n & 63).astype(np.uint64)) & np.uint64(1)).astype(bool)
    return vals, act


def random_queries(grid, count: int, margin: int = 16, seed: int = 0) -> np.ndarray:
    """Active voxels, tile corners and random points around the grid's content (inside and outside)."""
    rng = np.random.default_rng(seed)
    pts = [np.zeros((1, 3), np.int32)]
    if len(grid.leaves.origins):
        ijk, _ = expected_voxels(grid)
        pts.append(ijk[rng.integers(0, len(ijk), min(count, len(ijk)))] if len(ijk) else ijk)
        lo, hi = grid.leaves.origins.min(axis=0) - margin, grid.leaves.origins.max(axis=0) + 8 + margin
        pts.append(rng.integers(lo, hi, size=(count, 3)).astype(np.int32))
    t = grid.tiles
    if len(t.origins):
        dims = np.array([0, 8, 128, 4096])[t.levels]
        pts += [t.origins, t.origins - 1, t.origins + (dims[:, None] - 1), t.origins + dims[:, None]]
        pts.append((t.origins + rng.integers(0, dims[:, None], size=(len(dims), 3))).astype(np.int32))
    return np.concatenate(pts).astype(np.int32)


def assert_grid_matches(gc: GridCheck, grid, atol: float = 0.0, queries: np.ndarray | None = None) -> None:
    """The official reader's view of one grid equals the NanoGrid it was written from (values within atol)."""
    assert gc.ok, gc.problems()
    exp_ijk, exp_val = expected_voxels(grid)
    if gc.vox_ijk is not None:
        got_ijk, got_val = sort_voxels(gc.vox_ijk, gc.vox_val)
        assert got_ijk.shape == exp_ijk.shape, f"{len(got_ijk)} active leaf voxels read, {len(exp_ijk)} written"
        assert np.array_equal(got_ijk, exp_ijk), "active voxel coordinates differ"
        _close(got_val, exp_val, atol, "active voxel values")
        t = grid.tiles
        a = np.flatnonzero(t.active)
        exp_t = np.concatenate([t.origins[a], np.array([0, 8, 128, 4096])[t.levels[a], None]], axis=1)
        o1 = np.lexsort(exp_t.T[::-1])
        o2 = np.lexsort(gc.tile_ijk.T[::-1])
        assert np.array_equal(gc.tile_ijk[o2], exp_t[o1]), "active tiles differ"
        assert np.array_equal(gc.tile_val[o2], t.values[a][o1]), "active tile values differ"
    if queries is not None:
        ref_v, ref_a = sample_reference(grid, queries)
        for label, (v, act) in (("C++ accessor", gc.q_cpp), ("PNanoVDB", gc.q_pnano)):
            assert np.array_equal(act, ref_a), f"{label}: active states differ at {int((act != ref_a).sum())} points"
            _close(v.reshape(ref_v.shape), ref_v, atol, f"{label} values")


def _close(got: np.ndarray, exp: np.ndarray, atol: float, what: str) -> None:
    if atol == 0:
        bad = ~((got == exp) | (np.isnan(got) & np.isnan(exp)))
    else:
        bad = ~(np.abs(got.astype(np.float64) - exp) <= atol)
    assert not bad.any(), f"{what}: {int(bad.sum())} differ (first: got {got[bad][:3]}, want {exp[bad][:3]})"
