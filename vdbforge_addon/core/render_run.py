"""Parent side of `render`: resolve options, run one worker, publish its output into the folder atomically.

Publishing is `staged_run`'s job: nothing appears in the output folder unless the worker succeeded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import PresetError
from .parameters import apply_overrides, current_values, validate_preset
from .preset_model import MAX_FRAMES, MAX_RESOLUTION, Preset
from .staged_run import run_staged_job
from .worker_client import OnMessage, WorkerCommand, WorkerHandle


@dataclass
class RenderOptions:
    overrides: dict[str, Any] = field(default_factory=dict)
    resolution: int | None = None
    frames: tuple[int, int, int] | None = None  # start, end, step
    angles: int | None = None
    preview_size: int | None = None
    export: dict[str, Any] = field(default_factory=dict)  # ExportSettings fields, e.g. {"nanovdb": True}
    preview_frames: list[int] | None = None
    views: list[tuple[float, float]] | None = None  # (azimuth, elevation) per camera, replacing `angles`
    keep_cache: bool = False
    timeout: float | None = None


def parse_frames(text: str) -> tuple[int, int, int]:
    """`A:B` or `A:B:step`, inclusive, 1-based."""
    parts = text.split(":")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        raise PresetError(f"--frames expects A:B or A:B:step with whole numbers, got '{text}'") from None
    if len(numbers) not in (2, 3):
        raise PresetError(f"--frames expects A:B or A:B:step, got '{text}'")
    start, end, step = (*numbers, 1) if len(numbers) == 2 else numbers
    if not (1 <= start <= end <= MAX_FRAMES) or step < 1:
        raise PresetError(f"--frames '{text}' must satisfy 1 <= A <= B <= {MAX_FRAMES} and step >= 1")
    return start, end, step


def parse_frame_list(text: str) -> list[int]:
    """`8,12,16` or a range `6:16` (every frame) or `6:16:2`."""
    if ":" in text:
        start, end, step = parse_frames(text)
        return list(range(start, end + 1, step))
    try:
        frames = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise PresetError(f"--preview-frames expects a list like 8,12,16 or a range like 6:16, got '{text}'") from None
    if not frames or any(not 1 <= f <= MAX_FRAMES for f in frames):
        raise PresetError(f"--preview-frames '{text}' must list frames between 1 and {MAX_FRAMES}")
    return frames


def format_frame_list(frames: list[int]) -> str:
    """`frame 7` or `frames 1-3,8,10-14` (runs at the list's smallest step), for notices that span many frames."""
    frames = sorted(set(frames))
    if len(frames) == 1:
        return f"frame {frames[0]}"
    step = min(b - a for a, b in zip(frames, frames[1:], strict=False))
    runs: list[list[int]] = []
    for f in frames:
        if runs and f - runs[-1][-1] == step:
            runs[-1].append(f)
        else:
            runs.append([f])
    return "frames " + ",".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def parse_views(text: str) -> list[tuple[float, float]]:
    """`0:10,90:10,0:89` → [(azimuth, elevation), …] in degrees."""
    views = []
    for item in (part.strip() for part in text.split(",")):
        azimuth, sep, elevation = item.partition(":")
        try:
            views.append((float(azimuth), float(elevation) if sep else 10.0))
        except ValueError:
            raise PresetError(f"--views expects AZIMUTH:ELEVATION pairs like 0:10,90:10, got '{item}'") from None
    if not 1 <= len(views) <= 16:
        raise PresetError(f"--views takes 1 to 16 angles, got {len(views)}")
    return views


def resolve_render_preset(preset: Preset, options: RenderOptions) -> Preset:
    """The preset with tunable overrides and the run's resolution / frame range applied and re-validated."""
    preset = apply_overrides(preset, options.overrides)
    data = preset.model_dump(mode="json")
    if options.resolution is not None:
        if not 8 <= options.resolution <= MAX_RESOLUTION:
            raise PresetError(f"--resolution {options.resolution} is outside [8, {MAX_RESOLUTION}]")
        data["domain"]["resolution"] = options.resolution
    if options.frames is not None:
        data["domain"]["frame_start"], data["domain"]["frame_end"] = options.frames[:2]
    if options.angles is not None:
        if not 1 <= options.angles <= 16:
            raise PresetError(f"--angles {options.angles} is outside [1, 16]")
        data["render"]["angles"] = options.angles
        data["render"]["views"] = []  # an explicit count asks for the default angles, not the preset's own views
    if options.views is not None:
        data["render"]["views"] = [{"azimuth": a, "elevation": e} for a, e in options.views]
    if data["render"]["views"]:
        data["render"]["angles"] = len(data["render"]["views"])
    data["export"].update(options.export)
    if options.preview_size is not None:
        if not 16 <= options.preview_size <= 4096:
            raise PresetError(f"--preview-size {options.preview_size} is outside [16, 4096]")
        rig = data["render"]
        scale = options.preview_size / max(rig["width"], rig["height"])
        rig["width"], rig["height"] = (max(16, round(rig[k] * scale)) for k in ("width", "height"))
    resolved = validate_preset(data, f"preset '{preset.id}'")
    start, end = resolved.domain.frame_start, resolved.domain.frame_end
    outside = [f for f in options.preview_frames or [] if not start <= f <= end]
    if outside:
        # asked for explicitly, so the nearest baked frame would be a silent substitute (the preset's own preview
        # frames still fall back to the nearest one when --frames shortens the bake)
        listed = ",".join(map(str, outside))
        verb = "is" if len(outside) == 1 else "are"
        raise PresetError(f"--preview-frames: {listed} {verb} outside the baked frames {start}:{end}")
    return resolved


def build_render_job(resolved: Preset, stage: Path, options: RenderOptions) -> dict[str, Any]:
    """The worker job for `resolved` (already through `resolve_render_preset`) writing into `stage`.

    The cache lives in `stage/cache`, so it is published with the rest (when kept) or removed with the stage.
    """
    return {
        "kind": "render",
        "preset": resolved.model_dump(mode="json"),
        "params": current_values(resolved),
        "out_dir": str(stage),
        "cache_dir": str(stage / "cache"),
        "frame_step": _frame_step(options),
        "angles": resolved.render.angles,
        "preview_frames": options.preview_frames or [],
        "keep_cache": options.keep_cache,
    }


def describe_render(resolved: Preset, options: RenderOptions, worker_result: dict[str, Any]) -> dict[str, Any]:
    """What `result.json` holds: the run's settings, the worker's result, and the resolved preset."""
    return {
        "preset_id": resolved.id,
        "family": resolved.family,
        "params": current_values(resolved),
        "resolution": resolved.domain.resolution,
        "frames": [resolved.domain.frame_start, resolved.domain.frame_end, _frame_step(options)],
        "angles": resolved.render.angles,
        **worker_result,
        "preset": resolved.model_dump(mode="json"),
    }


def _frame_step(options: RenderOptions) -> int:
    return options.frames[2] if options.frames else 1


def run_render(
    preset: Preset,
    out: str | os.PathLike,
    options: RenderOptions,
    *,
    on_message: OnMessage | None = None,
    command: WorkerCommand | None = None,
    extra_sys_path: list[str] | None = None,
    started_hook: Callable[[WorkerHandle], None] | None = None,
) -> dict[str, Any]:
    """Build, bake, export and preview `preset` into `out`; returns the result written to `out/result.json`."""
    resolved = resolve_render_preset(preset, options)

    def make_job(stage: Path) -> dict[str, Any]:
        return build_render_job(resolved, stage, options)

    def describe(worker_result: dict[str, Any]) -> dict[str, Any]:
        return describe_render(resolved, options, worker_result)

    return run_staged_job(
        out,
        make_job,
        describe,
        timeout=options.timeout,
        on_message=on_message,
        command=command,
        extra_sys_path=extra_sys_path,
        started_hook=started_hook,
    )


def load_result_preset(result: dict[str, Any]) -> Preset:
    return validate_preset(result["preset"], "result.json preset")
