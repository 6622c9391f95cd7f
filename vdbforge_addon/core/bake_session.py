"""A render job (build → bake → export → preview) driven one non-blocking `step()` at a time.

Modal operators call `step()` from a timer; headless code and tests call it in a loop. The job layout is
`render_run`'s (`build_render_job`), and success publishes into the output folder exactly as `run_render` does.

Cancel keeps what finished: the worker is killed, then (with `keep_cache`) the cache frames it had reported as baked
are moved from the staging folder to `<out>/cache` before the staging folder is removed. Frames past the last
reported one are deleted there, since the kill may have interrupted their writing.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .preset_model import Preset
from .render_run import RenderOptions, build_render_job, describe_render, resolve_render_preset
from .worker_client import WorkerCommand
from .worker_session import SessionState, StagedWorker, run_until_done

# Share of the whole run each worker stage covers, so one bar can rise steadily across stages.
STAGE_WEIGHTS = {"start": 0.0, "setup": 0.02, "build": 0.03, "bake": 0.55, "export": 0.15, "render": 0.25}
_FRAME_RE = re.compile(r"_(\d{4,})\.\w+$")


@dataclass
class StepState(SessionState):
    kept_cache: str | None = None
    baked_frames: int = 0  # frames the bake had finished by the last progress message


def _overall(stage: str, done: int, total: int) -> float:
    stages = list(STAGE_WEIGHTS)
    before = sum(STAGE_WEIGHTS[s] for s in stages[: stages.index(stage)]) if stage in STAGE_WEIGHTS else 0.0
    part = STAGE_WEIGHTS.get(stage, 0.0) * (done / total if total else 0.0)
    return min(1.0, before + part)


class BakeSession:
    """One worker running one render job into `out`; nothing is published unless it succeeds (or is cancelled)."""

    def __init__(
        self,
        preset: Preset,
        out: str | os.PathLike,
        options: RenderOptions,
        *,
        command: WorkerCommand | None = None,
        extra_sys_path: list[str] | None = None,
    ) -> None:
        self.resolved = resolve_render_preset(preset, options)
        self.options = options
        self.state = StepState(message="starting the worker")
        self.worker = StagedWorker(
            out,
            lambda stage: build_render_job(self.resolved, stage, options),
            timeout=options.timeout,
            command=command,
            extra_sys_path=extra_sys_path,
        )
        self.out, self.stage = self.worker.out, self.worker.stage

    @property
    def cache_dir(self) -> Path:
        """Where the cache ends up once the session is over (finished with `keep_cache`, or cancelled)."""
        return self.out / "cache"

    def step(self) -> StepState:
        """Take in the worker's new messages and, once it has ended, publish or clean up. Never blocks."""
        if not self.state.running:
            return self.state
        for message in self.worker.new_messages():
            self._take(message)
        self.worker.settle(self.state, lambda r: describe_render(self.resolved, self.options, r))
        return self.state

    def _take(self, message: dict[str, Any]) -> None:
        kind, stage = message.get("type"), message.get("stage")
        if kind == "status" and stage:
            self.state.stage, self.state.done, self.state.total = stage, 0, 0
            self.state.message = message.get("message") or stage
        elif kind == "progress" and stage:
            self.state.stage, self.state.done, self.state.total = stage, message["done"], message["total"]
            self.state.message = f"{stage} {message['done']}/{message['total']}"
            if stage == "bake":
                self.state.baked_frames = int(message["done"])
        else:
            return
        self.state.fraction = max(self.state.fraction, _overall(self.state.stage, self.state.done, self.state.total))

    def cancel(self) -> StepState:
        """Stop the worker now; with `keep_cache`, move the frames baked so far to `<out>/cache`."""
        if not self.state.running:
            return self.state
        # Progress that arrived before the kill still counts toward what was baked.
        for message in self.worker.stop():
            self._take(message)
        try:
            if self.options.keep_cache:
                self.state.kept_cache = self._keep_partial_cache()
        finally:
            self.worker.close()
        self.state.cancelled = True
        kept = (
            f"; {self.state.baked_frames} baked frame(s) kept in {self.state.kept_cache}"
            if self.state.kept_cache
            else ""
        )
        self.state.message = f"cancelled during {self.state.stage}{kept}"
        return self.state

    def _keep_partial_cache(self) -> str | None:
        staged = self.stage / "cache"
        if not staged.is_dir() or self.state.baked_frames < 1:
            return None
        last = self.resolved.domain.frame_start + self.state.baked_frames - 1
        for path in staged.rglob("*"):
            match = _FRAME_RE.search(path.name)
            if path.is_file() and match and int(match.group(1)) > last:
                path.unlink()
        target = self.cache_dir
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        os.replace(staged, target)
        return str(target)

    def run_to_end(self, interval: float = 0.1) -> StepState:
        """The same step loop, blocking: for EXEC operators and scripts."""
        return run_until_done(self.step, interval)
