"""Image → parameters model files: `<user data>/models/inverse/<preset id>.pt`, one per preset.

A model file is `torch.save` of a plain dict (tensors, numbers, strings) loaded back with `weights_only=True`, so a
shared file cannot run code. Its metadata ties it to the preset id, the preset schema, the parameter space (paths,
stages, bounds), the preset's scene and the Blender version that baked its dataset; a model whose tie no longer holds
is refused with one line saying what differs and how to rebuild it (docs/INVERSE.md).
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core import dataset_format as fmt
from ..core.atomic import temp_path_for
from ..core.errors import VDBForgeError
from ..core.match_space import SearchSpace
from ..core.paths import user_data_dir
from ..core.preset_model import Preset
from ..core.version import vdbforge_version

MODEL_FORMAT = 1
MODEL_KIND = "vdbforge-inverse"


def models_folder() -> Path:
    path = user_data_dir() / "models" / "inverse"
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_path(preset_id: str) -> Path:
    return models_folder() / f"{preset_id}.pt"


def metadata_for(info: dict[str, Any], approach: str, held_out: dict[str, Any], spec: dict, folder: Path) -> dict:
    """The metadata of a model trained on the dataset described by `info` (its dataset.json)."""
    return {
        "format": MODEL_FORMAT,
        "kind": MODEL_KIND,
        "approach": approach,
        "preset_id": info["preset_id"],
        "schema_version": info["schema_version"],
        "space_hash": info["space_hash"],
        "scene_hash": info["scene_hash"],
        "simulation_paths": info["simulation_paths"],
        "render_paths": info["render_paths"],
        "blender_version": info["versions"]["blender"],
        "vdbforge_version": vdbforge_version(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "held_out": held_out,
        "features": spec,
        "dataset": {"path": str(folder), "settings": info["settings"]},
    }


def _torch():
    try:
        import torch
    except ImportError as exc:
        raise VDBForgeError(
            "inverse models need torch: run ./scripts/setup.sh (or pip install 'vdbforge[ml]')"
        ) from exc
    return torch


def save_model(model: dict[str, Any], path: str | os.PathLike | None = None) -> Path:
    torch = _torch()

    path = Path(path) if path else model_path(model["preset_id"])
    with temp_path_for(path) as tmp:
        torch.save(model, tmp)
    return path


def read_model(path: str | os.PathLike) -> dict[str, Any]:
    import pickle

    torch = _torch()
    try:
        model = torch.load(str(path), map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError, pickle.UnpicklingError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise VDBForgeError(f"cannot read inverse model {path}: {reason}") from exc
    if not isinstance(model, dict) or model.get("kind") != MODEL_KIND:
        raise VDBForgeError(f"{path} is not a VDBForge inverse model")
    return model


def mismatch(model: dict[str, Any], preset: Preset) -> str | None:
    """Why `model` does not fit `preset` as it is now and this Blender, or None."""
    if model.get("format") != MODEL_FORMAT:
        return f"it has model format {model.get('format')}, this VDBForge reads {MODEL_FORMAT}"
    if model["preset_id"] != preset.id:
        return f"it was trained for preset '{model['preset_id']}', not '{preset.id}'"
    if model["schema_version"] != preset.schema_version:
        return (
            f"it was trained on preset schema {model['schema_version']}, the preset is schema {preset.schema_version}"
        )
    space = SearchSpace.of(preset)
    if model["space_hash"] != fmt.space_hash(space):
        now = [*space.simulation_paths, *space.render_paths]
        was = [*model["simulation_paths"], *model["render_paths"]]
        what = "tunables" if now != was else "tunable bounds or scales"
        return f"the preset's parameter space changed since it was trained ({what} differ)"
    if model["scene_hash"] != fmt.scene_hash(space):
        return "the preset's scene (emitters, domain, material or rig) changed since it was trained"
    here = fmt.blender_version()
    if model["blender_version"] != here:
        return f"its dataset was baked with Blender {model['blender_version']}, this is Blender {here}"
    return None


def rebuild_hint(preset_id: str) -> str:
    return (
        f"rebuild it: vdbforge dataset --preset {preset_id} --n 512 --out NEW_DIR && vdbforge train --dataset NEW_DIR"
    )


def check_model(model: dict[str, Any], preset: Preset, path: Path) -> None:
    reason = mismatch(model, preset)
    if reason:
        raise VDBForgeError(
            f"inverse model {path} does not fit preset '{preset.id}': {reason}; {rebuild_hint(preset.id)}"
        )


def usable_inverse_model(preset: Preset) -> dict[str, Any] | None:
    """The model for `preset`, read once; None if there is none; raises VDBForgeError if one exists but does not fit."""
    path = model_path(preset.id)
    if not path.is_file():
        return None
    model = read_model(path)
    check_model(model, preset, path)
    return model


def find_inverse_model(preset: Preset) -> Path | None:
    """The usable model's file for `preset`, None if there is none; raises VDBForgeError if it does not fit."""
    return model_path(preset.id) if usable_inverse_model(preset) is not None else None


def load_inverse_model(preset: Preset) -> dict[str, Any]:
    model = usable_inverse_model(preset)
    if model is None:
        raise VDBForgeError(
            f"no inverse model for preset '{preset.id}': {rebuild_hint(preset.id).replace('rebuild', 'make')}"
        )
    return model


def list_inverse_models() -> list[dict[str, Any]]:
    """Every model file with its metadata and whether it fits the preset of that id as it is now."""
    from ..core.preset_library import resolve_preset

    rows = []
    for path in sorted(models_folder().glob("*.pt")):
        row: dict[str, Any] = {"path": str(path), "preset_id": path.stem}
        try:
            model = read_model(path)
        except VDBForgeError as exc:
            rows.append({**row, "status": f"unreadable: {exc}"})
            continue
        held = model.get("held_out", {})
        row.update(
            {k: model.get(k) for k in ("preset_id", "approach", "created", "blender_version", "vdbforge_version")}
        )
        row["samples"] = held.get("samples")
        row["held_out_mae"] = held.get("mae")
        try:
            reason = mismatch(model, resolve_preset(model["preset_id"]))
        except VDBForgeError as exc:
            reason = str(exc)
        row["status"] = "ok" if reason is None else f"stale: {reason}"
        rows.append(row)
    return rows


@dataclass(frozen=True)
class ModelStatus:
    state: str  # "ready", "none", "stale", "unreadable" or "no-torch" (torch or scipy missing)
    text: str


_status_cache: dict[tuple, ModelStatus] = {}


def model_status(preset: Preset) -> ModelStatus:
    """Whether `match` can start from a model for `preset`, in one line for the Iterate panel.

    Read once per model file version and preset space (panels redraw often; reading a model imports torch)."""
    path = model_path(preset.id)
    missing = [m for m in ("torch", "scipy") if importlib.util.find_spec(m) is None]
    if missing:
        return ModelStatus(
            "no-torch", f"Inverse models need {' and '.join(missing)} in Blender's Python (docs/INVERSE.md)"
        )
    try:
        stat = path.stat()
    except FileNotFoundError:
        return ModelStatus("none", f"No inverse model for '{preset.id}' yet")
    space = SearchSpace.of(preset)
    key = (str(path), stat.st_mtime_ns, stat.st_size, preset.id, preset.schema_version, fmt.space_hash(space),
           fmt.scene_hash(space))  # fmt: skip
    if key not in _status_cache:
        _status_cache.clear()
        try:
            model = read_model(path)
        except VDBForgeError as exc:
            _status_cache[key] = ModelStatus("unreadable", str(exc))
        else:
            reason = mismatch(model, preset)
            held = model.get("held_out", {})
            _status_cache[key] = (
                ModelStatus("stale", f"Model no longer fits: {reason}")
                if reason
                else ModelStatus(
                    "ready",
                    f"Model ready: {model.get('approach')}, {held.get('samples', '?')} samples, held-out error "
                    f"{held.get('mae', float('nan')):.3f}",
                )
            )
    return _status_cache[key]
