"""Volume-like test pictures: a noisy emissive plume, the same shifted or recoloured, and a flat fog bank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

SIZE = 256
BACKGROUND = np.array([0.02, 0.02, 0.03])


def _noise(seed: int, sigma: float) -> np.ndarray:
    field = gaussian_filter(np.random.default_rng(seed).random((SIZE, SIZE)), sigma)
    return (field - field.min()) / (np.ptp(field) or 1.0)


def plume(color=(1.0, 0.45, 0.1), shift: int = 0, seed: int = 1) -> np.ndarray:
    """A rising, turbulent column: narrow at the bottom, wide at the top."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) / SIZE
    width = 0.06 + 0.16 * (1.0 - y)  # image y grows downward
    envelope = np.exp(-(((x - 0.5) / width) ** 2)) * np.clip((0.92 - y) * 4, 0, 1) * np.clip(y * 6, 0, 1)
    density = np.clip(envelope * (0.4 + 0.9 * _noise(seed, 4)), 0, 1)
    rgb = BACKGROUND + density[..., None] * (np.asarray(color) - BACKGROUND)
    return np.roll(_to_uint8(rgb), shift, axis=1)


def fog_bank(seed: int = 2) -> np.ndarray:
    """Low, wide, grey layers: a different family from the plume."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64) / SIZE
    envelope = np.exp(-(((y - 0.8) / 0.1) ** 2)) * np.clip((0.97 - abs(x - 0.5) * 2) * 5, 0, 1)
    density = np.clip(envelope * (0.5 + 0.7 * _noise(seed, 8)), 0, 1)
    return _to_uint8(BACKGROUND + density[..., None] * (np.array([0.7, 0.72, 0.75]) - BACKGROUND))


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def save(array: np.ndarray, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path
