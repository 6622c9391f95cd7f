"""Where VDBForge keeps user data: $VDBFORGE_HOME headless, the extension's user folder inside Blender."""

from __future__ import annotations

import os
from pathlib import Path

_user_dir_provider = None


def set_user_dir_provider(provider) -> None:
    """Inside Blender, register() installs a callable returning `bpy.utils.extension_path_user(...)`."""
    global _user_dir_provider
    _user_dir_provider = provider


def user_data_dir() -> Path:
    env = os.environ.get("VDBFORGE_HOME")
    if env:
        path = Path(env)
    elif _user_dir_provider is not None:
        path = Path(_user_dir_provider())
    else:
        base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
        path = Path(base) / "vdbforge"
    path.mkdir(parents=True, exist_ok=True)
    return path


def user_presets_dir() -> Path:
    path = user_data_dir() / "presets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def builtin_presets_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "presets"
