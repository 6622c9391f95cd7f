"""How a candidate is scored: metric names, their default weights, and the preset's `scoring` block.

The objective (docs/SCORING.md): per reference, the weighted mean of the pair metrics for the best-matching render
(frame and angle); the text target, when given, counts as one more target with weight `text_weight`; the optional
critic rating is blended in last with the critic's `weight` (ml/critic.py; the critic is the user's, not the preset's). Everything is a similarity in [0, 1], higher is better.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from .errors import VDBForgeError
from .strict_model import Strict

MetricName = Literal["lpips_alex", "lpips_vgg", "clip", "ssim", "ms_ssim", "color", "silhouette"]
METRIC_NAMES: tuple[str, ...] = MetricName.__args__

# Chosen for a smooth objective (MATCHING.md): LPIPS recovered parameters best; blurred SSIM, colour distribution and
# silhouette are robust to the small misalignments that late, chaotic frames produce; CLIP adds a semantic term.
DEFAULT_WEIGHTS: dict[str, float] = {"lpips_alex": 0.3, "clip": 0.15, "ssim": 0.2, "color": 0.15, "silhouette": 0.2}

Weight = Annotated[float, Field(ge=0.0, le=100.0)]


class ScoringSettings(Strict):
    weights: dict[MetricName, Weight] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    text_weight: Weight = 1.0
    clip_model: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]+(:[A-Za-z0-9_.\-]+)?$")] = "ViT-B-32:openai"
    crop: int = Field(224, ge=64, le=1024, description="side of the square window pixel metrics compare")
    width: int = Field(256, ge=64, le=2048, description="working width every image is resized to")
    blur_sigma: float = Field(1.5, ge=0.0, le=10.0, description="Gaussian blur before SSIM, hides render noise")


def parse_metric_weights(text: str) -> dict[str, float]:
    """'lpips_alex=0.5,ssim' → {'lpips_alex': 0.5, 'ssim': 1.0}; a bare name weighs 1."""
    weights: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, value = item.partition("=")
        name = name.strip()
        if name not in METRIC_NAMES:
            raise VDBForgeError(f"unknown metric '{name}' (choose from {', '.join(METRIC_NAMES)})")
        try:
            weight = float(value) if value.strip() else 1.0
        except ValueError as exc:
            raise VDBForgeError(f"metric weight for '{name}' is not a number: '{value}'") from exc
        if not 0.0 <= weight <= 100.0:
            raise VDBForgeError(f"metric weight for '{name}' must be within 0..100, got {weight:g}")
        weights[name] = weight
    if not any(weights.values()):
        raise VDBForgeError("no metric has a positive weight")
    return weights
