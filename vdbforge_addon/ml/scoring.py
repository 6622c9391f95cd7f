"""Score a candidate's renders against references and/or a text target: per-render scores, the best-matching render
(frame and angle) per target, and one scalar objective. The formula is in core/scoring_settings.py and docs/SCORING.md.
"""

from __future__ import annotations

import importlib.util
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import VDBForgeError
from ..core.scoring_settings import ScoringSettings
from .critic import CriticConfig, critique, weighted_score
from .images import ScoredImage, border_color, load_rgba, prepare
from .metrics import TORCH_METRICS, WEIGHTED_METRICS, pair_metrics, text_similarity
from .model_weights import ModelWeightsMissing, clip_status, lpips_status

_PREVIEW_NAME = re.compile(r"f(\d+)_a(\d+)")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")


@dataclass
class ScoreRequest:
    renders: list[Path]
    references: list[Path] = field(default_factory=list)
    text: str = ""
    settings: ScoringSettings = field(default_factory=ScoringSettings)
    allow_missing_weights: bool = False  # score with the metrics that need no weights when some are missing
    critic: CriticConfig | None = None  # blended in with critic.weight; its failures are reported, never raised
    critic_api_key: str | None = None  # from add-on preferences; otherwise the critic reads its environment variable


def find_renders(folder: str | Path) -> list[Path]:
    """Preview images of a render folder (its preview/ subfolder if present), contact sheets excluded."""
    folder = Path(folder)
    if (folder / "preview").is_dir():
        folder = folder / "preview"
    if not folder.is_dir():
        raise VDBForgeError(f"renders folder not found: {folder}")
    renders = sorted(
        p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and "contact" not in p.name.lower()
    )
    if not renders:
        raise VDBForgeError(f"no render images in {folder}")
    return renders


def render_key(path: Path) -> dict[str, int | None]:
    """Frame and angle from our preview names (f0012_a01.png); None for other names."""
    match = _PREVIEW_NAME.search(path.stem)
    return {"frame": int(match[1]), "angle": int(match[2])} if match else {"frame": None, "angle": None}


def weight_available(metric: str, clip_model: str) -> VDBForgeError | None:
    """Why `metric` cannot run here (torch or weights missing), or None."""
    if metric in TORCH_METRICS and importlib.util.find_spec("torch") is None:
        return ModelWeightsMissing(
            f"{metric} needs torch, which this Python lacks: install it into Blender's Python "
            "(python -m pip install torch torchvision lpips open_clip_torch pytorch-msssim) or use the vdbforge CLI"
        )
    kind = WEIGHTED_METRICS.get(metric)
    if kind is None:
        return None
    status = clip_status(clip_model) if kind == "clip" else lpips_status(kind)
    return None if status.present else status.missing_error()


def plan_metrics(request: ScoreRequest) -> tuple[dict[str, float], dict[str, str], bool]:
    """(pair-metric weights to run, {skipped metric: reason}, whether the text target can be scored)."""
    settings = request.settings
    weights = {m: w for m, w in settings.weights.items() if w > 0} if request.references else {}
    metrics = [*weights] + (["clip_text"] if request.text else [])
    skipped: dict[str, str] = {}
    for metric in metrics:
        missing = weight_available(metric, settings.clip_model)
        if missing is None:
            continue
        if not request.allow_missing_weights:
            raise ModelWeightsMissing(f"{missing} (or allow scoring without it: --allow-missing-weights)")
        skipped[metric] = str(missing)
        weights.pop(metric, None)
    use_text = bool(request.text) and "clip_text" not in skipped
    if request.references and not weights:
        raise VDBForgeError("no metric left to compare with the references: " + "; ".join(skipped.values()))
    if request.text and not use_text and not request.references:
        raise VDBForgeError(f"a text target needs CLIP weights: {skipped['clip_text']}")
    return weights, skipped, use_text


def score(request: ScoreRequest) -> dict[str, Any]:
    """The full score breakdown as plain data (JSON-ready)."""
    if not request.renders:
        raise VDBForgeError("no renders to score")
    if not request.references and not request.text.strip():
        raise VDBForgeError("nothing to score against: give a reference image or a text target")
    settings = request.settings
    weights, skipped, use_text = plan_metrics(request)
    started = time.perf_counter()
    first = load_rgba(request.renders[0], "render")
    aspect = first.shape[1] / first.shape[0]
    background = border_color(first)
    renders = [prepare(p, aspect, settings.width, "render", background) for p in request.renders]
    refs = [prepare(p, aspect, settings.width, "reference image", background) for p in request.references]
    loaded = time.perf_counter()
    values = pair_metrics(renders, refs, list(weights), settings.clip_model, settings.crop, settings.blur_sigma)
    text_scores = text_similarity(renders, request.text, settings.clip_model, settings.crop) if use_text else None
    scored = time.perf_counter()
    report = _report(renders, refs, weights, values, text_scores, request, skipped)
    report["timings"] = {"load": loaded - started, "metrics": scored - loaded}
    if request.critic is not None and request.critic.weight > 0:
        _add_critic(report, request)
    return report


def _add_critic(report: dict[str, Any], request: ScoreRequest) -> None:
    """Show the critic the best-matching render per target, next to the references and the text."""
    best = [Path(t["best_render"]) for t in [*report["references"], report["text"]] if t]
    renders = list(dict.fromkeys(best)) or [Path(report["renders"][0]["path"])]
    result = critique(renders, list(request.references), request.text or None, request.critic, request.critic_api_key)
    report["image_objective"] = report["objective"]
    report["objective"] = weighted_score(report["objective"], result, request.critic.weight)
    report["critic"] = {**result.to_dict(), "config": request.critic.public_dict(), "weight": request.critic.weight}
    report["timings"]["critic"] = result.latency_s


def _combined(values: dict[str, np.ndarray], weights: dict[str, float], shape: tuple[int, int]) -> np.ndarray:
    total = sum(weights.values())
    combined = np.zeros(shape)
    for metric, weight in weights.items():
        combined += weight * values[metric]
    return combined / total if total else combined


def _report(
    renders: list[ScoredImage],
    refs: list[ScoredImage],
    weights: dict[str, float],
    values: dict[str, np.ndarray],
    text_scores: np.ndarray | None,
    request: ScoreRequest,
    skipped: dict[str, str],
) -> dict[str, Any]:
    combined = _combined(values, weights, (len(renders), len(refs)))
    targets: list[tuple[float, float]] = []  # (score, weight) per target
    references = []
    for j, ref in enumerate(refs):
        best = int(np.argmax(combined[:, j]))
        targets.append((float(combined[best, j]), 1.0))
        references.append(
            {
                "path": str(ref.path),
                "best_render": str(renders[best].path),
                **render_key(renders[best].path),
                "score": float(combined[best, j]),
                "metrics": {m: float(values[m][best, j]) for m in weights},
            }
        )
    text = None
    if text_scores is not None:
        best = int(np.argmax(text_scores))
        text = {"text": request.text, "best_render": str(renders[best].path), **render_key(renders[best].path)}
        text["score"] = float(text_scores[best])
        targets.append((text["score"], request.settings.text_weight))
    total_weight = sum(w for _, w in targets)
    objective = sum(s * w for s, w in targets) / total_weight if total_weight else 0.0
    per_render = []
    for i, render in enumerate(renders):
        entry: dict[str, Any] = {"path": str(render.path), **render_key(render.path)}
        entry["references"] = [
            {"score": float(combined[i, j]), "metrics": {m: float(values[m][i, j]) for m in weights}}
            for j in range(len(refs))
        ]
        if text_scores is not None:
            entry["text_score"] = float(text_scores[i])
        per_render.append(entry)
    used = list(weights) + (["clip_text"] if text_scores is not None else [])
    return {
        "objective": float(objective),
        "metrics_used": used,
        "weights": dict(weights),
        "skipped": skipped,
        "references": references,
        "text": text,
        "renders": per_render,
    }
