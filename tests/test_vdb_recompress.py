"""The .vdb transcoder (core/vdb_recompress.py, core/blosc_decode.py) on real files written by Blender's openvdb
module: Zip and uncompressed copies read back through the module and through OpenVDB's own `vdb_print` with the same
grids, values, metadata and transforms; our Blosc decoder agrees with the `blosc` package on real and synthetic
frames; corrupt or truncated input is one line and writes nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vdbforge_addon.core import vdb_recompress
from vdbforge_addon.core.blosc_decode import HEADER, MEMCPYED, blosc_decompress, lz4_block_decode
from vdbforge_addon.core.errors import VDBForgeError
from vdbforge_addon.core.vdb_recompress import recompress_bytes, recompress_vdb
from vdbforge_addon.core.vdb_stream import Reader, read_meta_map

# Grids covering what the walk must handle: a fog volume with negative coordinates, a level set (inactive values
# +-background with selection masks), half floats, vec3 velocity far from the origin, a grid made only of root and
# internal-node tiles, internal tiles next to leaves under two root children with an affine transform, int and bool
# trees, an instance sharing another grid's tree, and a frustum transform; plus file metadata.
MAKE = r"""
import sys, numpy as np, bpy
from vdbforge_addon.blender.openvdb_import import import_openvdb
vdb = import_openvdb()
rng = np.random.default_rng(3)
a = rng.random((20, 13, 9)).astype(np.float32); a[a < 0.3] = 0
fog = vdb.FloatGrid(); fog.copyFromArray(a, ijk=(-7, -20, 3)); fog.pruneInactive()
fog.name, fog.gridClass = "density", vdb.GridClass.FOG_VOLUME
ls = vdb.createLevelSetSphere(radius=6.0, center=(1, 2, 3), voxelSize=0.25, halfWidth=3.0); ls.name = "surface"
half = vdb.FloatGrid(); half.copyFromArray(a * 3 - 1, ijk=(100, -300, 40)); half.name = "half"
half.saveFloatAsHalf = True
vel = vdb.Vec3SGrid(); vel.copyFromArray(rng.normal(size=(10, 11, 12, 3)).astype(np.float32), ijk=(-4000, 50, -9))
vel.name, vel.saveFloatAsHalf = "velocity", True
tiles = vdb.FloatGrid(); tiles.name = "tiles"
tiles.fill((0, 0, 0), (127, 127, 127), 2.5, True); tiles.fill((-4096, 0, 0), (-1, 4095, 4095), -1.0, True)
mixed = vdb.FloatGrid(); mixed.name = "mixed"; mixed.fill((0, 0, 0), (15, 15, 15), 0.75, True)
acc = mixed.getAccessor(); acc.setValueOn((40, 1, 1), 9.0); acc.setValueOn((-3000, 5, 7), -2.0)
mixed.transform = vdb.createLinearTransform([[0.5, 0.1, 0, 0], [0, 0.4, 0.2, 0], [0.3, 0, 0.6, 0], [1, 2, 3, 1]])
ints = vdb.Int32Grid(); ints.copyFromArray((a * 100).astype(np.int32), ijk=(0, 0, 0)); ints.name = "ints"
mask = vdb.BoolGrid(); mask.copyFromArray(a > 0.5, ijk=(5, 5, 5)); mask.name = "mask"
copy = fog.copy(); copy.metadata = {"note": "shares density's tree"}; copy.name = "density_copy"
frustum = vdb.FloatGrid(); frustum.copyFromArray(a[:8, :8, :8] + 1, ijk=(0, 0, 0)); frustum.name = "frustum"
frustum.transform = vdb.createFrustumTransform((0, 0, 0), (16, 16, 16), 0.5, 10.0, 0.5)
grids = [fog, ls, half, vel, tiles, mixed, ints, mask, copy, frustum]
vdb.write(sys.argv[1], grids, metadata={"creator": "test", "frame": 7, "scale": 0.5, "units": "meters"})
"""

# What Blender's openvdb module reads back from each file: per grid its facts and (saved as .npy) the values over its
# active bounding box, clipped to 48^3 so the tiles-only grid stays small; probes read single voxels far out.
DUMP = r"""
import json, sys, numpy as np, bpy
from vdbforge_addon.blender.openvdb_import import import_openvdb
vdb = import_openvdb()
out, report = sys.argv[1], {}
dtypes = {"float": np.float32, "double": np.float64, "int32": np.int32, "int64": np.int64, "bool": np.bool_}
probes = [(0, 0, 0), (-4000, 55, 0), (-2000, 100, 100), (64, 64, 64), (-3000, 5, 7), (1, 2, 3)]
for i, path in enumerate(sys.argv[2:]):
    grids, meta = vdb.readAll(path)
    facts = []
    for j, g in enumerate(grids):
        lo, hi = g.evalActiveVoxelBoundingBox()
        shape = tuple(max(0, min(h - l + 1, 48)) for l, h in zip(lo, hi))
        arr = np.zeros(shape + ((3,) if "vec3" in g.valueTypeName else ()), dtypes.get(g.valueTypeName, np.float32))
        g.copyToArray(arr, ijk=lo)
        np.save(f"{out}/{i}_{j}.npy", arr)
        acc = g.getConstAccessor()
        facts.append({
            "name": g.name, "type": g.valueTypeName, "class": str(g.gridClass), "half": g.saveFloatAsHalf,
            "background": repr(g.background), "active": int(g.activeVoxelCount()), "leaves": int(g.leafCount()),
            "nodes": int(g.nonLeafCount()), "bbox": [list(lo), list(hi)], "minmax": repr(g.evalMinMax()),
            "metadata": {k: repr(v) for k, v in g.metadata.items()},
            "world": [list(g.transform.indexToWorld(p)) for p in [(0, 0, 0), (1, 2, 3), (-5, 7, 11)]],
            "probes": [[repr(acc.getValue(p)), acc.isValueOn(p)] for p in probes],
        })
    report[path] = {"meta": {k: repr(v) for k, v in meta.items()}, "grids": facts}
print(json.dumps(report))
"""

EXPECTED_COMPRESSION = {"blosc": "blosc + active values", "zip": "zip + active values", "none": "active values"}
EXPECTED_FLAGS = {"blosc": 0x6, "zip": 0x3, "none": 0x2}


def module_dump(paths: list[Path], tmp: Path) -> list[dict]:
    """Per file: the module's view of it, each grid's dense values under "values"."""
    out = tmp / f"dump{len(list(tmp.glob('dump*')))}"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-c", DUMP, str(out), *map(str, paths)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    files = [report[str(p)] for p in paths]
    for i, facts in enumerate(files):
        for j, grid in enumerate(facts["grids"]):
            grid["values"] = np.load(out / f"{i}_{j}.npy")
    return files


def vdb_print(path: Path) -> list[str]:
    """OpenVDB's own reader (libopenvdb-tools) listing every grid with its statistics and metadata."""
    proc = subprocess.run(["vdb_print", "-l", "-m", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.splitlines()


def grid_flags(data: bytes) -> list[int]:
    """Each grid's compression flags, found only through the descriptors' offsets (independent of the tree walk):
    the chain of endPos must lead from one descriptor to the next and end at the end of the file."""
    r = Reader(data)
    r.take(8 + 12 + 1 + 36)
    read_meta_map(r)
    flags = []
    for _ in range(r.u32()):
        for _ in range(3):
            r.string("name")
        grid_pos, _block_pos, end_pos = (r.i64() for _ in range(3))
        assert grid_pos == r.pos
        flags.append(int.from_bytes(data[grid_pos : grid_pos + 4], "little"))
        r.pos = end_pos
    assert r.pos == len(data)
    return flags


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("recompress") / "sample.vdb"
    proc = subprocess.run([sys.executable, "-c", MAKE, str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return path


@pytest.fixture(scope="module")
def encoded(sample: Path) -> dict[str, Path]:
    paths = {"blosc": sample}
    for compression in ("zip", "none"):
        paths[compression] = sample.with_name(f"sample_{compression}.vdb")
        recompress_vdb(sample, paths[compression], compression)
    return paths


def test_module_reads_back_identical_grids(encoded: dict[str, Path], tmp_path: Path):
    files = module_dump([encoded["blosc"], encoded["zip"], encoded["none"]], tmp_path)
    reference = files[0]
    names = [g["name"] for g in reference["grids"]]
    assert set(names) >= {"density", "surface", "half", "velocity", "tiles", "mixed", "ints", "mask", "frustum"}
    assert any(g["leaves"] == 0 and g["active"] > 0 for g in reference["grids"])  # tiles only
    for compression, facts in zip(("zip", "none"), files[1:], strict=True):
        assert facts["meta"] == reference["meta"]
        assert [g["name"] for g in facts["grids"]] == names
        for ref, got in zip(reference["grids"], facts["grids"], strict=True):
            assert ref["metadata"].get("file_compression") in (None, repr(EXPECTED_COMPRESSION["blosc"]))
            if "file_compression" in ref["metadata"]:
                assert got["metadata"].pop("file_compression") == repr(EXPECTED_COMPRESSION[compression])
                ref = {**ref, "metadata": {k: v for k, v in ref["metadata"].items() if k != "file_compression"}}
            values, expected = got.pop("values"), ref["values"]
            assert values.dtype == expected.dtype and np.array_equal(values, expected), (compression, ref["name"])
            assert got == {k: v for k, v in ref.items() if k != "values"}, (compression, ref["name"])


def test_vdb_print_lists_the_same_grids(encoded: dict[str, Path]):
    reference = vdb_print(encoded["blosc"])
    assert sum(line.startswith("Name:") for line in reference) == 10
    assert any("Number of active voxels" in line for line in reference)
    for compression in ("zip", "none"):
        listing = vdb_print(encoded[compression])
        assert len(listing) == len(reference)
        for ref, got in zip(reference, listing, strict=True):
            if "file_compression:" in ref:
                assert got.split(": ", 1) == [ref.split(": ", 1)[0], EXPECTED_COMPRESSION[compression]]
            else:
                assert got == ref


def test_compression_flags_and_sizes_change(encoded: dict[str, Path]):
    data = {c: p.read_bytes() for c, p in encoded.items()}
    for compression, blob in data.items():
        assert set(grid_flags(blob)) == {EXPECTED_FLAGS[compression]}, compression
    assert data["zip"] != data["none"] and len(data["none"]) > len(data["zip"])
    # Re-encoding is exact: any encoding of the same file re-encodes to the same bytes, and zip to zip is stable
    # (which also checks that the zip file's rewritten file_delayed_load sizes match its buffers).
    assert recompress_bytes(data["none"], "zip") == data["zip"]
    assert recompress_bytes(data["zip"], "zip") == data["zip"]
    assert recompress_bytes(data["zip"], "none") == data["none"]


def test_our_blosc_decoder_matches_the_blosc_package_on_real_buffers(sample: Path, monkeypatch):
    blosc = pytest.importorskip("blosc")
    frames: list[bytes] = []

    def recording(frame: bytes) -> bytes:
        frames.append(bytes(frame))
        return blosc_decompress(frame)

    monkeypatch.setattr(vdb_recompress, "blosc_decompress", recording)
    recompress_bytes(sample.read_bytes(), "none")
    assert len(frames) > 100
    compressed = [f for f in frames if not HEADER.unpack_from(f)[2] & MEMCPYED]
    assert len(compressed) > 20, "the sample should hold real LZ4 frames, not only memcpyed ones"
    assert {HEADER.unpack_from(f)[3] for f in frames} >= {4}
    for frame in frames:
        assert blosc_decompress(frame) == blosc.decompress(frame)


def test_our_blosc_decoder_matches_the_blosc_package_on_synthetic_frames():
    blosc = pytest.importorskip("blosc")
    rng = np.random.default_rng(5)
    seen_flags = set()
    try:
        for count in (0, 1, 31, 128, 700, 5000):
            values = np.cumsum(rng.normal(size=count)).astype(np.float32)
            values[: count // 3] = 0
            raw = values.tobytes()
            for typesize in (1, 2, 4, 6, 12):
                for shuffle in (blosc.NOSHUFFLE, blosc.SHUFFLE):
                    for blocksize in (0, 256, 4096):  # 4096 over 5000 floats: split blocks and a leftover block
                        blosc.set_blocksize(blocksize)
                        frame = blosc.compress(raw, typesize=typesize, clevel=9, shuffle=shuffle, cname="lz4")
                        seen_flags.add(HEADER.unpack_from(frame)[2])
                        assert blosc_decompress(frame) == blosc.decompress(frame) == raw
    finally:
        blosc.set_blocksize(0)
    # memcpyed, shuffled, and split (bit 4 clear) LZ4 frames were all exercised
    assert any(f & MEMCPYED for f in seen_flags) and any(f & 0x1 and not f & 0x12 for f in seen_flags)


def _corruptions(data: bytes, frame: bytes) -> dict[str, bytes]:
    """Broken copies of `data`; `frame` is one of its LZ4 Blosc frames, preceded by its int64 byte count."""
    body = data.index(b"Tree_float_5_4_3")
    at = data.index(frame)
    return {
        "empty": b"",
        "not a vdb": b"hello, world" * 10,
        "header only": data[:40],
        "cut in a descriptor": data[: body + 5],
        "cut in the buffers": data[: len(data) // 2],
        "one byte short": data[:-1],
        "trailing bytes": data + b"\0" * 3,
        "bad blosc version": data[:at] + b"\x09" + data[at + 1 :],
        "blosc size too small": data[: at + 4] + b"\x01" + data[at + 5 :],
        "huge buffer count": data[: at - 8] + (10**9).to_bytes(8, "little") + data[at:],
    }


def _lz4_frame(data: bytes, monkeypatch) -> bytes:
    frames: list[bytes] = []
    monkeypatch.setattr(vdb_recompress, "blosc_decompress", lambda f: frames.append(bytes(f)) or blosc_decompress(f))
    recompress_bytes(data, "none")
    monkeypatch.undo()
    return next(f for f in frames if not HEADER.unpack_from(f)[2] & MEMCPYED and len(f) > 64)


def test_corrupt_input_is_one_line_and_writes_nothing(sample: Path, tmp_path: Path, monkeypatch):
    data = sample.read_bytes()
    for what, blob in _corruptions(data, _lz4_frame(data, monkeypatch)).items():
        src, dst = tmp_path / f"{what}.vdb", tmp_path / "out" / "result.vdb"
        src.write_bytes(blob)
        with pytest.raises(VDBForgeError) as caught:
            recompress_vdb(src, dst, "zip")
        message = str(caught.value)
        assert message.startswith(f"cannot recompress '{src}'") and "\n" not in message, (what, message)
        assert not dst.exists(), what
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir()), what
    # In place: a failure leaves the source as it was.
    src = tmp_path / "inplace.vdb"
    src.write_bytes(data[:-1])
    with pytest.raises(VDBForgeError):
        recompress_vdb(src, src, "none")
    assert src.read_bytes() == data[:-1] and [p.name for p in tmp_path.glob(".inplace*")] == []
    with pytest.raises(VDBForgeError, match="use zip or none"):
        recompress_vdb(sample, tmp_path / "x.vdb", "blosc")  # type: ignore[arg-type]
    with pytest.raises(VDBForgeError, match="cannot read"):
        recompress_vdb(tmp_path / "missing.vdb", tmp_path / "x.vdb", "zip")
    assert not (tmp_path / "x.vdb").exists()


def test_in_place_recompression_keeps_the_file_mode(sample: Path, encoded: dict[str, Path], tmp_path: Path):
    target = tmp_path / "copy.vdb"
    shutil.copy(sample, target)
    for mode in (0o644, 0o640):
        target.chmod(mode)
        recompress_vdb(target, target, "zip")
        assert target.read_bytes() == encoded["zip"].read_bytes()
        assert target.stat().st_mode & 0o777 == mode
    assert [p.name for p in tmp_path.iterdir()] == ["copy.vdb"]


def test_lz4_decoder_refuses_broken_blocks():
    good = bytes([0x40]) + b"abcd"  # one sequence: four literals, no match
    assert lz4_block_decode(good, 4) == b"abcd"
    # literals "ab", then a match of 4 + 4 bytes at offset 2: an overlapping copy repeating "ab"
    assert lz4_block_decode(bytes([0x24]) + b"ab" + b"\x02\x00" + bytes([0x00]) + b"", 10) == b"ab" * 5
    for block, size, needle in [
        (good, 5, "inflated to 4 bytes, expected 5"),
        (good[:3], 4, "runs past the end"),
        (bytes([0xF0]), 4, "truncated"),
        (bytes([0x14]) + b"a" + b"\x05\x00", 9, "points before the start"),
        (bytes([0x14]) + b"a" + b"\x00\x00", 9, "points before the start"),
    ]:
        with pytest.raises(VDBForgeError, match=needle):
            lz4_block_decode(block, size)
