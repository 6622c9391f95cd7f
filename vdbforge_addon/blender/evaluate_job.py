"""One match candidate inside a worker: bake once, fit the render-time parameters on that bake, score.

1. build → bake → export (the candidate's simulation parameters are already in the preset);
2. scout: every preview frame and angle rendered small with the starting render parameters and scored, which picks
   the frame and angle that best match each target (time and angle are free once baked);
3. inner fit (`core.inner_fit`): only those views are re-rendered, small, while the render-time parameters move;
4. final: the full preview set at the preset's own size with the fitted values, scored — the candidate's score, and
   exactly what `vdbforge render --preset best/preset.json` reproduces.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from ..core.inner_fit import coordinate_fit
from ..core.match_space import SearchSpace
from ..core.parameters import validate_preset
from ..core.preset_model import Preset
from ..core.protocol import Emitter
from ..core.scoring_settings import ScoringSettings
from .pipeline import BakedAsset, bake_and_export, choose_preview_frames, preview_bounds, render_preview_set
from .preview_rig import rig_angles
from .scene_reset import reset_to_empty_scene
from .scene_snapshot import save_snapshot


def _sized(preset: Preset, longest: int, samples: int, views: list[tuple[float, float]] | None = None) -> Preset:
    """The preset rendered at `longest` px and `samples` samples, optionally from explicit views only."""
    data = preset.model_dump(mode="json")
    rig = data["render"]
    scale = min(1.0, longest / max(rig["width"], rig["height"]))
    rig["width"], rig["height"] = (max(16, round(rig[k] * scale)) for k in ("width", "height"))
    rig["samples"] = min(rig["samples"], samples)
    if views is not None:
        rig["views"] = [{"azimuth": a, "elevation": e} for a, e in views]
        rig["angles"] = len(views)
    return validate_preset(data, f"preset '{preset.id}'")


class CandidateScorer:
    """Renders a baked asset with given render-time values and scores the images against the targets."""

    def __init__(self, job: dict[str, Any], asset: BakedAsset, frames: list[int], work: Path) -> None:
        from ..ml.scoring import ScoreRequest

        self.job, self.asset, self.frames, self.work = job, asset, frames, work
        self.bounds = preview_bounds(asset, frames)
        self.angles = int(job["angles"])
        self.request = ScoreRequest(
            renders=[],
            references=[Path(p) for p in job.get("references", [])],
            text=job.get("text", ""),
            settings=ScoringSettings.model_validate(job.get("scoring") or {}),
            allow_missing_weights=bool(job.get("allow_missing_weights", False)),
        )
        self.space = SearchSpace.of(asset.preset)
        self.renders = 0

    def preset_for(self, render_values: dict[str, Any]) -> Preset:
        return self.space.apply(render_values) if render_values else self.asset.preset

    def render_and_score(self, preset: Preset, frames: list[int], out_dir: Path) -> dict[str, Any]:
        from ..ml.scoring import score

        preview = render_preview_set(preset, self.asset, frames, self.bounds, preset.render.angles, out_dir)
        self.renders += len(preview.images)
        self.request.renders = [Path(p) for p in preview.images]
        report = score(self.request)
        report["previews"] = preview.images
        report["contact_sheet"] = preview.contact_sheet
        return report

    def best_views(self, scout: dict[str, Any], preset: Preset) -> list[tuple[int, tuple[float, float]]]:
        """(frame, (azimuth, elevation)) of the render that best matched each target in the scout pass."""
        views = rig_angles(preset.render, self.angles)
        chosen = []
        for target in [*scout["references"], scout["text"]]:
            if target and target.get("frame") is not None:
                angle = views[target["angle"]]
                pair = (target["frame"], (angle.azimuth, angle.elevation))
                if pair not in chosen:
                    chosen.append(pair)
        return chosen


def run_evaluate_job(job: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    started = time.perf_counter()
    preset = validate_preset(job["preset"], f"job preset '{job['preset'].get('id')}'")
    out_dir, cache_dir = Path(job["out_dir"]), Path(job["cache_dir"])
    cache_dir.mkdir(parents=True, exist_ok=True)
    asset = bake_and_export(job, preset, emit)
    frames = choose_preview_frames(
        job.get("preview_frames") or preset.render.preview_frames, asset.previewable_frames()
    )
    scorer = CandidateScorer(job, asset, frames, out_dir / "fit")
    fit_size, fit_samples = int(job.get("fit_size", 128)), int(job.get("fit_samples", 8))

    t = time.perf_counter()
    emit.status("inner", "scouting frames and angles")
    scout = scorer.render_and_score(_sized(preset, fit_size, fit_samples), frames, scorer.work / "scout")
    render_tunables = scorer.space.render
    start_u = list(job.get("render_start") or scorer.space.render_start())
    budget = int(job.get("inner_budget", 0))
    fitted_values: dict[str, Any] = {}
    inner = {"renders": 0, "trials": 0, "start_score": scout["objective"], "final_score": scout["objective"]}
    if render_tunables and budget > 0:
        views = scorer.best_views(scout, preset)
        focus_frames = sorted({f for f, _ in views})
        trial_counter = iter(range(10_000))

        def evaluate(u: list[float]) -> float:
            values = scorer.space.from_unit(render_tunables, u)
            trial = _sized(scorer.preset_for(values), fit_size, fit_samples, [v for _, v in views])
            index = next(trial_counter)
            emit.progress("inner", index + 1, budget)
            return scorer.render_and_score(trial, focus_frames, scorer.work / f"t{index:03d}")["objective"]

        fit = coordinate_fit(evaluate, start_u, budget)
        fitted_values = scorer.space.from_unit(render_tunables, fit.best)
        inner.update(trials=fit.renders, start_score=fit.start_score, final_score=fit.best_score)
    elif job.get("render_start"):
        fitted_values = scorer.space.from_unit(render_tunables, start_u)
    inner["renders"] = scorer.renders
    timings = dict(asset.timings)
    timings["inner"] = time.perf_counter() - t

    t = time.perf_counter()
    emit.status("render", f"rendering {len(frames)} frame(s) x {job['angles']} angle(s) with the fitted values")
    final_preset = scorer.preset_for(fitted_values)
    final = scorer.render_and_score(final_preset, frames, out_dir / "preview")
    timings["render"] = time.perf_counter() - t
    if job.get("snapshot"):
        save_snapshot(out_dir)
    if not job.get("keep_fit_images"):
        shutil.rmtree(scorer.work, ignore_errors=True)
    shutil.rmtree(cache_dir, ignore_errors=True)
    reset_to_empty_scene()
    timings["total_worker"] = time.perf_counter() - started
    return {
        "score": final["objective"],
        "breakdown": {k: final[k] for k in ("objective", "metrics_used", "weights", "skipped", "references", "text")},
        "render_params": fitted_values,
        "inner": inner,
        "preview_frames": frames,
        "previews": final["previews"],
        "contact_sheet": final["contact_sheet"],
        "vdb_files": asset.export.files,
        "nanovdb_files": asset.export.nanovdb_files,
        "bounds": scorer.bounds,
        "preset": final_preset.model_dump(mode="json"),
        "timings": timings,
        "runtime": asset.runtime,
    }
