"""Re-exporting a kept cache (what `vdbforge export` does) driven one non-blocking `step()` at a time.

The Export panel's modal operator calls `step()` from a timer; headless code and tests call it in a loop. The worker
writes into a staging folder inside the output folder; only a successful run is published there (`vdb/`, `nvdb/`,
`result.json`). A cancel kills the worker and removes the staging folder, so the output folder keeps exactly what it
had: a half-exported sequence mixed with an older one would be worse than either.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .errors import PresetError, VDBForgeError
from .export_run import CACHE_PRESET_FILE
from .parameters import format_validation_error, validate_preset
from .preset_model import MAX_FRAMES, ExportSettings
from .worker_client import WorkerCommand
from .worker_session import SessionState, StagedWorker, run_until_done

QUANTIZE_NONE = "none"


def export_overrides(
    *,
    grids: str = "",
    precision: str | None = None,
    compression: str | None = None,
    nanovdb: bool = False,
    nanovdb_codec: str | None = None,
    quantize: str = QUANTIZE_NONE,
    tolerance: float = 0.0,
) -> dict[str, Any]:
    """Panel-style settings as the `export` overrides `run_export` takes (the same keys the CLI options fill).

    Empty grids keep the cache preset's own list; NanoVDB settings count only with NanoVDB on; a tolerance of 0 (or
    any quantization but FpN) leaves the per-grid default."""
    overrides: dict[str, Any] = {}
    names = [g.strip() for g in grids.split(",") if g.strip()]
    if names:
        overrides["grids"] = names
    if precision:
        overrides["precision"] = precision
    if compression:
        overrides["compression"] = compression
    if nanovdb:
        overrides["nanovdb"] = True
        if nanovdb_codec:
            overrides["nanovdb_codec"] = nanovdb_codec
        if quantize != QUANTIZE_NONE:
            overrides["quantize"] = quantize
            if quantize == "fpn" and tolerance > 0:
                overrides["tolerance"] = tolerance
    return overrides


def settings_problem(overrides: dict[str, Any]) -> str:
    """Why these export settings cannot be written, in one line, or "" when they can (cheap: for panels to show)."""
    try:
        ExportSettings.model_validate(overrides)
    except ValidationError as exc:
        return format_validation_error(exc, "export settings")
    return ""


def read_cache_preset(cache: str | os.PathLike) -> tuple[Path, dict[str, Any]]:
    """The absolute cache folder and the preset its bake wrote into it, or a one-line reason it is not a kept cache."""
    cache = Path(cache).expanduser().absolute()
    if not cache.is_dir():
        raise VDBForgeError(f"cache folder '{cache}' does not exist")
    preset_file = cache / CACHE_PRESET_FILE
    if not preset_file.is_file():
        raise VDBForgeError(f"'{cache}' is not a VDBForge cache (no {CACHE_PRESET_FILE}; bake with the cache kept)")
    try:
        return cache, json.loads(preset_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PresetError(f"cannot read '{preset_file}': {exc}") from None


def latest_kept_cache(folder: str | os.PathLike) -> Path | None:
    """The most recently started kept cache among `folder/*/cache` (one per preset the bake panel wrote), if any."""
    found = Path(folder).glob(f"*/cache/{CACHE_PRESET_FILE}")
    newest = max(found, key=lambda p: p.stat().st_mtime_ns, default=None)
    return newest.parent if newest else None


def check_frames(frames: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
    """The frame range as the worker takes it (None: every cached frame), checked like the CLI's --frames."""
    if frames is None:
        return None
    start, end, step = (int(v) for v in frames)
    if not (1 <= start <= end <= MAX_FRAMES) or step < 1:
        raise PresetError(f"frames {start}:{end}:{step} must satisfy 1 <= start <= end <= {MAX_FRAMES} and step >= 1")
    return start, end, step


class ExportSession:
    """One worker re-exporting `cache` into `out`; nothing reaches `out` unless it succeeds."""

    def __init__(
        self,
        cache: str | os.PathLike,
        out: str | os.PathLike,
        export: dict[str, Any],
        frames: tuple[int, int, int] | None = None,
        *,
        timeout: float | None = None,
        command: WorkerCommand | None = None,
        extra_sys_path: list[str] | None = None,
    ) -> None:
        self.cache, data = read_cache_preset(cache)
        data["export"] = {**data.get("export", {}), **export}
        self.preset = validate_preset(data, "export settings")
        self.frames = check_frames(frames)
        self.state = SessionState(message="starting the worker")
        job = {
            "kind": "export",
            "cache_dir": str(self.cache),
            "preset": self.preset.model_dump(mode="json"),
            "frames": self.frames,
        }
        self.worker = StagedWorker(
            out,
            lambda stage: {**job, "out_dir": str(stage)},
            timeout=timeout,
            command=command,
            extra_sys_path=extra_sys_path,
        )
        self.out = self.worker.out

    def step(self) -> SessionState:
        """Take in the worker's new messages and, once it has ended, publish or clean up. Never blocks."""
        if not self.state.running:
            return self.state
        for message in self.worker.new_messages():
            self._take(message)
        self.worker.settle(self.state, lambda result: {"cache": str(self.cache), **result})
        return self.state

    def _take(self, message: dict[str, Any]) -> None:
        kind, stage = message.get("type"), message.get("stage")
        if kind == "status" and stage:
            self.state.stage = stage
            self.state.message = message.get("message") or stage
        elif kind == "progress" and stage == "export":
            done, total = int(message["done"]), int(message["total"])
            self.state.stage, self.state.done, self.state.total = stage, done, total
            self.state.fraction = max(self.state.fraction, done / total if total else 0.0)
            self.state.message = f"frame {done}/{total}"

    def cancel(self) -> SessionState:
        """Stop the worker now; whatever it had written is discarded with the staging folder."""
        if not self.state.running:
            return self.state
        try:
            for message in self.worker.stop():
                self._take(message)
        finally:
            self.worker.close()
        self.state.cancelled = True
        done = f" after {self.state.done}/{self.state.total} frames" if self.state.total else ""
        self.state.message = f"export cancelled{done}; nothing was written to {self.out}"
        return self.state

    def run_to_end(self, interval: float = 0.1) -> SessionState:
        """The same step loop, blocking: for EXEC operators and scripts."""
        return run_until_done(self.step, interval)
