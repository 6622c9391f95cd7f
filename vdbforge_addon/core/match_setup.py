"""Starting or resuming a match run: run.json from the command's options, or the stored one for `--resume`."""

from __future__ import annotations

import importlib.metadata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import VDBForgeError
from .match_run import RunDir
from .match_settings import MatchSettings
from .match_space import SearchSpace
from .preset_model import Preset
from .scoring_settings import ScoringSettings
from .version import vdbforge_version


def _versions() -> dict[str, str]:
    versions = {"vdbforge": vdbforge_version()}
    for package in ("bpy", "cma"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "unknown"
    return versions


def new_run(
    run: RunDir,
    preset: Preset,
    references: list[Path],
    text: str,
    settings: MatchSettings,
    scoring: ScoringSettings,
    init: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write run.json for a fresh run; `init` may carry a warm start {"kind", "x", "sigma0"}."""
    if not references and not text.strip():
        raise VDBForgeError("match needs a target: --reference IMG (one or more) and/or --text")
    space = SearchSpace.of(preset)
    start = space.simulation_start()
    init = init or {"kind": "default", "x": start, "sigma0": settings.sigma0}
    if len(init["x"]) != len(start):
        raise VDBForgeError("the warm start does not fit this preset's simulation parameters")
    config = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "preset_id": preset.id,
        "family": preset.family,
        "preset": preset.model_dump(mode="json"),
        "text": text,
        "settings": settings.model_dump(mode="json"),
        "scoring": scoring.model_dump(mode="json"),
        "space": space.describe(),
        "versions": _versions(),
        "init": {**init, "mean": space.from_unit(space.simulation, init["x"]) if space.simulation else {}},
        "baseline": None,
        "crash_regions": crash_regions(preset.id, space.simulation_paths),
    }
    return run.create(config, references)


def crash_regions(preset_id: str, paths: list[str]) -> list[dict[str, Any]]:
    """Technique memory's crash cells for this preset and space, frozen into run.json at the start, so the run (and
    its resume) steers away from the same places whatever is recorded meanwhile."""
    if not paths:
        return []
    from . import technique_memory as memory

    try:
        rows = memory.list_entries("failures", preset_id)
    except memory.MemoryDatabaseError:
        return []
    order = sorted(paths)  # memory stores regions in sorted-path order
    cells: dict[tuple[int, ...], int] = {}
    for row in rows:
        if row["space_paths"] == order:
            region = tuple(row["region"][order.index(p)] for p in paths)  # back to this run's order
            cells[region] = cells.get(region, 0) + int(row["count"])
    return [{"region": list(region), "count": count} for region, count in sorted(cells.items())]


def resume_run(run: RunDir, workers: int | None = None) -> dict[str, Any]:
    """The stored run, continued with the same settings (only the worker count may change: it does not change
    results)."""
    config = run.load()
    if workers is not None:
        config["settings"]["workers"] = workers
    config["resumes"] = [*config.get("resumes", []), datetime.now(UTC).isoformat(timespec="seconds")]
    run.save(config)
    return config
