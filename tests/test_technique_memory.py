"""Technique memory: warm starts from remembered fits, crash regions, reference fingerprints, the `memory` command."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from vdbforge_addon.core import technique_memory as memory
from vdbforge_addon.core.errors import VDBForgeError
from vdbforge_addon.core.image_fingerprint import image_fingerprint, similarity

from . import synthetic_images
from .conftest import ROOT, run_cli

SPACE = ["domain.vorticity", "flows.0.fuel_amount", "domain.alpha"]


def _placed(picture: np.ndarray, dx: int = 0, dy: int = 0, size: int = 160) -> np.ndarray:
    """The picture shrunk onto a background canvas at an offset: a shifted copy with nothing wrapping around."""
    small = np.asarray(Image.fromarray(picture).resize((size, size), Image.Resampling.LANCZOS))
    canvas = np.empty((256, 256, 3), np.uint8)
    canvas[:] = np.clip(synthetic_images.BACKGROUND * 255.0 + 0.5, 0, 255).astype(np.uint8)
    canvas[48 + dy : 48 + dy + size, 48 + dx : 48 + dx + size] = small
    return canvas


def _fingerprint(tmp_path, name: str, picture: np.ndarray) -> list[float]:
    return image_fingerprint(synthetic_images.save(picture, tmp_path / f"{name}.png"))


def test_warm_start_moves_toward_high_scores_and_ignores_other_presets_and_spaces():
    memory.record_success("explosion", "fire", SPACE, [0.8, 0.7, 0.2], {"domain.vorticity": 0.8}, 0.9, None, "run-a")
    memory.record_success("explosion", "fire", SPACE, [0.7, 0.8, 0.3], {"domain.vorticity": 0.7}, 0.85, None, "run-b")
    memory.record_success("explosion", "fire", SPACE, [0.1, 0.1, 0.9], {"domain.vorticity": 0.1}, 0.3, None, "run-c")
    # Same run as run-a, lower score: a run contributes its best entry only.
    memory.record_success("explosion", "fire", SPACE, [0.0, 0.0, 0.0], {}, 0.5, None, "run-a")
    # Another preset, and the same preset over a different space: never used.
    memory.record_success("campfire", "fire", SPACE, [0.0, 0.0, 1.0], {}, 0.99, None, "run-d")
    memory.record_success("explosion", "fire", SPACE[:2], [0.0, 0.0], {}, 0.99, None, "run-e")

    start = memory.warm_start("explosion", SPACE, None)
    assert start is not None
    assert [e["run_id"] for e in start.entries] == ["run-a", "run-b", "run-c"]
    assert start.mean[0] > 0.6 and start.mean[1] > 0.6 and start.mean[2] < 0.4  # near the 0.9 / 0.85 entries
    assert memory.SIGMA_RANGE[0] <= start.sigma <= memory.SIGMA_RANGE[1]
    assert abs(sum(e["weight"] for e in start.entries) - 1.0) < 1e-3

    # The same space listed in another order matches, and the mean comes back in the caller's order.
    reordered = memory.warm_start("explosion", list(reversed(SPACE)), None)
    assert reordered.mean == pytest.approx(list(reversed(start.mean)))

    best_two = memory.warm_start("explosion", SPACE, None, k=2)
    assert [e["run_id"] for e in best_two.entries] == ["run-a", "run-b"]
    assert best_two.mean == pytest.approx([0.753, 0.747, 0.247], abs=0.01)
    assert best_two.sigma == memory.SIGMA_RANGE[0]  # two close entries: the spread is clipped up to the minimum

    assert memory.warm_start("smoke", SPACE, None) is None
    assert memory.warm_start("explosion", [*SPACE, "domain.beta"], None) is None


def test_warm_start_prefers_entries_fitted_to_a_similar_reference(tmp_path):
    plume = _fingerprint(tmp_path, "plume", _placed(synthetic_images.plume()))
    fog = _fingerprint(tmp_path, "fog", _placed(synthetic_images.fog_bank()))
    memory.record_success("smoke", "smoke", SPACE, [0.9, 0.9, 0.9], {}, 0.8, plume, "plume-run")
    memory.record_success("smoke", "smoke", SPACE, [0.1, 0.1, 0.1], {}, 0.95, fog, "fog-run")

    for_plume = memory.warm_start("smoke", SPACE, plume)
    assert [e["run_id"] for e in for_plume.entries] == ["plume-run"]  # the fog fit is too unlike to count
    assert for_plume.mean == pytest.approx([0.9, 0.9, 0.9])
    assert for_plume.sigma == memory.SINGLE_ENTRY_SIGMA
    assert memory.warm_start("smoke", SPACE, fog).entries[0]["run_id"] == "fog-run"
    # Without a reference fingerprint, score alone decides.
    assert memory.warm_start("smoke", SPACE, None).entries[0]["run_id"] == "fog-run"


def test_fingerprint_similarity_orders_same_shifted_different(tmp_path):
    base = _fingerprint(tmp_path, "base", _placed(synthetic_images.plume()))
    same = _fingerprint(tmp_path, "same", _placed(synthetic_images.plume()))
    shifted = _fingerprint(tmp_path, "shifted", _placed(synthetic_images.plume(), dx=-45, dy=-40))
    recoloured = _fingerprint(tmp_path, "blue", _placed(synthetic_images.plume(color=(0.2, 0.4, 1.0))))
    different = _fingerprint(tmp_path, "fog", _placed(synthetic_images.fog_bank()))

    s_same, s_shift, s_blue, s_diff = (similarity(base, f) for f in (same, shifted, recoloured, different))
    assert s_same == pytest.approx(1.0, abs=1e-4)
    assert s_same > s_shift > s_blue > s_diff
    assert s_shift > 0.9 and s_diff < memory.MIN_SIMILARITY
    assert similarity(base, different) == pytest.approx(similarity(different, base))
    assert all(isinstance(v, float) for v in base)

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    with pytest.raises(VDBForgeError, match="cannot read reference .*broken.png"):
        image_fingerprint(broken)


def test_failure_signatures_normalise_numbers_and_paths():
    first = "RuntimeError: grid 64 out of bounds at /tmp/tmpa1b2/cache/density_0012.uni (0x7f3a2b); retrying"
    second = "RuntimeError: grid 128 out of bounds at /home/ann/.cache/job-3f2a1b9c/density_0099.uni (0x55aa)\nTrace"
    assert (
        memory.error_signature(first)
        == memory.error_signature(second)
        == "RuntimeError: grid # out of bounds at <path>"
    )
    assert memory.error_signature("worker timed out after 600.0 s") != memory.error_signature(first)

    memory.record_failure("explosion", SPACE, [0.9, 0.9, 0.9], "mantaflow", first)
    memory.record_failure("explosion", SPACE, [0.8, 0.95, 0.76], "mantaflow", second)  # same grid cell
    memory.record_failure("explosion", SPACE, [0.9, 0.9, 0.9], "timeout", "worker timed out after 600.0 s")
    rows = memory.list_entries("failures", "explosion")
    assert [(r["kind"], r["count"]) for r in rows] == [("mantaflow", 2), ("timeout", 1)]
    assert rows[0]["signature"] == "RuntimeError: grid # out of bounds at <path>"
    assert rows[0]["region"] == [3, 3, 3] and rows[0]["example"].startswith("RuntimeError: grid 128")
    assert rows[0]["space_paths"] == sorted(SPACE)


def test_failure_risk_higher_near_recorded_crashes():
    for x in ([0.9, 0.9, 0.1], [0.95, 0.8, 0.2], [0.85, 0.9, 0.05]):
        memory.record_failure("explosion", SPACE, x, "mantaflow", "Mantaflow: NaN in velocity at frame 12")
    at = memory.failure_risk("explosion", SPACE, [0.92, 0.88, 0.1])
    beside = memory.failure_risk("explosion", SPACE, [0.6, 0.88, 0.1])
    far = memory.failure_risk("explosion", SPACE, [0.1, 0.1, 0.9])
    assert at == pytest.approx(1 - 0.5**3)
    assert at > beside > far == 0.0
    assert memory.failure_risk("campfire", SPACE, [0.92, 0.88, 0.1]) == 0.0
    # The same space in another order is the same grid.
    assert memory.failure_risk("explosion", list(reversed(SPACE)), [0.1, 0.88, 0.92]) == at


def test_cli_list_export_clear(tmp_path):
    memory.record_success("explosion", "fire", SPACE, [0.5, 0.5, 0.5], {"domain.vorticity": 0.25}, 0.8, [1.0], "r1")
    memory.record_success("campfire", "fire", SPACE, [0.2, 0.2, 0.2], {"domain.vorticity": 0.1}, 0.7, None, "r2")
    memory.record_failure("explosion", SPACE, [0.9, 0.9, 0.9], "killed", "worker killed by signal 9")

    listed = run_cli("memory", "list", timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert "explosion" in listed.stdout and "campfire" in listed.stdout and "domain.vorticity=0.25" in listed.stdout
    only = json.loads(run_cli("memory", "list", "--preset", "campfire", "--json", timeout=60).stdout)
    assert [e["run_id"] for e in only["successes"]] == ["r2"] and only["successes"][0]["fingerprint"] is False
    failures = json.loads(run_cli("memory", "list", "--failures", "--json", timeout=60).stdout)["failures"]
    assert failures[0]["signature"] == "worker killed by signal #" and failures[0]["count"] == 1

    out = tmp_path / "shared" / "memory.json"
    exported = run_cli("memory", "export", "--out", str(out), timeout=60)
    assert exported.returncode == 0, exported.stderr
    data = json.loads(out.read_text())
    assert len(data["successes"]) == 2 and len(data["failures"]) == 1
    by_preset = {e["preset_id"]: e for e in data["successes"]}
    assert by_preset["explosion"]["fingerprint"] == [1.0]  # the export keeps everything
    assert by_preset["explosion"]["params"] == {"domain.vorticity": 0.25} and by_preset["explosion"]["x"] == [0.5] * 3
    assert not list(out.parent.glob(".*.tmp"))

    cleared = run_cli("memory", "clear", "--preset", "explosion", timeout=60)
    assert cleared.returncode == 0 and "removed 2 rows" in cleared.stdout
    assert [e["preset_id"] for e in memory.list_entries()] == ["campfire"]
    everything = run_cli("memory", "clear", "--all", "--json", timeout=60)
    assert json.loads(everything.stdout)["removed"] == 1
    assert memory.list_entries() == [] and memory.list_entries("failures") == []

    refused = run_cli("memory", "clear", timeout=60)
    assert refused.returncode == 2 and "--all" in refused.stderr and len(refused.stderr.strip().splitlines()) == 1


_WRITER = """
import sys, time
from pathlib import Path
from vdbforge_addon.core import technique_memory as m
while not Path(sys.argv[2]).exists():
    time.sleep(0.005)
for i in range(50):
    m.record_success("explosion", "fire", ["a", "b"], [i / 50, 0.5], {"a": i}, 0.5, None, sys.argv[1])
"""


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    go = tmp_path / "go"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, run, str(go)],
            cwd=ROOT,
            env=dict(os.environ),
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for run in ("w1", "w2")
    ]
    time.sleep(0.5)  # both interpreters up and polling, so they start together on a database that does not exist yet
    go.touch()
    outputs = [w.communicate(timeout=120) for w in writers]
    for w, (_, err) in zip(writers, outputs, strict=True):
        assert w.returncode == 0 and "locked" not in err, err
    rows = memory.list_entries("successes", "explosion")
    assert len(rows) == 100
    assert sorted({r["run_id"] for r in rows}) == ["w1", "w2"]


def test_corrupt_database_is_one_line_error_and_clear_all_moves_it_aside():
    path = memory.memory_path()
    path.write_bytes(b"this is not sqlite at all, just some bytes " * 50)
    with pytest.raises(memory.MemoryDatabaseError, match="clear --all") as caught:
        memory.warm_start("explosion", SPACE, None)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)

    listed = run_cli("memory", "list", timeout=60)
    assert listed.returncode == 1
    assert listed.stderr.strip().splitlines() == [f"vdbforge: error: {caught.value}"]

    reset = run_cli("memory", "clear", "--all", timeout=60)
    assert reset.returncode == 0, reset.stderr
    aside = list(path.parent.glob("memory.sqlite.corrupt-*"))
    assert len(aside) == 1 and str(aside[0]) in reset.stdout
    assert aside[0].read_bytes().startswith(b"this is not sqlite")
    memory.record_success("explosion", "fire", SPACE, [0.5, 0.5, 0.5], {}, 0.8, None, "after-reset")
    assert len(memory.list_entries()) == 1


def test_database_from_a_newer_schema_is_refused():
    memory.clear_memory()  # creates the database
    with sqlite3.connect(memory.memory_path()) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (memory.SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(memory.MemoryDatabaseError, match="newer than this VDBForge") as caught:
        memory.list_entries()
    assert "\n" not in str(caught.value)


def test_bad_vectors_are_refused():
    with pytest.raises(VDBForgeError, match="2 values for 3 parameters"):
        memory.record_success("explosion", "fire", SPACE, [0.5, 0.5], {}, 0.8, None, "r")
    with pytest.raises(VDBForgeError, match="distinct paths"):
        memory.record_failure("explosion", ["a", "a"], [0.5, 0.5], "python", "boom")
    with pytest.raises(VDBForgeError, match="non-finite"):
        memory.failure_risk("explosion", SPACE, [0.5, float("nan"), 0.5])
