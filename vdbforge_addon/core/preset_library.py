"""Finding and loading presets: built-in ones shipped with the package, and the user's library that can shadow them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .errors import PresetError
from .parameters import validate_preset
from .paths import builtin_presets_dir, user_presets_dir
from .preset_model import Preset

MAX_PRESET_BYTES = 1_000_000
PRESET_SUFFIXES = (".vdbforge.json", ".json")


@dataclass(frozen=True)
class PresetEntry:
    id: str
    name: str
    family: str
    kind: str
    source: Literal["builtin", "user"]
    path: Path
    shadows_builtin: bool = False


def parse_preset_text(text: str, source: str) -> Preset:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PresetError(f"{source}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    if not isinstance(data, dict):
        raise PresetError(f"{source}: a preset must be a JSON object, got {type(data).__name__}")
    return validate_preset(data, source)


def load_preset_file(path: str | Path) -> Preset:
    path = Path(path)
    source = f"preset file '{path.name}'"
    try:
        size = path.stat().st_size
        if size > MAX_PRESET_BYTES:
            raise PresetError(f"{source}: {size} bytes is larger than the {MAX_PRESET_BYTES}-byte limit for presets")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PresetError(f"preset file '{path}' does not exist") from None
    except UnicodeDecodeError:
        raise PresetError(f"{source}: not UTF-8 text") from None
    except IsADirectoryError:
        raise PresetError(f"preset file '{path}' is a folder") from None
    except OSError as exc:
        raise PresetError(f"cannot read preset file '{path}': {exc.strerror}") from None
    return parse_preset_text(text, source)


def _preset_id_from_filename(path: Path) -> str:
    name = path.name
    for suffix in PRESET_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _scan(folder: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.name.endswith(".json") and not path.name.startswith("."):
                found[_preset_id_from_filename(path)] = path
    return found


def list_presets() -> list[PresetEntry]:
    """Built-in and user presets; a user preset whose id matches a built-in one replaces it and says so."""
    builtin = _scan(builtin_presets_dir())
    user = _scan(user_presets_dir())
    entries: dict[str, PresetEntry] = {}
    for source, table in (("builtin", builtin), ("user", user)):
        for _preset_id, path in table.items():
            try:
                preset = load_preset_file(path)
            except PresetError:
                if source == "builtin":
                    raise
                continue  # a broken user file is reported by `vdbforge presets show`, not by every listing
            entries[preset.id] = PresetEntry(
                id=preset.id,
                name=preset.name,
                family=preset.family,
                kind=preset.kind,
                source=source,
                path=path,
                shadows_builtin=source == "user" and preset.id in builtin,
            )
    return sorted(entries.values(), key=lambda e: (e.family, e.id))


def resolve_preset(ref: str) -> Preset:
    """`ref` is a preset id (user library first, then built-in) or a path to a preset file."""
    candidate = Path(ref)
    if candidate.suffix == ".json" or "/" in ref or "\\" in ref:
        return load_preset_file(candidate)
    for folder in (user_presets_dir(), builtin_presets_dir()):
        for suffix in PRESET_SUFFIXES:
            path = folder / f"{ref}{suffix}"
            if path.is_file():
                return load_preset_file(path)
    known = ", ".join(e.id for e in list_presets())
    raise PresetError(f"unknown preset '{ref}' (available: {known})")
