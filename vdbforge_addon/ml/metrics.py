"""Image similarity metrics, each a similarity in [0, 1] where 1 means identical (docs/SCORING.md has the table).

All metrics work on batches: every render against every reference in one pass through each network. Pixel and
network metrics compare the pair inside the union of both subjects' boxes (a square window, resized to `crop`);
CLIP embeds every image inside one window around all subjects; colour and silhouette use the whole frame. The colour
distribution ignores where the colours are (a shifted copy scores 1), by design.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import numpy as np

from ..core.errors import VDBForgeError
from .images import ScoredImage, crop_rgb, square_window, subject_box, union_box

PAIR_METRICS = ("lpips_alex", "lpips_vgg", "clip", "ssim", "ms_ssim", "color", "silhouette")
TEXT_METRICS = ("clip_text",)
ALL_METRICS = PAIR_METRICS + TEXT_METRICS
WEIGHTED_METRICS = {"lpips_alex": "alex", "lpips_vgg": "vgg", "clip": "clip", "clip_text": "clip"}
TORCH_METRICS = ("lpips_alex", "lpips_vgg", "clip", "clip_text", "ssim", "ms_ssim")  # colour and silhouette: numpy
COLOR_SCALE = 0.1  # a mean quantile distance of a tenth of the range scores 1/e
QUANTILES = np.linspace(0.02, 0.98, 49)
LPIPS_BATCH = 16


def _torch():
    import torch

    return torch


def _pair_windows(renders: Sequence[ScoredImage], refs: Sequence[ScoredImage], crop: int) -> tuple:
    """Both members of every (render, reference) pair cropped to the union of their subject boxes: (N·R)×3×S×S."""
    torch = _torch()
    a, b = [], []
    for render in renders:
        for ref in refs:
            window = square_window(union_box(render.mask, ref.mask), render.mask.shape)
            a.append(crop_rgb(render.rgb, window, crop))
            b.append(crop_rgb(ref.rgb, window, crop))
    to_tensor = lambda items: torch.from_numpy(np.stack(items)).permute(0, 3, 1, 2).contiguous()  # noqa: E731
    return to_tensor(a), to_tensor(b)


def _blur(x, sigma: float):
    if sigma <= 0:
        return x
    from torchvision.transforms.functional import gaussian_blur

    kernel = 2 * int(round(3 * sigma)) + 1
    return gaussian_blur(x, [kernel, kernel], [sigma, sigma])


def ssim_similarity(a, b, blur_sigma: float, multiscale: bool) -> np.ndarray:
    from pytorch_msssim import ms_ssim, ssim

    a, b = _blur(a, blur_sigma), _blur(b, blur_sigma)
    if multiscale:
        if min(a.shape[-2:]) <= 160:
            raise VDBForgeError("ms_ssim needs a crop larger than 160 px (use --crop 192 or more)")
        values = ms_ssim(a, b, data_range=1.0, size_average=False)
    else:
        values = ssim(a, b, data_range=1.0, size_average=False)
    return values.clamp(0.0, 1.0).numpy().astype(np.float64)


def lpips_similarity(a, b, net: str) -> np.ndarray:
    """1 − LPIPS distance, clipped to [0, 1]; LPIPS wants inputs in [−1, 1]."""
    from .networks import lpips_model

    model = lpips_model(net)
    distances = []
    for start in range(0, a.shape[0], LPIPS_BATCH):
        chunk_a, chunk_b = a[start : start + LPIPS_BATCH], b[start : start + LPIPS_BATCH]
        distances.append(model(chunk_a * 2.0 - 1.0, chunk_b * 2.0 - 1.0).reshape(-1))
    return (1.0 - _torch().cat(distances)).clamp(0.0, 1.0).numpy().astype(np.float64)


def clip_embeddings(images: Sequence[ScoredImage], spec: str, crop: int):
    """Unit-length image embeddings, all images cropped to one window around the union of their subjects.

    One shared window keeps the batch at one embedding per image while position still counts, as in the pair metrics.
    """
    from PIL import Image

    torch = _torch()
    model, preprocess, _ = _clip(spec)
    union = np.logical_or.reduce([image.mask for image in images])
    window = square_window(subject_box(union), union.shape)
    batch = []
    for image in images:
        pixels = np.clip(crop_rgb(image.rgb, window, crop) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        batch.append(preprocess(Image.fromarray(pixels)))
    features = model.encode_image(torch.stack(batch))
    return features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def clip_text_embedding(text: str, spec: str):
    model, _, tokenizer = _clip(spec)
    features = model.encode_text(tokenizer([text]))
    return features / features.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def _clip(spec: str):
    from .networks import clip_model

    return clip_model(spec)


def cosine_to_similarity(cos) -> np.ndarray:
    return ((cos + 1.0) / 2.0).clamp(0.0, 1.0).numpy().astype(np.float64)


def color_similarity(render: ScoredImage, ref: ScoredImage) -> float:
    """exp(−mean quantile distance / 0.1) between the subjects' RGB distributions (the whole frame if no subject)."""
    qa, qb = _color_quantiles(render), _color_quantiles(ref)
    return float(np.exp(-np.abs(qa - qb).mean() / COLOR_SCALE))


def _color_quantiles(image: ScoredImage) -> np.ndarray:
    pixels = image.rgb[image.mask] if image.mask.any() else image.rgb.reshape(-1, 3)
    return np.quantile(pixels, QUANTILES, axis=0)


def silhouette_similarity(render: ScoredImage, ref: ScoredImage) -> float:
    """IoU of the subject masks over the whole frame; two empty frames are identical."""
    union = np.logical_or(render.mask, ref.mask).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(render.mask, ref.mask).sum() / union)


def pair_metrics(
    renders: Sequence[ScoredImage],
    refs: Sequence[ScoredImage],
    names: Sequence[str],
    clip_spec: str,
    crop: int = 224,
    blur_sigma: float = 1.5,
) -> dict[str, np.ndarray]:
    """{metric: N×R similarities} for the requested pair metrics."""
    n, r = len(renders), len(refs)
    out: dict[str, np.ndarray] = {}
    if not n or not r:
        return out
    # Without torch (a plain Blender) the numpy metrics still run; torch is only touched when a metric needs it.
    needs_torch = any(name in TORCH_METRICS for name in names)
    with _torch().inference_mode() if needs_torch else contextlib.nullcontext():
        windows = None
        for name in names:
            if name in ("ssim", "ms_ssim", "lpips_alex", "lpips_vgg") and windows is None:
                windows = _pair_windows(renders, refs, crop)
            if name == "ssim":
                out[name] = ssim_similarity(*windows, blur_sigma, multiscale=False).reshape(n, r)
            elif name == "ms_ssim":
                out[name] = ssim_similarity(*windows, blur_sigma, multiscale=True).reshape(n, r)
            elif name in ("lpips_alex", "lpips_vgg"):
                out[name] = lpips_similarity(*windows, WEIGHTED_METRICS[name]).reshape(n, r)
            elif name == "clip":
                embeddings = clip_embeddings([*renders, *refs], clip_spec, crop)
                out[name] = cosine_to_similarity(embeddings[:n] @ embeddings[n:].T)
            elif name == "color":
                out[name] = np.array([[color_similarity(a, b) for b in refs] for a in renders])
            elif name == "silhouette":
                out[name] = np.array([[silhouette_similarity(a, b) for b in refs] for a in renders])
            else:
                raise VDBForgeError(f"unknown metric '{name}' (choose from {', '.join(ALL_METRICS)})")
    return out


def text_similarity(renders: Sequence[ScoredImage], text: str, clip_spec: str, crop: int = 224) -> np.ndarray:
    """(1 + cos)/2 between each render's CLIP embedding and the text's."""
    torch = _torch()
    with torch.inference_mode():
        images = clip_embeddings(renders, clip_spec, crop)
        return cosine_to_similarity(images @ clip_text_embedding(text, clip_spec).T).reshape(-1)
