"""Per-scene VDBForge settings (`scene.vdbforge`) and the cached preset lookups the panels draw from."""

# No `from __future__ import annotations`: Blender reads the property definitions from real annotation objects.

import math
import zlib
from pathlib import Path
from typing import Any

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from ..core.parameters import current_values
from ..core.paths import builtin_presets_dir, user_presets_dir
from ..core.preset_library import list_presets, resolve_preset
from ..core.preset_model import MAX_FRAMES, MAX_RESOLUTION, Preset
from .export_panel import VDBForgeExportProperties
from .iterate_panel import VDBForgeIterateProperties
from .score_panel import VDBForgeScoreProperties

# Blender keeps only borrowed pointers to the strings of dynamic enum items; Python must hold the list or the UI
# shows garbage (or crashes). The list is rebuilt only when a preset file changes, since the callback runs per redraw.
DEFAULT_PRESET = "smoke_plume"  # a built-in one, so a new scene starts with something to build

_PRESET_ITEMS: list[tuple[str, str, str, str, int]] = []
_items_signature: tuple | None = None
_preset_cache: dict[str, tuple[tuple, Preset]] = {}


def _library_signature() -> tuple:
    """Changes whenever a preset file is added, removed or edited."""
    entries = []
    for folder in (builtin_presets_dir(), user_presets_dir()):
        for path in sorted(Path(folder).glob("*.json")):
            stat = path.stat()
            entries.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


def _enum_number(preset_id: str) -> int:
    # The scene stores the item's number, not its identifier: a stable number per id keeps the selection when a
    # preset is added that sorts before it.
    return zlib.crc32(preset_id.encode("utf-8")) & 0x7FFFFFFF


def preset_items(_self: bpy.types.PropertyGroup | None, _context: bpy.types.Context | None) -> list[tuple]:
    global _items_signature
    signature = _library_signature()
    if signature != _items_signature:
        entries = list_presets()
        _PRESET_ITEMS[:] = [
            (
                e.id,
                e.name,
                f"{e.family} / {e.kind}" + (" (user preset)" if e.source == "user" else ""),
                "USER" if e.source == "user" else "NONE",
                _enum_number(e.id),
            )
            for e in entries
        ]
        _items_signature = signature
    return _PRESET_ITEMS


def selected_preset(props: "VDBForgeSceneProperties") -> Preset | None:
    """The chosen preset as stored on disk (no run options applied); None when nothing is selected.

    Raises PresetError if the file became invalid, so the caller can show why.
    """
    preset_id = props.preset
    if not preset_id:
        return None
    signature = _library_signature()
    cached = _preset_cache.get(preset_id)
    if cached is None or cached[0] != signature:
        _preset_cache[preset_id] = (signature, resolve_preset(preset_id))
    return _preset_cache[preset_id][1]


def _get_factor(item: "VDBForgeTunable") -> float:
    lo, hi, value = item.min, item.max, item.value
    if item.log_scale:
        lo, hi, value = math.log(lo), math.log(hi), math.log(max(value, item.min))
    return min(1.0, max(0.0, (value - lo) / (hi - lo))) if hi > lo else 0.0


def _set_factor(item: "VDBForgeTunable", factor: float) -> None:
    lo, hi = item.min, item.max
    value = (
        math.exp(math.log(lo) + factor * (math.log(hi) - math.log(lo))) if item.log_scale else lo + factor * (hi - lo)
    )
    item.value = round(value) if item.is_int else value


class VDBForgeTunable(bpy.types.PropertyGroup):
    """One numeric tunable of the selected preset, editable in the Preset panel and applied as an override."""

    path: StringProperty(name="Path", description="Dotted path of the tunable in the preset")
    label: StringProperty(name="Label")
    stage: StringProperty(name="Stage", description="Whether changing it needs a new bake or only a re-render")
    value: FloatProperty(name="Value", description="Value used for the next bake (checked against its range)")
    min: FloatProperty(name="Min")
    max: FloatProperty(name="Max")
    is_int: BoolProperty(name="Whole Number")
    log_scale: BoolProperty(name="Log Scale")
    # Blender's soft bounds are fixed per property, not per item: the slider edits the position inside this item's
    # own range instead, so every tunable gets a slider that cannot leave its bounds.
    factor: FloatProperty(
        name="Factor",
        description="Position of the value inside the tunable's range",
        min=0.0,
        max=1.0,
        subtype="FACTOR",
        get=_get_factor,
        set=_set_factor,
    )


def rebuild_tunables(props: "VDBForgeSceneProperties") -> None:
    """Refill `props.tunables` with the selected preset's numeric tunables at their preset values.

    Categorical tunables keep their preset value (an enum per item is not possible with one property group).
    """
    props.tunables.clear()
    props.tunables_preset = ""
    preset = selected_preset(props)
    if preset is None:
        return
    values = current_values(preset)
    for tunable in preset.parameters:
        if tunable.choices is not None:
            continue
        item = props.tunables.add()
        value = values[tunable.path]
        item.path, item.label, item.stage = tunable.path, tunable.label or tunable.path, tunable.stage
        item.min, item.max, item.value = float(tunable.min), float(tunable.max), float(value)
        item.is_int = isinstance(value, int) and not isinstance(value, bool)
        item.log_scale = tunable.scale == "log"
    props.tunables_preset = preset.id


def tunable_overrides(props: "VDBForgeSceneProperties") -> dict[str, Any]:
    """The edited tunables that differ from the preset, ready for `apply_overrides` (which checks the bounds)."""
    if props.tunables_preset != props.preset:
        return {}
    preset = selected_preset(props)
    values = current_values(preset) if preset else {}
    overrides: dict[str, Any] = {}
    for item in props.tunables:
        # The property is single precision: 6 significant digits give back the number that was typed.
        value: Any = round(item.value) if item.is_int else float(f"{item.value:.6g}")
        if item.path in values and not math.isclose(value, values[item.path], rel_tol=1e-6, abs_tol=1e-9):
            overrides[item.path] = value
    return overrides


def _preset_changed(props: "VDBForgeSceneProperties", _context: bpy.types.Context) -> None:
    rebuild_tunables(props)


class VDBForgeSceneProperties(bpy.types.PropertyGroup):
    preset: EnumProperty(
        name="Preset",
        description="Preset to build, bake and render",
        items=preset_items,
        default=_enum_number(DEFAULT_PRESET),  # dynamic enums take the item number, not the identifier
        update=_preset_changed,
    )
    tunables: CollectionProperty(type=VDBForgeTunable)
    tunables_preset: StringProperty(
        name="Tunables Preset", description="Preset the tunables were filled from; they are stale when it differs"
    )
    progress: FloatProperty(name="Progress", min=0.0, max=1.0, subtype="FACTOR", default=0.0)
    status_text: StringProperty(name="Status", default="")
    running: BoolProperty(name="Running", description="A modal bake is running", default=False)
    contact_sheet: StringProperty(name="Contact Sheet", description="Preview image of the last render", default="")
    preview_image: StringProperty(name="Preview Image", description="Image data-block showing the contact sheet")
    resolution: IntProperty(
        name="Resolution",
        description="Voxels along the longest side of the simulation domain",
        default=32,
        min=8,
        max=MAX_RESOLUTION,
        soft_max=256,
    )
    frame_start: IntProperty(name="Start", description="First simulated frame", default=1, min=1, max=MAX_FRAMES)
    frame_end: IntProperty(name="End", description="Last simulated frame", default=48, min=1, max=MAX_FRAMES)
    angles: IntProperty(name="Angles", description="Camera angles rendered around the volume", default=4, min=1, max=16)
    output_dir: StringProperty(
        name="Output Folder",
        description="Where bakes and renders are written; empty uses the extension's user folder",
        default="",
        subtype="DIR_PATH",
    )
    export: PointerProperty(type=VDBForgeExportProperties)
    score: PointerProperty(type=VDBForgeScoreProperties)
    iterate: PointerProperty(type=VDBForgeIterateProperties)


classes = (VDBForgeTunable, VDBForgeSceneProperties)
