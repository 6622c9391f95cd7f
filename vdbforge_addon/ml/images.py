"""Images as the scorer sees them: loaded, cropped to one aspect, composited, and reduced to a subject mask.

Every image (render or reference) goes through the same steps, so references of any size or aspect compare
consistently: centre-crop to the renders' aspect, resize to the working width, composite any alpha over the
renders' background colour (so a cut-out reference sits on the same backdrop as the candidate). The subject is what differs from the image's border colour (or, with real alpha, what is opaque);
volume renders are mostly background, so pixel metrics compare inside the subjects' box, not the whole frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.errors import VDBForgeError

SUBJECT_THRESHOLD = 0.06  # colour distance from the border that counts as subject (fraction of full range)
ALPHA_THRESHOLD = 0.05


@dataclass
class ScoredImage:
    path: Path
    rgb: np.ndarray  # float32 H×W×3 in [0, 1], composited over the background
    mask: np.ndarray  # bool H×W, the subject


def load_rgba(path: str | Path, role: str = "image") -> np.ndarray:
    """uint8 H×W×4. Missing or unreadable files raise a one-line VDBForgeError naming the file."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise VDBForgeError(f"{role} not found: {path}")
    try:
        with Image.open(path) as image:
            image.load()
            if image.mode in ("I;16", "I;16B", "I"):
                # 16-bit greyscale: scale to 8 bits before RGBA conversion, which would clip it.
                array = np.asarray(image, dtype=np.float32)
                peak = 65535.0 if array.max() > 255 else 255.0
                grey = np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
                return np.dstack([grey, grey, grey, np.full_like(grey, 255)])
            return np.asarray(image.convert("RGBA"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else "corrupt file"
        raise VDBForgeError(f"cannot read {role} {path}: {reason}") from exc


def crop_to_aspect(rgba: np.ndarray, aspect: float) -> np.ndarray:
    """Centre crop to width/height == aspect (the largest such window)."""
    h, w = rgba.shape[:2]
    if w / h > aspect:
        new_w = max(1, round(h * aspect))
        x0 = (w - new_w) // 2
        return rgba[:, x0 : x0 + new_w]
    new_h = max(1, round(w / aspect))
    y0 = (h - new_h) // 2
    return rgba[y0 : y0 + new_h]


def resize(rgba: np.ndarray, width: int, height: int) -> np.ndarray:
    from PIL import Image

    if rgba.shape[1] == width and rgba.shape[0] == height:
        return rgba
    return np.asarray(Image.fromarray(rgba).resize((width, height), Image.Resampling.LANCZOS))


def border_color(rgba: np.ndarray) -> tuple[float, float, float]:
    """The median colour of the outermost pixels: the background of a volume render."""
    rgb = rgba[..., :3].astype(np.float32) / 255.0
    border = np.concatenate([rgb[0], rgb[-1], rgb[:, 0], rgb[:, -1]])
    return tuple(float(v) for v in np.median(border, axis=0))


def subject_mask(rgba: np.ndarray) -> np.ndarray:
    """Opaque pixels when the image has real alpha; otherwise pixels that differ from the median border colour."""
    alpha = rgba[..., 3].astype(np.float32) / 255.0
    if alpha.min() < 0.99:
        return alpha > ALPHA_THRESHOLD
    rgb = rgba[..., :3].astype(np.float32) / 255.0
    return np.abs(rgb - np.asarray(border_color(rgba))).max(axis=2) > SUBJECT_THRESHOLD


def composite(rgba: np.ndarray, background: tuple[float, float, float]) -> np.ndarray:
    rgb = rgba[..., :3].astype(np.float32) / 255.0
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    return rgb * alpha + np.asarray(background, dtype=np.float32) * (1.0 - alpha)


def prepare(
    path: str | Path,
    aspect: float,
    width: int,
    role: str = "image",
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> ScoredImage:
    rgba = crop_to_aspect(load_rgba(path, role), aspect)
    rgba = resize(rgba, width, max(1, round(width / aspect)))
    return ScoredImage(Path(path), composite(rgba, background), subject_mask(rgba))


def subject_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), exclusive ends, or None for an empty mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def square_window(box: tuple[int, int, int, int] | None, shape: tuple[int, int], margin: float = 0.1) -> tuple:
    """A square (when it fits) around the box, widened by `margin`, kept inside the image; the whole image if None."""
    h, w = shape
    if box is None:
        return 0, 0, w, h
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
    side = int(min(max(side, 16), w, h))
    cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
    left = int(round(min(max(cx - side / 2.0, 0), w - side)))
    top = int(round(min(max(cy - side / 2.0, 0), h - side)))
    return left, top, left + side, top + side


def union_box(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int] | None:
    return subject_box(a | b)


def crop_rgb(rgb: np.ndarray, window: tuple[int, int, int, int], size: int) -> np.ndarray:
    from PIL import Image

    x0, y0, x1, y1 = window
    patch = np.clip(rgb[y0:y1, x0:x1] * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if patch.shape[0] != size or patch.shape[1] != size:
        patch = np.asarray(Image.fromarray(patch).resize((size, size), Image.Resampling.BILINEAR))
    return patch.astype(np.float32) / 255.0
