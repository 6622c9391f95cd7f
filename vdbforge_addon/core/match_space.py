"""The parameter space a match searches: a preset's tunables split into simulation and render-time dimensions.

Every dimension is normalised to [0, 1] (log-scaled where the preset says, `parameters.normalise`). Categorical
tunables (`choices`) become one dimension cut into equal bins, choice k owning [k/n, (k+1)/n): CMA-ES moves through
them like any other coordinate, and the value is the bin the coordinate falls in. Simulation dimensions are searched
by the outer optimizer (each point is a bake); render dimensions by the inner fit on a cached bake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import VDBForgeError
from .parameters import apply_overrides, current_values, denormalise, normalise
from .preset_model import Preset, Tunable


@dataclass(frozen=True)
class SearchSpace:
    preset: Preset
    simulation: tuple[Tunable, ...]
    render: tuple[Tunable, ...]

    @classmethod
    def of(cls, preset: Preset) -> SearchSpace:
        sim = tuple(t for t in preset.parameters if t.stage == "simulation")
        render = tuple(t for t in preset.parameters if t.stage == "render")
        if not sim and not render:
            raise VDBForgeError(f"preset '{preset.id}' has no tunable parameters to match")
        return cls(preset, sim, render)

    @property
    def simulation_paths(self) -> list[str]:
        return [t.path for t in self.simulation]

    @property
    def render_paths(self) -> list[str]:
        return [t.path for t in self.render]

    def start_values(self) -> dict[str, Any]:
        values = current_values(self.preset)
        return {t.path: values[t.path] for t in (*self.simulation, *self.render)}

    def to_unit(self, tunables: tuple[Tunable, ...], values: dict[str, Any]) -> list[float]:
        return [normalise(t, values[t.path]) for t in tunables]

    def from_unit(self, tunables: tuple[Tunable, ...], x: list[float]) -> dict[str, Any]:
        start = self.start_values()
        return {t.path: denormalise(t, u, start[t.path]) for t, u in zip(tunables, x, strict=True)}

    def simulation_start(self) -> list[float]:
        return self.to_unit(self.simulation, self.start_values())

    def render_start(self) -> list[float]:
        return self.to_unit(self.render, self.start_values())

    def apply(self, values: dict[str, Any]) -> Preset:
        """The base preset with `values` (any subset of the space) applied and re-validated."""
        return apply_overrides(self.preset, values)

    def describe(self) -> list[dict[str, Any]]:
        start = self.start_values()
        return [
            {
                "path": t.path,
                "stage": t.stage,
                "min": t.min,
                "max": t.max,
                "scale": t.scale,
                "choices": t.choices,
                "start": start[t.path],
            }
            for t in (*self.simulation, *self.render)
        ]
