"""What every step-driven pool of workers (match candidates, dataset samples) does the same way."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import Any


def run_steps(step: Callable[[], Any], on_update: Callable[[Any], None] | None = None, interval: float = 0.2) -> Any:
    """Call `step()` until its state says finished, reporting each state; for the CLI and EXEC operators."""
    while not (state := step()).finished:
        if on_update:
            on_update(state)
        time.sleep(interval)
    if on_update:
        on_update(state)
    return state


def stop_workers(running: dict[int, Any]) -> None:
    """Kill every running worker (items with `.handle` and `.stage`), wait for them, drop their staging folders."""
    for item in running.values():
        item.handle.cancel()
    for item in running.values():
        item.handle.wait()
        shutil.rmtree(item.stage, ignore_errors=True)
    running.clear()
