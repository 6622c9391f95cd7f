"""A reference image's fingerprint (a short list of floats) and a similarity in [0, 1] between two fingerprints.

The technique memory keys warm starts on "what the reference looked like": a later run against a similar-looking
reference should start where earlier good fits ended. The fingerprint is taken on the subject (what differs from
the border colour, or the opaque part with real alpha), so framing and image size matter little:

- a 16×16 greyscale thumbnail of a square window around the subject (its shape and internal structure),
- a coarse per-channel colour histogram of the subject pixels (8 bins × RGB),
- the subject's geometry: extent and centre as fractions of the image, its aspect (log) and its coverage.

Pure numpy + PIL (through ml/images.py, which imports no torch), so the memory works without the ML extras.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..ml.images import composite, crop_rgb, load_rgba, resize, square_window, subject_box, subject_mask
from .errors import VDBForgeError

FINGERPRINT_VERSION = 1.0
THUMB = 16
BINS = 8
_GEOMETRY = 6  # width, height, centre x, centre y, log aspect, coverage
LENGTH = 1 + THUMB * THUMB + 3 * BINS + _GEOMETRY

# Shares of the similarity: shape dominates, colour next, geometry (where and how large) last, so a shifted copy
# of a picture stays much closer to it than a different picture does.
WEIGHTS = {"thumbnail": 0.45, "colour": 0.35, "geometry": 0.20}
WORK_SIZE = 512  # longest side the fingerprint is taken at: a 16×16 thumbnail needs no more, big photos cost less


def image_fingerprint(path: str | Path) -> list[float]:
    """The fingerprint of an image file; unreadable files raise a one-line VDBForgeError naming the file."""
    rgba = load_rgba(path, "reference")
    return fingerprint_array(rgba)


def fingerprint_array(rgba: np.ndarray) -> list[float]:
    """The fingerprint of a uint8 H×W×4 image (see the module docstring for the layout)."""
    h, w = rgba.shape[:2]
    if max(h, w) > WORK_SIZE:
        scale = WORK_SIZE / max(h, w)
        w, h = max(1, round(w * scale)), max(1, round(h * scale))
        rgba = resize(rgba, w, h)
    mask = subject_mask(rgba)
    box = subject_box(mask)
    rgb = composite(rgba, (0.0, 0.0, 0.0))
    window = square_window(box, (h, w), margin=0.1)
    thumb = crop_rgb(rgb, window, THUMB) @ np.array([0.2126, 0.7152, 0.0722], dtype=np.float32)

    pixels = rgb[mask] if mask.any() else rgb.reshape(-1, 3)
    hist = [np.histogram(pixels[:, c], bins=BINS, range=(0.0, 1.0))[0] for c in range(3)]
    hist = np.concatenate([counts / max(1, counts.sum()) for counts in hist])

    x0, y0, x1, y1 = box if box is not None else (0, 0, w, h)
    geometry = [
        (x1 - x0) / w,
        (y1 - y0) / h,
        (x0 + x1) / (2.0 * w),
        (y0 + y1) / (2.0 * h),
        math.log((x1 - x0) / (y1 - y0)),
        float(mask.mean()),
    ]
    values = [FINGERPRINT_VERSION, *thumb.ravel().tolist(), *hist.tolist(), *geometry]
    return [round(float(v), 5) for v in values]


def compatible(a: list[float] | None, b: list[float] | None) -> bool:
    """Both present and of this fingerprint version (older formats are not compared, only ignored)."""
    return bool(a) and bool(b) and len(a) == len(b) == LENGTH and a[0] == b[0] == FINGERPRINT_VERSION


def similarity(a: list[float], b: list[float]) -> float:
    """1.0 for identical fingerprints, towards 0 for unrelated pictures."""
    if not compatible(a, b):
        raise VDBForgeError("cannot compare image fingerprints of different formats")
    fa, fb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    parts = {
        "thumbnail": _thumbnail_similarity(fa[1 : 1 + THUMB * THUMB], fb[1 : 1 + THUMB * THUMB]),
        "colour": _histogram_similarity(_hist(fa), _hist(fb)),
        "geometry": _geometry_similarity(fa[-_GEOMETRY:], fb[-_GEOMETRY:]),
    }
    total = sum(WEIGHTS[name] * value for name, value in parts.items())
    return float(min(1.0, max(0.0, total)))


def _hist(f: np.ndarray) -> np.ndarray:
    start = 1 + THUMB * THUMB
    return f[start : start + 3 * BINS].reshape(3, BINS)


def _thumbnail_similarity(a: np.ndarray, b: np.ndarray) -> float:
    # Correlation compares structure independent of exposure (the histogram judges tone); a flat thumbnail has no
    # structure to correlate, so fall back to how close the two levels are.
    sa, sb = a.std(), b.std()
    if sa < 1e-4 or sb < 1e-4:
        return float(max(0.0, 1.0 - np.abs(a - b).mean() * 4.0))
    r = float(((a - a.mean()) * (b - b.mean())).mean() / (sa * sb))
    return max(0.0, r)


def _histogram_similarity(a: np.ndarray, b: np.ndarray) -> float:
    # Intersection of each channel's normalised histogram, averaged over channels.
    return float(np.minimum(a, b).sum(axis=1).mean())


def _geometry_similarity(a: np.ndarray, b: np.ndarray) -> float:
    extent = 1.0 - min(1.0, abs(a[0] - b[0]) + abs(a[1] - b[1]))
    centre = 1.0 - min(1.0, math.hypot(a[2] - b[2], a[3] - b[3]) * 2.0)
    aspect = math.exp(-abs(a[4] - b[4]))
    coverage = 1.0 - min(1.0, abs(a[5] - b[5]) * 2.0)
    return 0.3 * extent + 0.3 * centre + 0.2 * aspect + 0.2 * coverage
