"""Where we run (real Blender or the pip `bpy` module build) and the fixes the module build needs before baking."""

from __future__ import annotations

import importlib.machinery
import sys
from pathlib import Path


def is_module_mode() -> bool:
    """True when Blender runs as the pip `bpy` module rather than as the Blender program.

    `bpy.app.module` says so directly, but bpy 4.2 lacks it. There, the telling sign is how `bpy` was imported: the
    module build's `bpy` is a compiled extension (`bpy/__init__.so` / `.pyd`), a real Blender's is the Python package
    in `scripts/modules`. (`bpy.app.binary_path` is empty in the module build, but scripts may set it there.)
    """
    import bpy

    module = getattr(bpy.app, "module", None)
    if module is not None:
        return bool(module)
    origin = getattr(bpy.__spec__, "origin", None) or ""
    return origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))


def bundled_site_packages() -> Path | None:
    """Blender's bundled site-packages (`openvdb`, `OpenImageIO`, `MaterialX`, `pxr`), or None if this build has none.

    In the wheel it is `bpy/<major.minor>/python/lib/python3.X/site-packages`, which is not on `sys.path` in module
    mode; a real Blender already has it there (or uses the system Python, then there is no such folder). The bpy 4.2.0
    wheel ships no such folder at all, so it has no `openvdb` module.
    """
    import bpy

    python_root = bpy.utils.system_resource("PYTHON")
    if not python_root:
        return None
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    path = Path(python_root) / "lib" / version / "site-packages"
    return path if path.is_dir() else None


def enable_bundled_modules() -> Path | None:
    """Make Blender's bundled modules importable; returns the folder added (or already present), None if none."""
    path = bundled_site_packages()
    if path is None:
        return None
    if str(path) not in sys.path:
        # Appended, not prepended: packages of the surrounding environment (numpy...) keep precedence over Blender's.
        sys.path.append(str(path))
    return path


def prepare_runtime() -> dict:
    """Everything a headless process needs before building and baking a fluid scene. Idempotent.

    Returns the Mantaflow repair report plus `module_mode`, `clean_exit` and `site_packages`.
    """
    # Imported here because manta_repair itself imports this module.
    from .manta_repair import ensure_mantaflow_ready, install_clean_exit

    site_packages = enable_bundled_modules()
    report = ensure_mantaflow_ready()
    return {
        **report,
        "module_mode": is_module_mode(),
        "clean_exit": install_clean_exit(),
        "site_packages": str(site_packages) if site_packages else None,
    }
