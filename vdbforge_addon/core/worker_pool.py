"""What every step-driven pool of workers (match candidates, dataset samples) does the same way."""

from __future__ import annotations

import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .worker_client import WorkerCommand, WorkerHandle


@dataclass(kw_only=True)
class PoolWorker:
    """One worker of a pool: the item it works on, its staging folder, its process, and its last progress line."""

    index: int
    stage: Path
    handle: WorkerHandle | None = None
    progress: str = ""

    def start(
        self,
        job: dict[str, Any],
        *,
        timeout: float | None,
        command: WorkerCommand | None,
        extra_sys_path: list[str] | None,
    ) -> None:
        self.handle = WorkerHandle(
            job, self.stage / "job.json", timeout=timeout, on_message=self._on_message, command=command,
            log_path=self.stage / "worker.log", extra_sys_path=extra_sys_path,
        )  # fmt: skip

    @property
    def label(self) -> str:
        """'#index stage done/total', as the panels and the terminal list running workers."""
        return f"#{self.index} {self.progress}".strip()

    def _on_message(self, message: dict[str, Any]) -> None:
        if message.get("type") == "status":
            self.progress = message.get("stage", "")
        elif message.get("type") == "progress":
            self.progress = f"{message['stage']} {message['done']}/{message['total']}"


def collect_finished(running: dict[int, Any]) -> list[tuple[Any, Any]]:
    """(worker, outcome) of every worker in `running` whose process has ended; those leave `running`."""
    finished = []
    for index, item in list(running.items()):
        outcome = item.handle.poll()
        if outcome is not None:
            del running[index]
            finished.append((item, outcome))
    return finished


def run_steps(
    step: Callable[[], Any],
    on_update: Callable[[Any], None] | None = None,
    interval: float = 0.2,
    cancel: Callable[[], None] | None = None,
) -> Any:
    """Call `step()` until its state says finished, reporting each state; for the CLI and EXEC operators.

    With `cancel`, Ctrl-C (SIGINT) cancels. The handler only raises a flag and `cancel()` runs between steps: run
    from inside the handler it could interrupt a half-done launch, whose worker would then start after the cancel
    and leave its staging folder behind."""
    # A plain list, not a threading.Event: Event.set() from a handler can deadlock on the lock its own wait() holds.
    interrupted: list[bool] = []
    previous = None
    if cancel is not None and threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, lambda *_: interrupted.append(True))
    try:
        while not (state := step()).finished:
            if on_update:
                on_update(state)
            if not interrupted:
                time.sleep(interval)
            if interrupted:
                cancel()  # type: ignore[misc]
                state = step()
                break
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
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
