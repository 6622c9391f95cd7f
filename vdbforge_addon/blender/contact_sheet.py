"""Tile preview PNGs into one contact sheet with Blender's image API (works headless, no extra packages)."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np


def _pixels(path: str) -> np.ndarray:
    image = bpy.data.images.load(path, check_existing=False)
    try:
        width, height = image.size
        buffer = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(buffer)
        return buffer.reshape(height, width, 4)  # rows bottom-up, as Blender stores them
    finally:
        bpy.data.images.remove(image)


def write_contact_sheet(paths: list[str], out_path: Path, columns: int) -> Path:
    tiles = [_pixels(p) for p in paths]
    h, w = tiles[0].shape[:2]
    rows = -(-len(tiles) // columns)
    sheet = np.zeros((rows * h, columns * w, 4), dtype=np.float32)
    sheet[..., 3] = 1.0
    for i, tile in enumerate(tiles):
        r, c = divmod(i, columns)
        top = (rows - 1 - r) * h  # bottom-up storage: the first row of tiles goes at the top of the picture
        sheet[top : top + tile.shape[0], c * w : c * w + tile.shape[1]] = tile[:h, :w]
    image = bpy.data.images.new("VDBForge_ContactSheet", columns * w, rows * h, alpha=False)
    try:
        image.pixels.foreach_set(sheet.ravel())
        image.filepath_raw = str(out_path)
        image.file_format = "PNG"
        image.save()
    finally:
        bpy.data.images.remove(image)
    return out_path
