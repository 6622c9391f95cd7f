"""The `openvdb` module that ships inside Blender (the only VDB library we use)."""

from __future__ import annotations

from types import ModuleType

from .runtime import enable_bundled_modules


def import_openvdb() -> ModuleType:
    enable_bundled_modules()
    try:
        import openvdb
    except ImportError as exc:
        raise RuntimeError(f"Error: Blender's bundled openvdb module cannot be imported ({exc})") from None
    return openvdb
