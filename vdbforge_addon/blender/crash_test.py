"""Deliberate failures, so tests can prove every way a worker dies reaches the parent as a structured failure.

`unrepaired_bake` is the real thing: a Mantaflow bake in the module build without the repair aborts the process.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from pathlib import Path
from typing import Any

from ..core.protocol import Emitter


def _unrepaired_bake(job: dict[str, Any]) -> None:
    from ..core.parameters import validate_preset
    from .bake import bake_domain
    from .gas_scene import build_gas_scene
    from .scene_reset import reset_to_empty_scene

    preset = validate_preset(job["preset"], "crash-test preset")
    scene = reset_to_empty_scene()
    domain = build_gas_scene(scene, preset, Path(job["cache_dir"]))
    bake_domain(domain)


def run_crash_test(job: dict[str, Any], emit: Emitter) -> dict[str, Any]:
    mode = job["mode"]
    emit.status("crash-test", mode)
    if mode == "exception":
        raise ValueError("deliberate failure for a test")
    if mode == "abort":
        os.abort()
    if mode == "segfault":
        ctypes.string_at(0)
    if mode == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "hang":
        time.sleep(3600)
    if mode == "exit":
        os._exit(3)
    if mode == "unrepaired_bake":
        _unrepaired_bake(job)
    if mode == "ok":
        return {"echo": job.get("echo")}
    raise ValueError(f"unknown crash-test mode {mode!r}")
