"""Where a match starts (`--init`, the Iterate panel's *Start From*): the preset's values, technique memory's best past
runs, or the image → parameters model's prediction for the first reference (docs/INVERSE.md)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..core.errors import VDBForgeError
from ..core.preset_model import Preset


def start_point(
    kind: str | None,
    preset: Preset,
    references: list[Path],
    note: Callable[[str], None] = lambda _: None,
    sigma0: float | None = None,
) -> dict[str, Any] | None:
    """The run's warm start {"kind", "x", "sigma0", ...}; None means the preset's own values.

    `kind` None or "auto": the model's prediction when a model for the preset exists and there is a reference.
    `sigma0`, when given (`match --sigma0`), replaces the warm start's own initial step."""
    start = _warm_start(kind, preset, references, note)
    if start is not None and sigma0 is not None:
        start["sigma0"] = sigma0
    return start


def _warm_start(
    kind: str | None, preset: Preset, references: list[Path], note: Callable[[str], None]
) -> dict[str, Any] | None:
    if kind == "memory":
        return _memory_start(preset, references, note)
    if kind == "default":
        return None
    if kind in (None, "auto") and importlib.util.find_spec("torch") is None:
        return None  # a Blender without torch cannot read models: Auto means the preset's values there
    from .inverse_store import usable_inverse_model

    model = usable_inverse_model(preset)  # raises for a stale or mismatched model
    has_model = model is not None
    if kind == "inverse" and not has_model:
        raise VDBForgeError(
            f"starting from the inverse model (--init inverse): there is no model for '{preset.id}'; the Iterate "
            "panel's Build Model or vdbforge dataset + train makes one"
        )
    if kind == "inverse" and not references:
        raise VDBForgeError("starting from the inverse model (--init inverse) needs a reference image")
    if not (has_model and references):
        return None
    from .inverse_model import predict_start

    sim_mean, sim_sigma, render_mean, _ = predict_start(preset, references[0], model)
    spread = sum(sim_sigma) / len(sim_sigma) if sim_sigma else 0.25
    return {"kind": "inverse", "x": sim_mean, "sigma0": min(0.3, max(0.05, spread)), "render_x": render_mean}


def _memory_start(preset: Preset, references: list[Path], note: Callable[[str], None]) -> dict[str, Any] | None:
    from ..core import technique_memory
    from ..core.image_fingerprint import image_fingerprint
    from ..core.match_space import SearchSpace

    space = SearchSpace.of(preset)
    fingerprint = image_fingerprint(references[0]) if references else None
    start = technique_memory.warm_start(preset.id, space.simulation_paths, fingerprint)
    if start is None:
        note("technique memory has no past run of this preset to start from; using its values")
        return None
    return {"kind": "memory", "x": start.mean, "sigma0": start.sigma}
