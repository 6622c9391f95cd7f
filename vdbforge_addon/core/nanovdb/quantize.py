"""Fp4 / Fp8 / Fp16 / FpN leaf quantization, bit-compatible with nanovdb::OpenToNanoVDB (32.4).

Each leaf stores minimum = min of all 512 values (active or not) and quantum = (max - min) / (2^bits - 1); a voxel
decodes as code * quantum + minimum in float32. Codes are floor(encode * (v - min) + d) with d = 0.5 (round to
nearest) or the 8^3 dither pattern of util/DitherLUT.h. The arithmetic is done in float32 (float64 for 16 bits)
exactly as the C++ converter does it, so codes match the official ones bit for bit.
FpN picks per leaf the smallest of 1, 2, 4, 8 bits whose worst absolute error is within the tolerance, else 16 bits.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

F32 = np.float32


@dataclass
class Quantized:
    minimum: np.ndarray  # (N,) float32
    quantum: np.ndarray  # (N,) float32
    log2_bits: np.ndarray  # (N,) uint8: 0..4 for 1..16 bits
    codes: list[tuple[np.ndarray, np.ndarray]]  # per bit width: (leaf indices, packed bytes (n, 64 * bits))
    decoded: np.ndarray  # (N, 512) float32, what a reader returns


@lru_cache(maxsize=1)
def dither_lut() -> np.ndarray:
    """The 512 dither thresholds of nanovdb::DitherLUT, regenerated from the algorithm quoted in DitherLUT.h.

    The header holds the pattern printed with 6 significant digits, so values are rounded the same way before the
    float32 conversion; the test suite compares the result against the header's table."""
    pattern = np.zeros(512, np.float32)
    offsets = (0, 4, 6, 2, 5, 1, 3, 7)
    scale = F32(0.125)

    def wang(key: int) -> int:
        m = 0xFFFFFFFF
        key &= m
        key = (key + (~(key << 16) & m)) & m
        key ^= key >> 5
        key = (key + (key << 3)) & m
        key ^= key >> 13
        key = (key + (~(key << 9) & m)) & m
        key ^= key >> 17
        return key

    def recurse(offset: np.float32, x: int, y: int, z: int, res: int) -> None:
        key = (((z << res) + y) << res) + x
        if res == 3:
            pattern[key] = offset
            return
        key = wang(key) & 7
        offset = F32(offset * scale)
        for i in range(8):
            recurse(F32(offset + F32(offsets[i ^ key]) * scale), 2 * x + (i & 1), 2 * y + ((i & 2) >> 1),
                    2 * z + ((i & 4) >> 2), res + 1)  # fmt: skip

    recurse(F32(1.0), 0, 0, 0, 0)
    pattern = (pattern * F32(512 / F32(513.0))).astype(np.float32)
    return np.array([float(f"{float(v):.6g}") for v in pattern], dtype=np.float32)


def _offsets(dither: bool) -> np.ndarray:
    return dither_lut() if dither else np.full(512, 0.5, np.float32)


def _extrema(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return values.min(axis=1), values.max(axis=1)


def _codes_f32(values: np.ndarray, vmin: np.ndarray, vmax: np.ndarray, levels: int, lut: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        encode = F32(levels) / (vmax - vmin)
        x = encode[:, None] * (values - vmin[:, None]) + lut
    x[~np.isfinite(x)] = 0  # a constant leaf has quantum 0: any code decodes to its minimum
    return x.astype(np.uint32)


def _codes_f64(values: np.ndarray, vmin: np.ndarray, vmax: np.ndarray, levels: int, lut: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        encode = np.float64(levels) / (vmax - vmin).astype(np.float64)
        x = encode[:, None] * (values - vmin[:, None]).astype(np.float64) + lut.astype(np.float64)
    x[~np.isfinite(x)] = 0
    return x.astype(np.uint32)


def _decode(codes: np.ndarray, vmin: np.ndarray, quantum: np.ndarray) -> np.ndarray:
    return codes.astype(np.float32) * quantum[:, None] + vmin[:, None]


def _quantum(vmin: np.ndarray, vmax: np.ndarray, bits: np.ndarray | int) -> np.ndarray:
    levels = (np.left_shift(1, bits) - 1).astype(np.float32)
    return ((vmax - vmin) / levels).astype(np.float32)


def pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Pack (n, 512) codes little-endian into (n, 64 * bits) bytes, as the readers' shifts expect."""
    n = len(codes)
    if bits == 16:
        return codes.astype("<u2").view(np.uint8).reshape(n, 1024)
    if bits == 8:
        return codes.astype(np.uint8)
    per = 8 // bits
    c = codes.astype(np.uint8).reshape(n, 512 // per, per)
    out = np.zeros((n, 512 // per), np.uint8)
    for k in range(per):
        out |= c[:, :, k] << np.uint8(k * bits)
    return out


def quantize_fixed(values: np.ndarray, bits: int, dither: bool = False) -> Quantized:
    """Fp4 / Fp8 / Fp16 leaves (OpenToNanoVDB::processLeafs<Fp4, Fp8, Fp16>)."""
    vmin, vmax = _extrema(values)
    lut = _offsets(dither)
    levels = (1 << bits) - 1
    codes = (_codes_f64 if bits == 16 else _codes_f32)(values, vmin, vmax, levels, lut)
    quantum = _quantum(vmin, vmax, bits)
    log2 = {4: 2, 8: 3, 16: 4}[bits]
    n = len(values)
    return Quantized(
        minimum=vmin,
        quantum=quantum,
        log2_bits=np.full(n, log2, np.uint8),
        codes=[(np.arange(n), pack(codes, bits))],
        decoded=_decode(codes, vmin, quantum),
    )


def quantize_fpn(values: np.ndarray, tolerance: float, dither: bool = False) -> Quantized:
    """FpN leaves: smallest bit width passing nanovdb::AbsDiff (|exact - approx| <= tolerance) on all 512 values."""
    n = len(values)
    vmin, vmax = _extrema(values)
    lut = _offsets(dither)
    tol = F32(tolerance)
    rng = (vmax - vmin).astype(np.float32)
    log2 = np.full(n, 4, np.uint8)
    log2[rng <= 0] = 0  # the oracle loop never runs for a constant leaf
    decoded = np.empty_like(values)
    groups: list[tuple[np.ndarray, np.ndarray]] = []
    todo = np.flatnonzero(rng > 0)
    for lb in range(4):
        if len(todo) == 0:
            break
        levels = (1 << (1 << lb)) - 1
        v, lo, hi = values[todo], vmin[todo], vmax[todo]
        codes = _codes_f32(v, lo, hi, levels, lut)
        with np.errstate(divide="ignore", invalid="ignore"):
            decode = (hi - lo) / F32(levels)
        approx = codes.astype(np.float32) * decode[:, None] + lo[:, None]
        ok = np.all(np.abs(v - approx) <= tol, axis=1)
        sel = todo[ok]
        log2[sel] = lb
        todo = todo[~ok]
    for lb in range(5):
        idx = np.flatnonzero(log2 == lb)
        if len(idx) == 0:
            continue
        bits = 1 << lb
        levels = (1 << bits) - 1
        v, lo, hi = values[idx], vmin[idx], vmax[idx]
        codes = (_codes_f64 if bits == 16 else _codes_f32)(v, lo, hi, levels, lut)
        decoded[idx] = _decode(codes, lo, _quantum(lo, hi, bits))
        groups.append((idx, pack(codes, bits)))
    return Quantized(
        minimum=vmin,
        quantum=_quantum(vmin, vmax, np.left_shift(1, log2.astype(np.int64))),
        log2_bits=log2,
        codes=groups,
        decoded=decoded,
    )


def quantize_stat(x: np.ndarray, minimum: np.ndarray, quantum: np.ndarray, offset: bool) -> np.ndarray:
    """LeafFnBase::setMin/setMax/setAvg (offset=True) and setDev (offset=False): uint16((x - min) / quantum + 0.5f)."""
    x = x.astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        q = ((x - minimum) if offset else x) / quantum + F32(0.5)
    q[~np.isfinite(q) | (quantum == 0)] = 0
    return q.astype(np.uint32).astype(np.uint16)
