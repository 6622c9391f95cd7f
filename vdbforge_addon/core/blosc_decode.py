"""Our own decoder for the Blosc1 frames OpenVDB writes (io/Compression.cc bloscToStream), so the shipped extension
needs no `blosc` package.

A Blosc1 frame (c-blosc 1.x, format version 2) is a 16-byte header

    version, versionlz, flags, typesize, nbytes (u32), blocksize (u32), cbytes (u32)

then, unless the frame is memcpyed (flags bit 1: the nbytes follow raw), one u32 start offset per block and the blocks.
Each block holds one or `typesize` splits (split only when flags bit 4 is clear, typesize <= 16, blocksize / typesize
>= 128 and it is not the shorter last block), each an u32 byte count and a stream of the codec in flags bits 5-7;
a count equal to the split's size means the bytes are stored raw. After decoding, a byte-shuffled block (flags bit 0,
typesize > 1) holds typesize planes of blocksize // typesize bytes, its last blocksize % typesize bytes unshuffled.

Only the LZ4 codec (what OpenVDB asks for) and byte shuffle are supported; anything else is refused with one line.
"""

from __future__ import annotations

import struct

import numpy as np

from .errors import VDBForgeError

HEADER = struct.Struct("<BBBBIII")
HEADER_SIZE = HEADER.size  # 16, BLOSC_MAX_OVERHEAD
DOSHUFFLE, MEMCPYED, DOBITSHUFFLE, DONT_SPLIT = 0x1, 0x2, 0x4, 0x10
LZ4_FORMAT = 1
MAX_SPLITS, MIN_BUFFERSIZE = 16, 128
_U32 = struct.Struct("<I")


class BloscError(VDBForgeError):
    """A Blosc frame this decoder cannot read (corrupt, truncated, or an unsupported codec/filter)."""


def frame_nbytes(frame: bytes | memoryview) -> int:
    """The decompressed size a frame announces."""
    if len(frame) < HEADER_SIZE:
        raise BloscError(f"blosc frame of {len(frame)} bytes is shorter than its 16-byte header")
    return HEADER.unpack_from(frame)[4]


def _extended_length(src: bytes, i: int, length: int) -> tuple[int, int]:
    """A 15 in a token's nibble continues in bytes of 255 until one is smaller; returns the length and next index."""
    while True:
        b = src[i]
        i += 1
        length += b
        if b != 255:
            return length, i


def lz4_block_decode(src: bytes, size: int) -> bytes:
    """Decode one raw LZ4 block (no frame) that must inflate to exactly `size` bytes."""
    out = bytearray()
    n = len(src)
    i = 0
    try:
        while True:
            token = src[i]
            i += 1
            lit = token >> 4
            if lit == 15:
                lit, i = _extended_length(src, i, lit)
            if lit:
                if i + lit > n:
                    raise BloscError("LZ4 literal run runs past the end of its block")
                out += src[i : i + lit]
                i += lit
            if i >= n:
                break  # the last sequence carries literals only
            offset = src[i] | (src[i + 1] << 8)
            i += 2
            length = token & 15
            if length == 15:
                length, i = _extended_length(src, i, length)
            length += 4
            start = len(out) - offset
            if offset == 0 or start < 0:
                raise BloscError(f"LZ4 match offset {offset} points before the start of the block")
            if length <= offset:
                out += out[start : start + length]
            else:
                # An overlapping match repeats the last `offset` bytes.
                pattern = out[start:]
                out += (pattern * (length // offset + 1))[:length]
            if len(out) > size:
                break
    except IndexError:
        raise BloscError("LZ4 block is truncated") from None
    if len(out) != size:
        raise BloscError(f"LZ4 block inflated to {len(out)} bytes, expected {size}")
    return bytes(out)


def _unshuffle(block: bytes, typesize: int) -> bytes:
    planes = len(block) // typesize
    body = planes * typesize
    data = np.frombuffer(block, dtype=np.uint8, count=body).reshape(typesize, planes).T.tobytes()
    return data + block[body:]


def _decode_block(frame: bytes, start: int, bsize: int, leftover: bool, flags: int, typesize: int) -> bytes:
    split = not (flags & DONT_SPLIT) and typesize <= MAX_SPLITS and bsize // typesize >= MIN_BUFFERSIZE
    nsplits = typesize if split and not leftover else 1
    neblock = bsize // nsplits
    parts = []
    pos = start
    for _ in range(nsplits):
        if pos + 4 > len(frame):
            raise BloscError("blosc split header runs past the end of the frame")
        (cbytes,) = _U32.unpack_from(frame, pos)
        pos += 4
        if pos + cbytes > len(frame):
            raise BloscError(f"blosc split of {cbytes} bytes runs past the end of the frame")
        chunk = frame[pos : pos + cbytes]
        pos += cbytes
        parts.append(chunk if cbytes == neblock else lz4_block_decode(chunk, neblock))
    block = b"".join(parts)
    if len(block) != bsize:
        # neblock * nsplits < bsize would mean a block size that is not a multiple of typesize
        raise BloscError(f"blosc block decoded to {len(block)} bytes, expected {bsize}")
    if flags & DOSHUFFLE and typesize > 1:
        block = _unshuffle(block, typesize)
    return block


def blosc_decompress(frame: bytes | memoryview) -> bytes:
    """Decompress one Blosc1 frame (LZ4, with or without byte shuffle and splits)."""
    frame = bytes(frame)
    if len(frame) < HEADER_SIZE:
        raise BloscError(f"blosc frame of {len(frame)} bytes is shorter than its 16-byte header")
    version, _versionlz, flags, typesize, nbytes, blocksize, cbytes = HEADER.unpack_from(frame)
    if version not in (1, 2) or cbytes != len(frame):
        raise BloscError(f"not a Blosc1 frame (version {version}, {cbytes} bytes announced, {len(frame)} present)")
    if flags & MEMCPYED:
        if HEADER_SIZE + nbytes > len(frame):
            raise BloscError("memcpyed blosc frame is shorter than the size it announces")
        return frame[HEADER_SIZE : HEADER_SIZE + nbytes]
    if flags & DOBITSHUFFLE:
        raise BloscError("blosc bit-shuffle is not supported (OpenVDB writes byte-shuffled frames)")
    if flags >> 5 != LZ4_FORMAT:
        raise BloscError(f"blosc codec {flags >> 5} is not supported (OpenVDB writes LZ4)")
    if nbytes == 0:
        return b""
    if blocksize == 0 or typesize == 0:
        raise BloscError("blosc frame has a zero block size or type size")
    nblocks, leftover = divmod(nbytes, blocksize)
    nblocks += 1 if leftover else 0
    if HEADER_SIZE + 4 * nblocks > len(frame):
        raise BloscError("blosc block table runs past the end of the frame")
    starts = struct.unpack_from(f"<{nblocks}I", frame, HEADER_SIZE)
    blocks = []
    for j, start in enumerate(starts):
        last = j == nblocks - 1 and leftover > 0
        blocks.append(_decode_block(frame, start, leftover if last else blocksize, last, flags, typesize))
    return b"".join(blocks)
