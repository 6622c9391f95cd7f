"""Run one worker job whose output appears in a folder only if the job succeeds.

The worker writes into a hidden staging folder inside the output folder (same filesystem, so publishing is a rename);
on success `result.json` is written and the staged items replace their namesakes in the output folder; on any failure
the staging folder is removed and the output folder keeps exactly what it had.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .atomic import check_writable_dir, write_json
from .errors import VDBForgeError, WorkerFailure
from .worker_client import OnMessage, WorkerCommand, WorkerHandle, WorkerOutcome

STAGING_PREFIX = ".vdbforge-staging-"


def _publish(stage: Path, out: Path) -> None:
    for item in stage.iterdir():
        target = out / item.name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        os.replace(item, target)


def _relocate(value: Any, stage: Path, out: Path) -> Any:
    """Paths the worker reported inside the staging folder, rewritten to where they now live."""
    if isinstance(value, str) and value.startswith(str(stage)):
        return str(out / Path(value).relative_to(stage))
    if isinstance(value, list):
        return [_relocate(v, stage, out) for v in value]
    if isinstance(value, dict):
        return {k: _relocate(v, stage, out) for k, v in value.items()}
    return value


def open_stage(out: str | os.PathLike) -> tuple[Path, Path, bool]:
    """The absolute output folder, a fresh staging folder inside it, and whether the output folder existed before."""
    out = Path(out).expanduser().absolute()
    existed = out.exists()
    if existed and not out.is_dir():
        raise VDBForgeError(f"output path '{out}' exists and is not a folder")
    check_writable_dir(out)
    return out, Path(tempfile.mkdtemp(dir=out, prefix=STAGING_PREFIX)), existed


def publish_outcome(
    outcome: WorkerOutcome,
    stage: Path,
    out: Path,
    describe: Callable[[dict[str, Any]], dict[str, Any]],
    started: float,
) -> dict[str, Any]:
    """Raise the worker's failure, or write `result.json` and move the staged items into `out`."""
    if not outcome.ok:
        raise WorkerFailure(outcome.failure or {"kind": "python", "message": "worker ended without a result"})
    (stage / "job.json").unlink()
    worker_result = dict(outcome.result or {})
    timings = dict(worker_result.pop("timings", {}))
    timings["total"] = time.perf_counter() - started
    result = _relocate({**describe(worker_result), "timings": timings}, stage, out)
    write_json(stage / "result.json", result)
    _publish(stage, out)
    return result


def close_stage(stage: Path, out: Path, existed: bool) -> None:
    """Remove the staging folder, and the output folder too if this run created it and left it empty."""
    shutil.rmtree(stage, ignore_errors=True)
    if not existed and out.is_dir() and not any(out.iterdir()):
        out.rmdir()


def run_staged_job(
    out: str | os.PathLike,
    make_job: Callable[[Path], dict[str, Any]],
    describe: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    timeout: float | None = None,
    on_message: OnMessage | None = None,
    command: WorkerCommand | None = None,
    extra_sys_path: list[str] | None = None,
    started_hook: Callable[[WorkerHandle], None] | None = None,
) -> dict[str, Any]:
    """`make_job(stage)` builds the job; `describe(worker_result)` shapes what goes into `out/result.json`."""
    wall = time.perf_counter()
    out, stage, existed = open_stage(out)
    try:
        handle = WorkerHandle(
            make_job(stage),
            stage / "job.json",
            timeout=timeout,
            on_message=on_message,
            command=command,
            log_path=stage / "worker.log",
            extra_sys_path=extra_sys_path,
        )
        if started_hook:
            started_hook(handle)
        return publish_outcome(handle.wait(), stage, out, describe, wall)
    finally:
        close_stage(stage, out, existed)
