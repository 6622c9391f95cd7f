"""Per-scene VDBForge settings (`scene.vdbforge`) and the cached preset lookups the panels draw from."""

# No `from __future__ import annotations`: Blender reads the property definitions from real annotation objects.

import zlib
from pathlib import Path

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty

from ..core.paths import builtin_presets_dir, user_presets_dir
from ..core.preset_library import list_presets, resolve_preset
from ..core.preset_model import MAX_FRAMES, MAX_RESOLUTION, Preset

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


class VDBForgeSceneProperties(bpy.types.PropertyGroup):
    preset: EnumProperty(
        name="Preset",
        description="Preset to build, bake and render",
        items=preset_items,
        default=_enum_number(DEFAULT_PRESET),  # dynamic enums take the item number, not the identifier
    )
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


classes = (VDBForgeSceneProperties,)
