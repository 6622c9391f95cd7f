"""The on-disk format of a `vdbforge dataset` folder and the fingerprints that tie a dataset (and a model trained on it)
to one preset, one parameter space and one Blender version (docs/INVERSE.md).

    DIR/dataset.json         what was sampled: preset, space, settings, versions (written once, atomically)
    DIR/index.jsonl          one record per finished sample (ok or failed), appended with one write + fsync
    DIR/samples/NNNNN/       preview/, sample.json and the `done` marker; appears by rename when complete
    DIR/failures/NNNNN.log   the worker log of a failed sample
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

from .errors import VDBForgeError
from .match_space import SearchSpace
from .version import vdbforge_version

FORMAT = 1
DATASET_FILE = "dataset.json"
INDEX_FILE = "index.jsonl"
SAMPLES = "samples"
FAILURES = "failures"
DONE_MARKER = "done"
SAMPLE_FILE = "sample.json"
STAGING_PREFIX = ".staging-"
# Settings that change what a sample looks like: a resumed or extended dataset must keep them.
IDENTITY_SETTINGS = ("seed", "resolution", "frames", "preview_frames", "angles", "preview_size", "sampler")
# Parts of a preset that a dataset overrides anyway, or that never reach a preview.
_SCENE_IGNORED = {"name", "description", "text_target", "scoring", "export", "parameters"}
_RIG_IGNORED = {"width", "height", "angles", "views", "preview_frames"}
_DOMAIN_IGNORED = {"resolution", "frame_start", "frame_end"}


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode("utf-8")).hexdigest()[:16]


def space_hash(space: SearchSpace) -> str:
    """Which tunables, in which order, over which bounds: the coordinates a model predicts."""
    return _digest([[t.path, t.stage, t.min, t.max, t.scale, t.choices] for t in (*space.simulation, *space.render)])


def scene_hash(space: SearchSpace) -> str:
    """The preset's scene apart from its tunables' current values (every tunable is set to the middle of its range)
    and the settings a dataset overrides: editing an emitter or the light changes it, renaming the preset does not."""
    return _digest(scene_data(space))


def scene_data(space: SearchSpace) -> dict:
    """What `scene_hash` digests."""
    dims = (*space.simulation, *space.render)
    # Settings at their defaults are left out, so a schema that gains a setting (off by default) keeps every model.
    data = space.apply(space.from_unit(dims, [0.5] * len(dims))).model_dump(mode="json", exclude_defaults=True)
    data = {k: v for k, v in data.items() if k not in _SCENE_IGNORED}
    data["domain"] = {k: v for k, v in data.get("domain", {}).items() if k not in _DOMAIN_IGNORED}
    data["render"] = {k: v for k, v in data.get("render", {}).items() if k not in _RIG_IGNORED}
    return data


def blender_version() -> str:
    """The Blender this process bakes with: the running Blender, else the installed `bpy` wheel (not imported)."""
    bpy = sys.modules.get("bpy")
    version = getattr(getattr(bpy, "app", None), "version", None)
    if version:
        return ".".join(str(v) for v in version)
    try:
        return importlib.metadata.version("bpy")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def versions() -> dict[str, str]:
    found = {"vdbforge": vdbforge_version(), "blender": blender_version()}
    try:
        found["scipy"] = importlib.metadata.version("scipy")
    except importlib.metadata.PackageNotFoundError:
        found["scipy"] = "unknown"
    return found


def describe_dataset(space: SearchSpace, settings: dict[str, Any], created: str) -> dict[str, Any]:
    preset = space.preset
    return {
        "format": FORMAT,
        "created": created,
        "preset_id": preset.id,
        "family": preset.family,
        "schema_version": preset.schema_version,
        "preset": preset.model_dump(mode="json"),
        "space": space.describe(),
        "simulation_paths": space.simulation_paths,
        "render_paths": space.render_paths,
        "space_hash": space_hash(space),
        "scene_hash": scene_hash(space),
        "settings": settings,
        "versions": versions(),
    }


def load_dataset(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / DATASET_FILE
    if not path.is_file():
        raise VDBForgeError(f"no dataset in {folder} ({DATASET_FILE} missing): make one with vdbforge dataset")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise VDBForgeError(f"cannot read {path}: {exc}") from exc
    if info.get("format") != FORMAT:
        raise VDBForgeError(f"{path} has dataset format {info.get('format')}; this VDBForge reads {FORMAT}")
    return info


def check_same_dataset(stored: dict[str, Any], wanted: dict[str, Any], folder: Path) -> None:
    """A rerun continues the stored dataset only if every sample it adds looks like the ones already there."""
    differences = [
        f"{key} {stored['settings'].get(key)!r} -> {wanted['settings'].get(key)!r}"
        for key in IDENTITY_SETTINGS
        if stored["settings"].get(key) != wanted["settings"].get(key)
    ]
    if stored.get("preset_id") != wanted.get("preset_id"):
        differences.append(f"preset {stored.get('preset_id')} -> {wanted.get('preset_id')}")
    elif stored.get("space_hash") != wanted.get("space_hash"):
        differences.append("the preset's tunables or their bounds changed")
    elif stored.get("scene_hash") != wanted.get("scene_hash"):
        differences.append("the preset's scene (domain, emitters, material or rig) changed")
    if stored["versions"].get("blender") != wanted["versions"].get("blender"):
        differences.append(f"Blender {stored['versions'].get('blender')} -> {wanted['versions'].get('blender')}")
    if differences:
        raise VDBForgeError(
            f"{folder} holds a dataset made differently ({'; '.join(differences)}): rerun with its settings or use "
            "another --out"
        )


def read_index(folder: str | Path) -> dict[int, dict[str, Any]]:
    """The last complete record per sample index; a line torn by a kill mid-write is ignored."""
    path = Path(folder) / INDEX_FILE
    records: dict[int, dict[str, Any]] = {}
    if not path.is_file():
        return records
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("index"), int):
            records[record["index"]] = record
    return records


def sample_dir(folder: str | Path, index: int) -> Path:
    return Path(folder) / SAMPLES / f"{index:05d}"
