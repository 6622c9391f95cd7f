"""What every step-driven worker session shares: the state a panel mirrors, and a worker writing into a staging folder.

`BakeSession` and `ExportSession` each own one `StagedWorker`: it starts the worker in a fresh staging folder inside
the output folder, hands over the messages that arrived since the last step, and once the worker has ended publishes
its output (success) or records its one-line failure, always removing the staging folder. Nothing here blocks except
`stop()` (which waits for the killed worker) and `run_until_done()`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import VDBForgeError
from .staged_run import close_stage, open_stage, publish_outcome
from .worker_client import WorkerCommand, WorkerHandle

Describe = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class SessionState:
    stage: str = "start"
    done: int = 0
    total: int = 0
    fraction: float = 0.0
    message: str = ""
    finished: bool = False
    failed: bool = False
    cancelled: bool = False
    result: dict[str, Any] | None = None
    error: str = ""

    @property
    def running(self) -> bool:
        return not (self.finished or self.failed or self.cancelled)


class StagedWorker:
    """One worker job whose output reaches `out` only through `settle()` on success."""

    def __init__(
        self,
        out: str | os.PathLike,
        make_job: Callable[[Path], dict[str, Any]],
        *,
        timeout: float | None = None,
        command: WorkerCommand | None = None,
        extra_sys_path: list[str] | None = None,
    ) -> None:
        self.started = time.perf_counter()
        self.out, self.stage, self._existed = open_stage(out)
        try:
            self.handle = WorkerHandle(
                make_job(self.stage),
                self.stage / "job.json",
                timeout=timeout,
                command=command,
                log_path=self.stage / "worker.log",
                extra_sys_path=extra_sys_path,
            )
        except BaseException:
            self.close()
            raise
        self._seen = 0

    def new_messages(self) -> list[dict[str, Any]]:
        """The worker's messages that arrived since the last call."""
        messages = self.handle.messages
        new, self._seen = messages[self._seen : len(messages)], len(messages)
        return new

    def settle(self, state: SessionState, describe: Describe) -> bool:
        """False while the worker runs; once it has ended, publish (state finished) or record why not (state failed)."""
        outcome = self.handle.poll()
        if outcome is None:
            return False
        try:
            state.result = publish_outcome(outcome, self.stage, self.out, describe, self.started)
            state.finished, state.fraction, state.stage, state.message = True, 1.0, "done", "finished"
        except VDBForgeError as exc:
            state.failed, state.error = True, " ".join(str(exc).split())
            state.message = state.error
        finally:
            self.close()
        return True

    def stop(self) -> list[dict[str, Any]]:
        """Kill the worker and wait for it; returns the messages it sent before dying that were not handed out yet.

        The staging folder is left for the caller to salvage from, then `close()`."""
        self.handle.cancel()
        messages = self.handle.wait().messages
        new, self._seen = messages[self._seen :], len(messages)
        return new

    def close(self) -> None:
        """Remove the staging folder (and the output folder if this run created it and it stayed empty)."""
        close_stage(self.stage, self.out, self._existed)


def run_until_done(step: Callable[[], SessionState], interval: float = 0.1) -> SessionState:
    """A session's step loop, blocking: for EXEC operators and scripts."""
    while (state := step()).running:
        time.sleep(interval)
    return state
