"""Rewrite a `.vdb` with every value buffer re-encoded as ZIP or NONE, so the same grids load from a Zip-compressed or
uncompressed file. Blender's bundled `openvdb` module (the only VDB writer we use) always writes Blosc; this turns
its output into the other two encodings OpenVDB reads, without any other VDB library.

The walk follows what OpenVDB writes (io/Archive.cc writeGrid, tree/RootNode.h, InternalNode.h, LeafNode.h
writeTopology/writeBuffers, io/Compression.h writeCompressedValues):

    header, file metadata, grid count, then per grid: descriptor (unique name, type, instance parent, gridPos,
    blockPos, endPos), u32 compression flags, metadata, transform,
    topology: i32 buffer count, background, root tiles, and per root child its internal nodes depth-first
        (child mask, value mask, the node's values as a compressed buffer, then its children; a leaf: value mask),
    buffers (at blockPos): per leaf its value mask and its values as a compressed buffer (bool leaves: raw bits).

A compressed buffer is a metadata byte saying which inactive values were left out, up to two inactive values, an
optional selection mask, then the kept values (all of them, or only the active ones). Only that last part depends on
the compression: Blosc and Zip prefix it with an int64 byte count (negative: stored raw), NONE writes the bare bytes,
their number known to the reader from the masks. So each one is decoded and re-encoded, everything else is copied,
and the flags, the `file_compression` and `file_delayed_load` metadata and the descriptors' offsets are rewritten.
"""

from __future__ import annotations

import os
import stat
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .atomic import write_bytes
from .blosc_decode import blosc_decompress
from .errors import VDBForgeError
from .vdb_stream import (
    COMPRESS_ACTIVE_MASK,
    COMPRESS_BLOSC,
    COMPRESS_ZIP,
    DELAYED_LOAD,
    DELAYED_LOAD_TYPE,
    FIRST_VERSION,
    I64,
    LAST_VERSION,
    MAGIC,
    UUID_CHARS,
    MetaEntry,
    Reader,
    TreeLayout,
    VDBFormatError,
    compression_name,
    encode_delayed_load,
    encode_meta_map,
    pack_string,
    read_delayed_load,
    read_meta_map,
    read_transform,
    tree_layout,
)

Compression = Literal["zip", "none"]
KNOWN_FLAGS = COMPRESS_ZIP | COMPRESS_ACTIVE_MASK | COMPRESS_BLOSC
# writeCompressedValues' metadata byte: which carry inactive values, which a selection mask (MASK_AND_*).
ONE_INACTIVE, TWO_INACTIVE, WITH_SELECTION, ALL_VALUES = (2, 4), 5, (3, 4, 5), 6


def _popcount(mask: bytes) -> int:
    return int.from_bytes(mask, "little").bit_count()


def _decode_payload(r: Reader, nbytes: int, flags: int) -> bytes:
    """One value buffer as readData reads it (Blosc is tested before Zip there too)."""
    if not flags & (COMPRESS_BLOSC | COMPRESS_ZIP):
        return r.take(nbytes)
    count = r.i64()
    if count <= 0:
        if -count != nbytes:
            raise VDBFormatError(f"a {nbytes}-byte value buffer is stored as {-count} raw bytes at offset {r.pos}")
        return r.take(-count)
    if count > len(r.buf):
        raise VDBFormatError(f"a value buffer claims {count} bytes at offset {r.pos}; the file is corrupt")
    packed = r.take(count)
    if flags & COMPRESS_BLOSC:
        raw = blosc_decompress(packed)
    else:
        try:
            raw = zlib.decompress(packed)
        except zlib.error as exc:
            raise VDBFormatError(f"a zip value buffer at offset {r.pos - count} does not inflate ({exc})") from None
    if len(raw) != nbytes:
        raise VDBFormatError(f"a value buffer inflated to {len(raw)} bytes, expected {nbytes}")
    return raw


def _encode_payload(raw: bytes, compression: Compression) -> bytes:
    if compression == "none":
        return raw
    # io::zipToStream: zlib's default level; kept raw (negative count) unless compression makes it smaller.
    packed = zlib.compress(raw)
    if len(packed) < len(raw):
        return I64.pack(len(packed)) + packed
    return I64.pack(-len(raw)) + raw


@dataclass
class _Grid:
    """One tree being walked: output pieces, and per leaf its metadata byte and old/new value buffer sizes."""

    r: Reader
    layout: TreeLayout
    flags: int
    compression: Compression
    out: list[bytes] = field(default_factory=list)
    leaves: int = 0
    leaf_meta: bytearray = field(default_factory=bytearray)
    old_sizes: list[int] = field(default_factory=list)
    new_sizes: list[int] = field(default_factory=list)

    def values(self, active: int, nvalues: int) -> tuple[int, int, int]:
        """Copy one compressed buffer's preamble and re-encode its values; returns (metadata byte, old, new size)."""
        r, layout = self.r, self.layout
        start = r.pos
        meta = r.u8()
        if meta > ALL_VALUES:
            raise VDBFormatError(f"unknown value-buffer metadata byte {meta} at offset {start}")
        inactive = 2 if meta == TWO_INACTIVE else 1 if meta in ONE_INACTIVE else 0
        r.take(inactive * layout.value_bytes + (nvalues // 8 if meta in WITH_SELECTION else 0))
        self.out.append(r.buf[start : r.pos])
        count = active if self.flags & COMPRESS_ACTIVE_MASK and meta != ALL_VALUES else nvalues
        if count == 0 and layout.skips_empty:
            return meta, 0, 0
        payload_start = r.pos
        raw = _decode_payload(r, count * layout.stored_bytes, self.flags)
        encoded = _encode_payload(raw, self.compression)
        self.out.append(encoded)
        return meta, r.pos - payload_start, len(encoded)

    def internal(self, level: int) -> None:
        nvalues = 1 << (3 * self.layout.log2dims[level])
        masks = self.r.take(nvalues // 4)  # child mask, then value mask
        self.out.append(masks)
        child_mask, value_mask = masks[: nvalues // 8], masks[nvalues // 8 :]
        self.values(_popcount(value_mask), nvalues)
        leaf_level = level + 1 == len(self.layout.log2dims) - 1
        leaf_mask_bytes = (1 << (3 * self.layout.log2dims[-1])) // 8
        for _ in range(_popcount(child_mask)):
            if leaf_level:
                self.out.append(self.r.take(leaf_mask_bytes))
                self.leaves += 1
            else:
                self.internal(level + 1)

    def topology(self) -> None:
        r, vbytes = self.r, self.layout.value_bytes
        head = r.take(4 + vbytes + 8)
        buffer_count = int.from_bytes(head[:4], "little", signed=True)
        if buffer_count != 1:
            raise VDBFormatError(f"a tree declares {buffer_count} buffers per leaf; OpenVDB writes 1")
        tiles = int.from_bytes(head[4 + vbytes : 8 + vbytes], "little")
        children = int.from_bytes(head[8 + vbytes :], "little")
        self.out.append(head + r.take(tiles * (12 + vbytes + 1)))
        for _ in range(children):
            self.out.append(r.take(12))  # the child's origin
            self.internal(0)

    def buffers(self) -> None:
        nvalues = 1 << (3 * self.layout.log2dims[-1])
        mask_bytes = nvalues // 8
        for _ in range(self.leaves):
            if self.layout.value_type == "bool":
                # LeafNode<bool>::writeBuffers: value mask, origin, value bits; never compressed.
                self.out.append(self.r.take(2 * mask_bytes + 12))
                continue
            mask = self.r.take(mask_bytes)
            self.out.append(mask)
            meta, old, new = self.values(_popcount(mask), nvalues)
            self.leaf_meta.append(meta)
            self.old_sizes.append(old)
            self.new_sizes.append(new)


def _rewrite_meta(entries: list[MetaEntry], flags: int, walk: _Grid | None) -> bytes:
    out = []
    for entry in entries:
        if entry.name == b"file_compression" and entry.type_name == b"string":
            entry = MetaEntry(entry.name, entry.type_name, compression_name(flags))
        elif entry.name == DELAYED_LOAD.encode() and entry.type_name == DELAYED_LOAD_TYPE.encode() and entry.value:
            entry = MetaEntry(entry.name, entry.type_name, _rewrite_delayed_load(entry.value, flags, walk))
        out.append(entry)
    return encode_meta_map(out)


def _rewrite_delayed_load(value: bytes, flags: int, walk: _Grid | None) -> bytes:
    """Keep the per-leaf metadata bytes; store each leaf's new value-buffer size for Zip, none for NONE (readers
    seek over NONE buffers by their known length), checking the old entry described the file we read."""
    masks, sizes = read_delayed_load(value)
    if walk is None or bytes(walk.leaf_meta) != masks or (sizes is not None and len(sizes) != 8 * walk.leaves):
        raise VDBFormatError("the file_delayed_load metadata does not match the grid's leaves")
    if sizes is not None:
        old = list(memoryview(sizes).cast("q"))
        if old != walk.old_sizes:
            raise VDBFormatError("the file_delayed_load metadata's leaf sizes do not match the file")
    return encode_delayed_load(masks, walk.new_sizes if flags & COMPRESS_ZIP else None)


def _grid(r: Reader, has_offsets: bool, base: int, compression: Compression) -> list[bytes]:
    """Re-encode one grid that starts (descriptor first) at r.pos; `base` is where its descriptor lands in the output."""
    name = r.string("a grid name")
    grid_type = r.string("a grid type")
    parent = r.string("an instance parent name")
    grid_pos, block_pos, end_pos = (r.i64() for _ in range(3))
    if has_offsets and grid_pos != r.pos:
        raise VDBFormatError(f"grid '{name.decode(errors='replace')[:60]}' does not start where its descriptor says")
    flags = r.u32()
    if flags & ~KNOWN_FLAGS:
        raise VDBFormatError(f"unknown compression flags {flags:#x}")
    new_flags = (flags & COMPRESS_ACTIVE_MASK) | (COMPRESS_ZIP if compression == "zip" else 0)
    entries = read_meta_map(r)
    transform = read_transform(r)
    walk = None
    tree: list[bytes] = []
    tree_bytes = 0
    if not parent:  # an instance shares its parent's tree and stores none
        walk = _Grid(r, tree_layout(grid_type), flags, compression)
        walk.topology()
        if has_offsets and block_pos != r.pos:
            raise VDBFormatError("a grid's buffers do not start where its descriptor says")
        tree_bytes = sum(len(p) for p in walk.out)
        walk.buffers()
        tree = walk.out
    if has_offsets and end_pos != r.pos:
        raise VDBFormatError("a grid does not end where its descriptor says")
    head = pack_string(name) + pack_string(grid_type) + pack_string(parent)
    body = new_flags.to_bytes(4, "little") + _rewrite_meta(entries, new_flags, walk) + transform
    new_grid = base + len(head) + 24
    new_block = new_grid + len(body) + tree_bytes if walk else 0
    new_end = new_grid + len(body) + sum(len(p) for p in tree)
    return [head, I64.pack(new_grid) + I64.pack(new_block) + I64.pack(new_end), body, *tree]


def _check_compression(compression: str) -> None:
    if compression not in ("zip", "none"):
        raise VDBForgeError(f"unknown .vdb recompression '{compression}'; use zip or none")


def recompress_bytes(data: bytes, compression: Compression) -> bytes:
    """The file `data` with every value buffer re-encoded as `compression`; raises VDBFormatError if unreadable."""
    _check_compression(compression)
    r = Reader(data)
    if r.i64() != MAGIC:
        raise VDBFormatError("not a VDB file (bad magic number)")
    version = r.u32()
    if not FIRST_VERSION <= version <= LAST_VERSION:
        raise VDBFormatError(f"VDB file format {version} is not supported (only {FIRST_VERSION}-{LAST_VERSION})")
    r.take(8)  # library major, minor
    has_offsets = bool(r.u8())
    r.take(UUID_CHARS)
    read_meta_map(r)
    grid_count = r.u32()
    if grid_count > 1 << 16:
        raise VDBFormatError(f"the file claims {grid_count} grids; it is corrupt")
    pieces = [data[: r.pos]]
    size = r.pos
    for _ in range(grid_count):
        grid = _grid(r, has_offsets, size, compression)
        pieces += grid
        size += sum(len(p) for p in grid)
    if r.pos != len(data):
        raise VDBFormatError(f"{len(data) - r.pos} unexpected bytes after the last grid")
    return b"".join(pieces)


def recompress_vdb(src: Path, dst: Path, compression: Compression) -> None:
    """Write `dst` (atomically; nothing on failure) as `src` with its value buffers re-encoded as Zip or none.

    `src` is a .vdb as OpenVDB 10-12 write it (Blender's module: Blosc); `src` and `dst` may be the same path.
    """
    _check_compression(compression)
    src, dst = Path(src), Path(dst)
    try:
        data = src.read_bytes()
        mode = stat.S_IMODE(src.stat().st_mode)
    except OSError as exc:
        raise VDBForgeError(f"cannot read '{src}': {exc.strerror or exc}") from None
    try:
        out = recompress_bytes(data, compression)
    except VDBForgeError as exc:  # VDBFormatError and BloscError: say which file
        raise VDBFormatError(f"cannot recompress '{src}': {exc}") from None
    write_bytes(dst, out)
    # A re-encoded file replaces the module's output in place of it, so it keeps the permissions that one had.
    os.chmod(dst, mode)
