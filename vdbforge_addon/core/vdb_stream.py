"""The byte layout of an OpenVDB file around the trees, as OpenVDB writes it (io/Archive.cc, io/GridDescriptor.cc,
MetaMap, math/Maps.h), for vdb_recompress.py: a bounds-checked reader, metadata maps, transforms, value types and
the `file_delayed_load` metadata that OpenVDB 6.1-12 readers use to seek over leaf buffers.

Everything is little-endian. Strings are an u32 length and the bytes. A metadata map is an u32 count, then per entry
its name, its type name, an u32 byte size and the value. A transform is its map type name and the map's doubles.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from .blosc_decode import blosc_decompress
from .errors import VDBForgeError

COMPRESS_NONE, COMPRESS_ZIP, COMPRESS_ACTIVE_MASK, COMPRESS_BLOSC = 0, 0x1, 0x2, 0x4
MAGIC = 0x56444220
# 222 (NODE_MASK_COMPRESSION) put compression flags in each grid; 224 is what OpenVDB 10-12 (Blender's) write.
FIRST_VERSION, LAST_VERSION = 222, 224
UUID_CHARS = 36

# Bytes after each map's type name (Maps.h read()): Vec3d members, or a Mat4d.
MAP_BYTES = {
    "AffineMap": 128,
    "UnitaryMap": 128,
    "ScaleMap": 5 * 24,
    "UniformScaleMap": 5 * 24,
    "TranslationMap": 24,
    "ScaleTranslateMap": 6 * 24,
    "UniformScaleTranslateMap": 6 * 24,
}
FRUSTUM = "NonlinearFrustumMap"  # BBoxd, taper, depth, then a nested map

# Value bytes in memory, and per value when saved as half (None: not a floating-point type, never halved).
VALUE_TYPES: dict[str, tuple[int, int | None]] = {
    "float": (4, 2),
    "double": (8, 2),
    "vec2s": (8, 4),
    "vec2d": (16, 4),
    "vec3s": (12, 6),
    "vec3d": (24, 6),
    "int32": (4, None),
    "int64": (8, None),
    "uint32": (4, None),
    "vec2i": (8, None),
    "vec3i": (12, None),
    "bool": (1, None),
}
TREE_TYPE = re.compile(r"^Tree_([a-z0-9]+)((?:_\d+)+)$")
HALF_SUFFIX = "_HalfFloat"

DELAYED_LOAD = "file_delayed_load"
DELAYED_LOAD_TYPE = "__delayedload"
NO_SIZES = 0xFFFFFFFF  # DelayedLoadMetadata: no compressed sizes stored


class VDBFormatError(VDBForgeError):
    """The bytes are not a VDB file this transcoder can read (corrupt, truncated or unsupported)."""


class Reader:
    """Sequential, bounds-checked reads from one file's bytes; every overrun is a one-line VDBFormatError."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if n < 0 or end > len(self.buf):
            raise VDBFormatError(f"truncated: needs {n} bytes at offset {self.pos}, the file has {len(self.buf)}")
        out = self.buf[self.pos : end]
        self.pos = end
        return out

    def unpack(self, fmt: struct.Struct) -> tuple:
        return fmt.unpack(self.take(fmt.size))

    def u8(self) -> int:
        return self.take(1)[0]

    def u32(self) -> int:
        return U32.unpack(self.take(4))[0]

    def i64(self) -> int:
        return I64.unpack(self.take(8))[0]

    def string(self, what: str, limit: int = 1 << 20) -> bytes:
        n = self.u32()
        if n > limit:
            raise VDBFormatError(f"{what} claims {n} bytes; the file is corrupt")
        return self.take(n)


U32 = struct.Struct("<I")
I64 = struct.Struct("<q")


def pack_string(value: bytes) -> bytes:
    return U32.pack(len(value)) + value


@dataclass
class MetaEntry:
    name: bytes
    type_name: bytes
    value: bytes

    def encode(self) -> bytes:
        return pack_string(self.name) + pack_string(self.type_name) + U32.pack(len(self.value)) + self.value


def read_meta_map(r: Reader) -> list[MetaEntry]:
    count = r.u32()
    if count > 1 << 16:
        raise VDBFormatError(f"a metadata map claims {count} entries; the file is corrupt")
    out = []
    for _ in range(count):
        name = r.string("a metadata name")
        type_name = r.string("a metadata type name")
        out.append(MetaEntry(name, type_name, r.take(r.u32())))
    return out


def encode_meta_map(entries: list[MetaEntry]) -> bytes:
    return U32.pack(len(entries)) + b"".join(e.encode() for e in entries)


def read_transform(r: Reader) -> bytes:
    """The transform's bytes, copied as they are (a frustum nests its second map)."""
    start = r.pos
    map_type = r.string("a transform map type").decode("latin-1")
    if map_type == FRUSTUM:
        r.take(48 + 16)
        map_type = r.string("a frustum's second map type").decode("latin-1")
    if map_type not in MAP_BYTES:
        raise VDBFormatError(f"unknown transform map type '{map_type[:60]}'")
    r.take(MAP_BYTES[map_type])
    return r.buf[start : r.pos]


@dataclass(frozen=True)
class TreeLayout:
    """What the tree walk needs from a grid type such as `Tree_float_5_4_3_HalfFloat`."""

    value_type: str
    log2dims: tuple[int, ...]  # internal nodes from the root down, then the leaf
    value_bytes: int
    half: bool

    @property
    def stored_bytes(self) -> int:
        """Bytes per value in the value buffers (halves for floating-point types saved as half)."""
        half_bytes = VALUE_TYPES[self.value_type][1]
        return half_bytes if self.half and half_bytes else self.value_bytes

    @property
    def skips_empty(self) -> bool:
        """io::HalfWriter writes nothing at all (not even a size) for a buffer of zero halves."""
        return self.half and VALUE_TYPES[self.value_type][1] is not None


def tree_layout(grid_type: bytes) -> TreeLayout:
    name = grid_type.decode("latin-1")
    half = name.endswith(HALF_SUFFIX)
    base = name[: -len(HALF_SUFFIX)] if half else name
    match = TREE_TYPE.match(base)
    if not match or match.group(1) not in VALUE_TYPES:
        raise VDBFormatError(f"grid type '{name[:80]}' is not supported (points, masks and strings are not)")
    dims = tuple(int(d) for d in match.group(2).strip("_").split("_"))
    if len(dims) < 2 or not all(1 <= d <= 7 for d in dims):
        raise VDBFormatError(f"grid type '{name[:80]}' has an unsupported node layout")
    return TreeLayout(match.group(1), dims, VALUE_TYPES[match.group(1)][0], half)


def compression_name(flags: int) -> bytes:
    """io::compressionToString: what OpenVDB records in a grid's `file_compression` metadata."""
    if flags == COMPRESS_NONE:
        return b"none"
    parts = [
        label
        for bit, label in ((COMPRESS_ZIP, "zip"), (COMPRESS_BLOSC, "blosc"), (COMPRESS_ACTIVE_MASK, "active values"))
        if flags & bit
    ]
    return " + ".join(parts).encode()


def _delayed_array(r: Reader, count: int, item: int) -> bytes:
    nbytes = r.u32()
    if nbytes == 0:
        return r.take(count * item)
    raw = blosc_decompress(r.take(nbytes))
    if len(raw) < count * item:
        raise VDBFormatError("the file_delayed_load metadata is shorter than its leaf count")
    return raw[: count * item]


def read_delayed_load(value: bytes) -> tuple[bytes, bytes | None]:
    """DelayedLoadMetadata: one mask-compression byte per leaf, and (for compressed grids) each leaf's value-buffer
    size in the file, int64 each; the arrays are stored raw (size 0) or as Blosc frames."""
    if not value:
        return b"", None
    r = Reader(value)
    count = r.u32()
    masks = _delayed_array(r, count, 1)
    if r.pos + 4 <= len(value) and U32.unpack_from(value, r.pos)[0] == NO_SIZES:
        return masks, None
    return masks, _delayed_array(r, count, 8)


def encode_delayed_load(masks: bytes, sizes: list[int] | None) -> bytes:
    """Stored raw (a zero size before each array), which every reader of this metadata accepts."""
    out = U32.pack(len(masks)) + U32.pack(0) + masks
    if sizes is None:
        return out + U32.pack(NO_SIZES)
    return out + U32.pack(0) + struct.pack(f"<{len(sizes)}q", *sizes)
