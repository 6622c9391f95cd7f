"""Parent side of `export`: re-export a kept cache (render --keep-cache) with other grids, precision or NanoVDB."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .errors import VDBForgeError
from .parameters import validate_preset
from .staged_run import run_staged_job
from .worker_client import OnMessage, WorkerCommand

CACHE_PRESET_FILE = "vdbforge_preset.json"  # written into the cache by the worker's render job


def run_export(
    cache: str | os.PathLike,
    out: str | os.PathLike,
    export: dict[str, Any],
    frames: tuple[int, int, int] | None = None,
    *,
    timeout: float | None = None,
    on_message: OnMessage | None = None,
    command: WorkerCommand | None = None,
) -> dict[str, Any]:
    cache = Path(cache).expanduser().absolute()
    if not cache.is_dir():
        raise VDBForgeError(f"cache folder '{cache}' does not exist")
    preset_file = cache / CACHE_PRESET_FILE
    if not preset_file.is_file():
        raise VDBForgeError(f"'{cache}' is not a VDBForge cache (no {CACHE_PRESET_FILE}; render with --keep-cache)")
    data = json.loads(preset_file.read_text(encoding="utf-8"))
    data["export"] = {**data.get("export", {}), **export}
    preset = validate_preset(data, "export settings")

    def make_job(stage: Path) -> dict[str, Any]:
        return {
            "kind": "export",
            "cache_dir": str(cache),
            "out_dir": str(stage),
            "preset": preset.model_dump(mode="json"),
            "frames": frames,
        }

    return run_staged_job(
        out, make_job, lambda result: {"cache": str(cache), **result}, timeout=timeout, on_message=on_message,
        command=command,
    )  # fmt: skip
