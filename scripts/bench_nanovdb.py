#!/usr/bin/env python3
"""Benchmark our numpy NanoVDB writer against NanoVDB's official C++ converter on the same .vdb frames.

    .venv/bin/python scripts/bench_nanovdb.py                      # synthetic smoke frames at res 64 and 128
    .venv/bin/python scripts/bench_nanovdb.py --vdb DIR_OR_FILES   # real frames (e.g. a Mantaflow cache/data dir)
    .venv/bin/python scripts/bench_nanovdb.py --bake               # bake with `vdbforge render` first (slow)

Both sides do the same work per frame, end to end: read the .vdb, convert every float/vec3 grid, write one .nvdb.
Ours runs in this Python process (openvdb module for reading); the official side is a small C++ program built here
from the Debian headers (nanovdb::openToNanoVDB + nanovdb::io::writeGrids, OpenVDB 10 for reading; TBB on, as in
NanoVDB's own tools). Needs: g++, libnanovdb-dev, libopenvdb-dev, libboost-dev, libtbb-dev, libblosc-dev, zlib.
--verify samples both outputs through the official reader and requires identical values.

Two figures per set and codec: one frame at a time (ours in this process, the latency of a single frame) and a whole
sequence (`--sequence`, the frames cycled): how `export` converts a frame range, with helper processes beside this
one (core/nanovdb/frame_pool.py), their start counted, against the official converter's per-frame totals.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BUILD = ROOT / "tests" / "nanovdb" / "build" / "official"  # gitignored, beside the checker

OFFICIAL_CPP = r"""
#include <openvdb/openvdb.h>
#include <tbb/global_control.h>
#include <nanovdb/util/OpenToNanoVDB.h>
#include <nanovdb/util/IO.h>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>
using Clock = std::chrono::steady_clock;
static double ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }
template <typename Q> nanovdb::GridHandle<> quantized(const openvdb::FloatGrid &g) {
    return nanovdb::openToNanoVDB<nanovdb::HostBuffer, openvdb::FloatTree, Q>(g);
}
// usage: official CODEC QUANT THREADS OUT_DIR IN.vdb...
int main(int argc, char **argv) {
    openvdb::initialize();
    const std::string codecName = argv[1], quant = argv[2];
    const int threads = std::atoi(argv[3]);
    std::unique_ptr<tbb::global_control> limit;
    if (threads > 0) limit.reset(new tbb::global_control(tbb::global_control::max_allowed_parallelism, threads));
    const auto codec = codecName == "zip" ? nanovdb::io::Codec::ZIP : codecName == "blosc" ? nanovdb::io::Codec::BLOSC
                                                                                          : nanovdb::io::Codec::NONE;
    for (int i = 5; i < argc; ++i) {
        const std::string in = argv[i];
        const std::string out = std::string(argv[4]) + "/" + std::to_string(i - 5) + ".nvdb";
        auto t0 = Clock::now();
        const std::clock_t c0 = std::clock();
        openvdb::io::File file(in);
        file.open();
        auto grids = file.getGrids();
        file.close();
        auto t1 = Clock::now();
        std::vector<nanovdb::GridHandle<>> handles;
        for (auto &base : *grids) {
            if (auto g = openvdb::gridPtrCast<openvdb::FloatGrid>(base)) {
                if (quant == "fp4") handles.push_back(quantized<nanovdb::Fp4>(*g));
                else if (quant == "fp8") handles.push_back(quantized<nanovdb::Fp8>(*g));
                else if (quant == "fp16") handles.push_back(quantized<nanovdb::Fp16>(*g));
                // 32.4's OpenToNanoVDB<FpN> reads mArray0[size - 1] even with no leaves and crashes: keep empty
                // grids as float there (ours writes them as FpN)
                else if (quant == "fpn" && g->tree().leafCount() == 0) handles.push_back(nanovdb::openToNanoVDB(base));
                else if (quant == "fpn") handles.push_back(quantized<nanovdb::FpN>(*g));
                else handles.push_back(nanovdb::openToNanoVDB(base));
            } else if (openvdb::gridPtrCast<openvdb::Vec3SGrid>(base)) {
                handles.push_back(nanovdb::openToNanoVDB(base));
            }
        }
        auto t2 = Clock::now();
        nanovdb::io::writeGrids(out, handles, codec);
        auto t3 = Clock::now();
        const double cpu = 1000.0 * double(std::clock() - c0) / CLOCKS_PER_SEC;
        std::printf("{\"in\":\"%s\",\"out\":\"%s\",\"read_ms\":%.3f,\"convert_ms\":%.3f,\"write_ms\":%.3f,"
                    "\"total_ms\":%.3f,\"cpu_ms\":%.3f}\n",
                    in.c_str(), out.c_str(), ms(t0, t1), ms(t1, t2), ms(t2, t3), ms(t0, t3), cpu);
        std::fflush(stdout);
    }
    return 0;
}
"""


def openvdb_module():
    import bpy  # noqa: F401 - the openvdb module ships inside the bpy wheel

    site = Path(bpy.utils.resource_path("LOCAL")) / "python" / "lib" / "python3.11" / "site-packages"
    if str(site) not in sys.path:
        sys.path.append(str(site))
    import openvdb

    return openvdb


def build_official() -> Path:
    src = OFFICIAL_CPP.encode()
    exe = BUILD / f"official-{hashlib.sha1(src).hexdigest()[:12]}"
    if exe.exists():
        return exe
    BUILD.mkdir(parents=True, exist_ok=True)
    cpp, obj = exe.with_suffix(".cpp"), exe.with_suffix(".o")
    cpp.write_bytes(src)
    flags = ["-std=c++17", "-O2", "-DNANOVDB_USE_ZIP", "-DNANOVDB_USE_BLOSC", "-DNANOVDB_USE_TBB"]
    steps = [["g++", "-o", str(exe), str(obj), "-lopenvdb", "-lImath-3_1", "-ltbb", "-lblosc", "-lz", "-lpthread"]]
    if not obj.exists():
        print("building the official converter (OpenVDB headers: about two minutes)...", file=sys.stderr)
        steps.insert(0, ["g++", *flags, "-c", "-o", str(obj), str(cpp)])
    for cmd in steps:
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode:
            sys.exit(f"building the official converter failed (needs libopenvdb-dev libboost-dev):\n{res.stderr}")
    return exe


def synthetic_frames(ovdb, res: int, frames: int, out: Path) -> list[Path]:
    """Smoke-like frames shaped like a Mantaflow gas cache: density, flame, temperature and shadow clipped at 1e-4
    (sparse, as copyFromDense writes them), velocity active where there is smoke."""
    rng = np.random.default_rng(res)
    axis = np.linspace(-1, 1, res, dtype=np.float32)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    noise = rng.random((res, res, res), dtype=np.float32)
    paths = []
    for f in range(frames):
        t = (f + 1) / frames
        rise = z + 0.8 - 1.2 * t
        swirl = 0.15 * np.sin(6 * rise + 3 * t) * t
        r = np.sqrt((x - swirl) ** 2 + (y + swirl) ** 2 + (rise * 0.7) ** 2)
        density = np.clip(1.0 - r * (2.2 - t), 0, None) * (0.55 + 0.45 * np.roll(noise, f, axis=2))
        density[density < 0.02] = 0
        flame = np.where(density > 0.5, density - 0.5, 0)
        temperature = np.where(density > 0, 1 + 2 * density, 0)
        shadow = np.where(density > 0, np.exp(-3 * np.cumsum(density, axis=2) / res), 0)
        vel = np.stack([-(y + swirl), x - swirl, 1.5 * density], axis=-1) * (density > 0)[..., None]
        grids = []
        for name, arr in (("density", density), ("flame", flame), ("temperature", temperature), ("shadow", shadow)):
            g = ovdb.FloatGrid(0.0)
            g.copyFromArray(arr.astype(np.float32), (0, 0, 0), 1e-4)
            g.name = name
            g.gridClass = ovdb.GridClass.FOG_VOLUME
            grids.append(g)
        v = ovdb.Vec3SGrid((0.0, 0.0, 0.0))
        v.copyFromArray(vel.astype(np.float32), (0, 0, 0))
        v.name = "velocity"
        grids.append(v)
        vs = 4.0 / res
        m = [[vs, 0, 0, 0], [0, vs, 0, 0], [0, 0, vs, 0], [-2.0, -2.0, 0.0, 1]]
        for g in grids:
            g.transform = ovdb.createLinearTransform(m)
        p = out / f"smoke_{res}_{f:04d}.vdb"
        ovdb.write(str(p), grids)
        paths.append(p)
    return paths


def bake_frames(res: int, out: Path) -> list[Path]:
    cmd = [sys.executable, "-m", "vdbforge_addon", "render", "--preset", "explosion", "--resolution", str(res),
           "--frames", "1:24:6", "--angles", "1", "--preview-frames", "24", "--keep-cache", "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=ROOT)
    data = sorted((out / "cache").rglob("fluid_data_*.vdb"))
    return data or sorted((out / "vdb").glob("*.vdb"))


def ours(ovdb, paths, out: Path, codec: str, quant: str | None, workers: int | None = None) -> list[dict]:
    """The product's path: convert_vdb_file (read with the openvdb module, extract + build on 2 threads, write)."""
    from vdbforge_addon.core.nanovdb import convert_vdb_file

    rows = []
    for i, p in enumerate(paths):
        target = out / f"{i}.nvdb"
        t0 = time.perf_counter()
        ovdb.readAll(str(p))  # timed separately only to report the read share; the conversion reads again
        t1, c1 = time.perf_counter(), time.process_time()
        convert_vdb_file(p, target, ovdb, codec=codec, quantize=quant, workers=workers)
        t2, c2 = time.perf_counter(), time.process_time()
        rows.append({"in": str(p), "out": str(target), "read_ms": 1e3 * (t1 - t0), "total_ms": 1e3 * (t2 - t1),
                     "cpu_ms": 1e3 * (c2 - c1)})  # fmt: skip
    return rows


def ours_sequence(ovdb, paths, out: Path, codec: str, quant: str | None, helpers: int | None) -> dict:
    """The export's path for a sequence: FrameConverter (helper processes beside this one once a frame proves slow
    enough), timed end to end including the helpers' start."""
    from vdbforge_addon.core.nanovdb.frame_pool import FrameConverter

    t0, c0 = time.perf_counter(), time.process_time()
    with FrameConverter(ovdb, frames=len(paths), codec=codec, quantize=quant, helpers=helpers) as conv:
        for i, p in enumerate(paths):
            conv.submit(p, out / f"{i}.nvdb")
        used = len(conv.helper_pids)
        conv.finish()
    return {"total_ms": 1e3 * (time.perf_counter() - t0), "main_cpu_ms": 1e3 * (time.process_time() - c0),
            "helpers": used}  # fmt: skip


def official(exe: Path, paths, out: Path, codec: str, quant: str | None, threads: int) -> list[dict]:
    cmd = [str(exe), codec, quant or "none", str(threads), str(out), *map(str, paths)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def verify(a: Path, b: Path) -> str:
    """Sample both files at every active voxel of either and demand bit-identical values and states."""
    spec_path = ROOT / "tests" / "nanovdb" / "build.py"
    import importlib.util

    spec = importlib.util.spec_from_file_location("vdbforge_nanovdb_harness", spec_path)
    h = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = h
    spec.loader.exec_module(h)
    ra, rb = h.run_checker(a), h.run_checker(b)
    problems = []
    for ga, gb in zip(ra.grids, rb.grids, strict=True):
        if not ga.ok:
            problems.append(f"ours {ga.problems()}")
        q = np.concatenate([ga.vox_ijk, gb.vox_ijk, ga.tile_ijk[:, :3], gb.tile_ijk[:, :3]]).astype(np.int32)
        qa = h.run_checker(a, q, dump=False).grids[ga.summary["index"]].q_pnano
        qb = h.run_checker(b, q, dump=False).grids[gb.summary["index"]].q_pnano
        if not (np.array_equal(qa[0], qb[0]) and np.array_equal(qa[1], qb[1])):
            diff = int(np.sum(np.any(qa[0].reshape(len(q), -1) != qb[0].reshape(len(q), -1), axis=1)))
            problems.append(f"{ga.summary['name']}: {diff} of {len(q)} samples differ")
    return "; ".join(problems) or "identical"


def _best(best: list[dict] | None, new: list[dict]) -> list[dict]:
    if best is None:
        return new
    return [min(a, b, key=lambda r: r["total_ms"]) for a, b in zip(best, new, strict=True)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vdb", nargs="*", help=".vdb files or folders (default: synthetic frames)")
    ap.add_argument("--bake", action="store_true", help="bake real frames with `vdbforge render` (explosion preset)")
    ap.add_argument("--res", nargs="*", type=int, default=[64, 128])
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--codec", nargs="*", default=["none", "zip", "blosc"])
    ap.add_argument("--quantize", nargs="*", default=["none"], help="none fp4 fp8 fp16 fpn")
    ap.add_argument("--repeat", type=int, default=3, help="best of N runs per frame (both sides)")
    ap.add_argument("--threads", type=int, default=0, help="TBB threads for the official side (0: all cores)")
    ap.add_argument("--verify", action="store_true", help="require identical samples from both outputs")
    ap.add_argument("--sequence", type=int, default=48, help="also time a whole sequence of N frames (0: skip)")
    ap.add_argument("--helpers", type=int, default=None, help="helper processes for the sequence (default: auto)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (frames and outputs)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-nanovdb-"))
    try:
        run(args, work)
    finally:
        if args.keep:
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    ovdb = openvdb_module()
    exe = build_official()
    sets: list[tuple[str, list[Path]]] = []
    if args.vdb:
        files = []
        for p in map(Path, args.vdb):
            files += sorted(p.rglob("*.vdb")) if p.is_dir() else [p]
        sets.append(("given", files))
    else:
        for res in args.res:
            d = work / f"src{res}"
            d.mkdir()
            sets.append((str(res), bake_frames(res, d) if args.bake else synthetic_frames(ovdb, res, args.frames, d)))
    report = []
    sequences: list[dict] = []
    for label, paths in sets:
        for codec in args.codec:
            for quant in args.quantize:
                q = None if quant == "none" else quant
                best_o: list[dict] | None = None
                best_f: list[dict] | None = None
                for _ in range(args.repeat):
                    (work / "ours").mkdir(exist_ok=True)
                    (work / "official").mkdir(exist_ok=True)
                    o = ours(ovdb, paths, work / "ours", codec, q)
                    f = official(exe, paths, work / "official", codec, q, args.threads)
                    best_o = _best(best_o, o)
                    best_f = _best(best_f, f)
                for i, (o, f) in enumerate(zip(best_o, best_f, strict=True)):
                    row = {"set": label, "frame": i, "codec": codec, "quantize": quant,
                           "ours_ms": round(o["total_ms"], 2), "official_ms": round(f["total_ms"], 2),
                           "ratio": round(o["total_ms"] / f["total_ms"], 3),
                           "ours_cpu_ms": round(o["cpu_ms"], 1), "official_cpu_ms": round(f["cpu_ms"], 1),
                           "cpu_ratio": round(o["cpu_ms"] / max(f["cpu_ms"], 1e-3), 3),
                           "ours_read_ms": round(o["read_ms"], 2), "official_read_ms": round(f["read_ms"], 2),
                           "ours_bytes": Path(o["out"]).stat().st_size, "official_bytes": Path(f["out"]).stat().st_size,
                           "vdb_bytes": Path(o["in"]).stat().st_size}  # fmt: skip
                    if args.verify:
                        ours_file = work / "ours" / f"{i}.nvdb"
                        ours(ovdb, [paths[i]], work / "ours", codec, q)
                        official(exe, [paths[i]], work / "official", codec, q, args.threads)
                        row["verify"] = verify(ours_file, work / "official" / "0.nvdb")
                        a = np.fromfile(ours_file, np.uint8)
                        b = np.fromfile(work / "official" / "0.nvdb", np.uint8)
                        if codec == "none" and len(a) == len(b):
                            row["bytes_differing"] = int(np.count_nonzero(a != b))
                    report.append(row)
                    if not args.json:
                        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
                rows = [r for r in report if r["set"] == label and r["codec"] == codec and r["quantize"] == quant]
                if not args.json:
                    print(f"== set {label} codec {codec} quantize {quant}: one frame at a time, median ratio "
                          f"ours/official wall {statistics.median(r['ratio'] for r in rows):.3f}, cpu "
                          f"{statistics.median(r['cpu_ratio'] for r in rows):.3f}", flush=True)  # fmt: skip
                if args.sequence:
                    seq = sequence_row(args, ovdb, exe, work, label, paths, codec, q)
                    seq["quantize"] = quant
                    sequences.append(seq)
                    if not args.json:
                        print(f"== set {label} codec {codec} quantize {quant}: sequence of {seq['frames']} frames, "
                              f"ours {seq['ours_ms_per_frame']} ms/frame ({seq['helpers']} helper processes), "
                              f"official {seq['official_ms_per_frame']} ms/frame, ratio {seq['ratio']}", flush=True)  # fmt: skip
    if args.json:
        print(json.dumps({"frames": report, "sequences": sequences}, indent=1))


def sequence_row(args, ovdb, exe: Path, work: Path, label: str, paths, codec: str, q: str | None) -> dict:
    """A whole sequence (the frames cycled to --sequence) through each side, best of --repeat: what an export of a
    real frame range costs. The official side is its per-frame totals (its process start not counted)."""
    frames = [paths[i % len(paths)] for i in range(args.sequence)]
    best_o = best_f = None
    for _ in range(args.repeat):
        for side in ("seq_ours", "seq_official"):
            shutil.rmtree(work / side, ignore_errors=True)
            (work / side).mkdir()
        o = ours_sequence(ovdb, frames, work / "seq_ours", codec, q, args.helpers)
        f = sum(r["total_ms"] for r in official(exe, frames, work / "seq_official", codec, q, args.threads))
        best_o = o if best_o is None or o["total_ms"] < best_o["total_ms"] else best_o
        best_f = f if best_f is None else min(best_f, f)
    n = len(frames)
    return {"set": label, "codec": codec, "frames": n, "helpers": best_o["helpers"],
            "ours_ms_per_frame": round(best_o["total_ms"] / n, 2), "official_ms_per_frame": round(best_f / n, 2),
            "ratio": round(best_o["total_ms"] / best_f, 3)}  # fmt: skip


if __name__ == "__main__":
    main()
