"""The knobs of one match run, as stored in run.json (`settings`). Defaults are chosen for small budgets (docs/MATCH.md)."""

from __future__ import annotations

import os
from typing import Annotated, Literal

from pydantic import Field

from .preset_model import MAX_FRAMES, MAX_RESOLUTION
from .strict_model import Strict

FAILED_SCORE = 0.0  # a failed or timed-out candidate scores as badly as a score can be; the loop continues
AVOID_RISK = 0.75  # technique memory's crash risk (two crashes in the cell) above which a candidate is not baked
Frame = Annotated[int, Field(ge=1, le=MAX_FRAMES)]


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class MatchSettings(Strict):
    budget: int = Field(32, ge=1, le=10_000, description="bakes")
    population: int = Field(6, ge=2, le=256)
    workers: int = Field(default_factory=default_workers, ge=1, le=64)
    threshold: float = Field(0.97, ge=0.0, le=1.0)
    patience: int = Field(0, ge=0, le=1000, description="generations without improvement before stopping; 0 = off")
    optimizer: Literal["cma", "random"] = "cma"
    seed: int = Field(0, ge=0, le=2**31 - 1)
    sigma0: float = Field(0.25, gt=0.0, le=1.0, description="initial CMA-ES step, in normalised units")
    inner_budget: int = Field(10, ge=0, le=200, description="renders of the inner fit per candidate")
    fit_size: int = Field(128, ge=32, le=1024, description="longest side of the inner fit's renders")
    fit_samples: int = Field(8, ge=1, le=1024)
    resolution: int | None = Field(None, ge=8, le=MAX_RESOLUTION)
    frames: tuple[Frame, Frame] | None = None
    preview_frames: list[Frame] = Field(default_factory=list, max_length=64)
    angles: int | None = Field(None, ge=1, le=16)
    timeout: float = Field(3600.0, gt=0.0, description="seconds per candidate")
    allow_missing_weights: bool = False
    snapshots: bool = Field(False, description="save each candidate's Blender scene as candidates/NNNN/scene.blend")
