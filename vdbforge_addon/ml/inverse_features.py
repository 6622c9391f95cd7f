"""What the image → parameters models see of a picture: the subject cropped as the scorer crops it, plus a few numbers
the crop throws away (where the subject sits, how big it is, its colours).

Every image, a dataset preview or a user's reference, goes through `ml/images.prepare` with the dataset's aspect,
working width and background colour, so a reference of any size compares like a preview. The crop is the scorer's
square window around the subject (`subject_box` → `square_window` → `crop_rgb`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core import dataset_format as fmt
from ..core.errors import VDBForgeError
from .images import border_color, crop_rgb, load_rgba, prepare, square_window, subject_box

CROP = 64  # the CNN's input side
THUMB = 16  # the atlas's thumbnail side
QUANTILES = (0.1, 0.5, 0.9)


@dataclass(frozen=True)
class FeatureSpec:
    aspect: float
    width: int
    background: tuple[float, float, float]
    crop: int = CROP

    def to_dict(self) -> dict:
        return {"aspect": self.aspect, "width": self.width, "background": list(self.background), "crop": self.crop}

    @classmethod
    def from_dict(cls, data: dict) -> FeatureSpec:
        return cls(
            float(data["aspect"]), int(data["width"]), tuple(float(v) for v in data["background"]), int(data["crop"])
        )


@dataclass
class ImageFeatures:
    crop: np.ndarray  # float32 crop×crop×3 in [0, 1]
    extra: np.ndarray  # float32: subject geometry and colour statistics


def subject_features(path: str | Path, spec: FeatureSpec, role: str = "image") -> ImageFeatures:
    image = prepare(path, spec.aspect, spec.width, role, spec.background)
    h, w = image.mask.shape
    box = subject_box(image.mask)
    window = square_window(box, (h, w))
    crop = crop_rgb(image.rgb, window, spec.crop)
    x0, y0, x1, y1 = box if box is not None else (0, 0, 0, 0)
    geometry = [x0 / w, y0 / h, x1 / w, y1 / h, float(image.mask.mean()), (window[2] - window[0]) / min(h, w)]
    pixels = image.rgb[image.mask] if image.mask.any() else image.rgb.reshape(-1, 3)
    colour = [*pixels.mean(axis=0), *pixels.std(axis=0), *np.quantile(pixels, QUANTILES, axis=0).reshape(-1)]
    return ImageFeatures(crop.astype(np.float32), np.asarray(geometry + colour, dtype=np.float32))


def atlas_vector(features: ImageFeatures) -> np.ndarray:
    """The nearest-neighbour atlas's raw vector: a thumbnail of the crop, then the extra numbers."""
    from PIL import Image

    pixels = np.clip(features.crop * 255.0 + 0.5, 0, 255).astype(np.uint8)
    thumb = np.asarray(Image.fromarray(pixels).resize((THUMB, THUMB), Image.Resampling.BOX), dtype=np.float32) / 255.0
    return np.concatenate([thumb.reshape(-1), features.extra])


def atlas_blocks(extra_size: int, backbone_size: int = 0) -> list[int]:
    """Sizes of the vector's blocks; each block gets the same total weight in the atlas's distance."""
    blocks = [THUMB * THUMB * 3, 6, extra_size - 6]
    return blocks + ([backbone_size] if backbone_size else [])


def backbone_features(crops: np.ndarray) -> np.ndarray:
    """LPIPS-alex backbone activations of crops (N×S×S×3), channel-normalised and average-pooled per layer, as the
    LPIPS metric sees them. Needs the alexnet weights (`vdbforge models`); raises ModelWeightsMissing without them."""
    import torch

    from .networks import lpips_model

    net = lpips_model("alex").net
    out = []
    with torch.no_grad():
        for start in range(0, len(crops), 64):
            x = torch.from_numpy(crops[start : start + 64]).permute(0, 3, 1, 2).contiguous() * 2.0 - 1.0
            layers = net(x)
            pooled = [(f / f.norm(dim=1, keepdim=True).clamp_min(1e-10)).mean(dim=(2, 3)) for f in layers]
            out.append(torch.cat(pooled, dim=1).numpy())
    return np.concatenate(out).astype(np.float32)


@dataclass
class Examples:
    """Every preview of a dataset's finished samples, one row per image; `groups` names each image's sample."""

    info: dict
    spec: FeatureSpec
    crops: np.ndarray
    extra: np.ndarray
    atlas: np.ndarray
    targets: np.ndarray
    groups: np.ndarray
    paths: list[str]


def dataset_spec(folder: Path, info: dict, first_previews: list[Path]) -> FeatureSpec:
    settings = info["settings"]
    background = np.median([border_color(load_rgba(p, "preview")) for p in first_previews[:32]], axis=0)
    return FeatureSpec(
        settings["preview_width"] / settings["preview_height"],
        int(settings["preview_width"]),
        tuple(float(v) for v in background),
    )


def load_examples(folder: str | Path, min_samples: int = 4) -> Examples:
    folder = Path(folder)
    info = fmt.load_dataset(folder)
    records = [r for i, r in sorted(fmt.read_index(folder).items()) if r["status"] == "ok"]
    records = [r for r in records if (fmt.sample_dir(folder, r["index"]) / fmt.DONE_MARKER).is_file()]
    if len(records) < min_samples:
        raise VDBForgeError(
            f"{folder} has {len(records)} finished samples; training needs at least {min_samples} (run vdbforge dataset)"
        )
    images = [(r, folder / p["path"]) for r in records for p in r["previews"]]
    spec = dataset_spec(folder, info, [path for _, path in images])
    feats = [subject_features(path, spec, "preview") for _, path in images]
    return Examples(
        info=info,
        spec=spec,
        crops=np.stack([f.crop for f in feats]),
        extra=np.stack([f.extra for f in feats]),
        atlas=np.stack([atlas_vector(f) for f in feats]),
        targets=np.asarray([r["x_sim"] + r["x_render"] for r, _ in images], dtype=np.float32),
        groups=np.asarray([r["index"] for r, _ in images]),
        paths=[str(path) for _, path in images],
    )
