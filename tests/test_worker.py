"""A worker's death in any form (exception, abort, segfault, kill, hang, Mantaflow abort) is a structured failure
and the parent carries on."""

from __future__ import annotations

import pytest

from vdbforge_addon.core.preset_library import resolve_preset
from vdbforge_addon.core.render_run import RenderOptions, resolve_render_preset
from vdbforge_addon.core.worker_client import WorkerHandle, run_worker

FAILURE_KEYS = {"kind", "message", "file", "line", "stderr_tail"}


def _crash(tmp_path, mode, timeout=60.0, **extra):
    return run_worker({"kind": "crash-test", "mode": mode, **extra}, tmp_path / "job.json", timeout=timeout)


def test_successful_worker_returns_its_result(tmp_path):
    outcome = _crash(tmp_path, "ok", echo=[1, 2])
    assert outcome.ok and outcome.result == {"echo": [1, 2]} and outcome.returncode == 0


@pytest.mark.parametrize(
    ("mode", "kind", "needle"),
    [
        ("exception", "python", "ValueError: deliberate failure"),
        ("abort", "blender", "SIGABRT"),
        ("segfault", "blender", "signal 11"),
        ("sigkill", "killed", "SIGKILL"),
        ("exit", "python", "exited with status 3"),
    ],
)
def test_worker_deaths_are_classified(tmp_path, mode, kind, needle):
    outcome = _crash(tmp_path, mode)
    assert not outcome.ok
    assert set(outcome.failure) >= FAILURE_KEYS
    assert outcome.failure["kind"] == kind, outcome.failure
    assert needle in outcome.failure["message"]


def test_python_failure_names_file_and_line(tmp_path):
    failure = _crash(tmp_path, "exception").failure
    assert failure["file"] == "crash_test.py" and isinstance(failure["line"], int)


def test_hanging_worker_is_stopped_at_its_timeout(tmp_path):
    outcome = _crash(tmp_path, "hang", timeout=3.0)
    assert outcome.failure["kind"] == "timeout"
    assert outcome.seconds < 30


def test_cancel_stops_a_running_worker(tmp_path):
    handle = WorkerHandle({"kind": "crash-test", "mode": "hang"}, tmp_path / "job.json")
    assert handle.poll() is None
    handle.cancel()
    outcome = handle.wait()
    assert outcome.failure["kind"] == "cancelled"


def test_real_mantaflow_abort_without_the_repair_is_a_mantaflow_failure(tmp_path):
    """The unrepaired module build really aborts inside Mantaflow; the parent must say so and survive."""
    preset = resolve_render_preset(resolve_preset("smoke_plume"), RenderOptions(resolution=12, frames=(1, 3, 1)))
    outcome = _crash(
        tmp_path, "unrepaired_bake", timeout=120, preset=preset.model_dump(mode="json"), cache_dir=str(tmp_path / "c")
    )
    assert not outcome.ok
    assert outcome.failure["kind"] == "mantaflow", outcome.failure
    assert "Manta" in outcome.failure["stderr_tail"] or "manta" in outcome.failure["stderr_tail"]
