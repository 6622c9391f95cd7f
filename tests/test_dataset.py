"""`vdbforge dataset` on tiny real bakes: records and previews per sample, a SIGKILL mid-run resumed without redoing
or half-writing a sample, a torn index repaired from the samples themselves, failures recorded and skipped, the dry
run writing nothing, and a rerun with other settings refused."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import ROOT, VDBFORGE

BAKE = ["--resolution", "16", "--frames", "1:8", "--preview-frames", "6", "--angles", "1", "--preview-size", "64"]
SIM = ["domain.vorticity", "domain.beta", "domain.alpha", "emitters.0.temperature", "domain.noise.strength"]
RENDER = ["material.density_scale", "render.exposure", "render.framing"]


def _cli(home: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "VDBFORGE_HOME": str(home)}
    return subprocess.run([*VDBFORGE, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)


def _records(folder: Path) -> list[dict]:
    records = []
    for line in (folder / "index.jsonl").read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            records.append(json.loads(line))
    return records


def _check_samples_complete(folder: Path) -> None:
    """Every sample folder that exists is whole: previews, sample.json and the done marker; no bakes kept."""
    for sample in (folder / "samples").iterdir():
        if sample.name.startswith(".staging-"):
            continue
        assert (sample / "done").is_file() and (sample / "sample.json").is_file(), sample
        assert list((sample / "preview").glob("f*_a*.png")) and not (sample / "vdb").exists(), sample


@pytest.fixture(scope="module")
def killed_and_resumed(tmp_path_factory) -> dict:
    """An 8-sample dataset killed (SIGKILL) after two records, then finished by the same command."""
    root = tmp_path_factory.mktemp("dataset")
    home, out = root / "home", root / "ds"
    args = ["dataset", "--preset", "smoke_plume", "--n", "8", "--out", str(out), *BAKE, "--workers", "2", "--seed", "1"]
    env = {**os.environ, "VDBFORGE_HOME": str(home)}
    proc = subprocess.Popen([*VDBFORGE, *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        index = out / "index.jsonl"
        if index.is_file() and len(index.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # no clean-up; its workers die with it (PR_SET_PDEATHSIG)
    proc.wait(timeout=30)
    before = {r["index"]: r for r in _records(out)}
    assert 2 <= len(before) < 8, "the kill should land mid-run"
    _check_samples_complete(out)
    mtimes = {i: (out / r["sample"] / "sample.json").stat().st_mtime_ns for i, r in before.items()}
    started = time.monotonic()
    resumed = _cli(home, *args, "--json")
    return {"out": out, "home": home, "args": args, "before": before, "mtimes": mtimes, "resumed": resumed,
            "resume_seconds": time.monotonic() - started}  # fmt: skip


def test_dataset_writes_a_record_and_previews_per_sample(killed_and_resumed):
    out, proc = killed_and_resumed["out"], killed_and_resumed["resumed"]
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["succeeded"] == 8 and summary["failed"] == 0
    info = json.loads((out / "dataset.json").read_text())
    assert info["preset_id"] == "smoke_plume" and info["simulation_paths"] == SIM and info["render_paths"] == RENDER
    assert info["settings"]["resolution"] == 16 and info["settings"]["frames"] == [1, 8]
    assert info["versions"]["blender"] and info["space_hash"] and info["scene_hash"]
    records = _records(out)
    assert sorted(r["index"] for r in records) == list(range(8)), "one record per sample, none twice"
    points = set()
    for record in records:
        assert record["status"] == "ok" and record["error"] is None
        assert len(record["x_sim"]) == 5 and len(record["x_render"]) == 3
        assert all(0.0 <= u <= 1.0 for u in record["x_sim"] + record["x_render"])
        assert set(record["params"]) == set(SIM + RENDER)
        assert [(p["frame"], p["angle"]) for p in record["previews"]] == [(6, 0)]
        with Image.open(out / record["previews"][0]["path"]) as image:
            assert max(image.size) == 64
        assert record["timings"]["bake"] > 0 and record["timings"]["total"] > 0
        points.add(tuple(record["x_sim"]))
    assert len(points) == 8, "Sobol points are distinct"
    _check_samples_complete(out)
    assert not [p for p in (out / "samples").iterdir() if p.name.startswith(".")], "no staging folder left"


def test_killed_job_resumes_without_redoing_finished_samples(killed_and_resumed):
    out, before, mtimes = killed_and_resumed["out"], killed_and_resumed["before"], killed_and_resumed["mtimes"]
    assert killed_and_resumed["resumed"].returncode == 0
    after = {r["index"]: r for r in _records(out)}
    for index, record in before.items():
        assert after[index] == record, "a finished sample's record is never rewritten"
        assert (out / record["sample"] / "sample.json").stat().st_mtime_ns == mtimes[index], "finished sample redone"
    assert len(_records(out)) == 8


def test_torn_index_is_repaired_from_the_samples(killed_and_resumed, tmp_path):
    """A kill between a sample's rename and its index line, and one in the middle of writing a line."""
    out = tmp_path / "ds"
    shutil.copytree(killed_and_resumed["out"], out)
    lines = (out / "index.jsonl").read_text().splitlines()
    (out / "index.jsonl").write_text("\n".join(lines[:-2]) + "\n" + lines[-2][: len(lines[-2]) // 2])
    args = killed_and_resumed["args"]
    args = [*args[: args.index("--out") + 1], str(out), *args[args.index("--out") + 2 :]]
    proc = _cli(killed_and_resumed["home"], *args, "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(r["index"] for r in _records(out)) == list(range(8))
    assert json.loads(proc.stdout)["seconds"] < 20, "nothing was baked again"


def test_failed_samples_are_recorded_and_skipped(tmp_path):
    home, out = tmp_path / "home", tmp_path / "ds"
    args = ["dataset", "--preset", "smoke_plume", "--n", "2", "--out", str(out), *BAKE, "--workers", "2"]
    proc = _cli(home, *args, "--timeout", "1", "--json")
    assert proc.returncode == 1, proc.stderr[-2000:]  # no sample succeeded: the job says so, but it ran to its end
    records = _records(out)
    assert sorted(r["index"] for r in records) == [0, 1]
    for record in records:
        assert record["status"] == "timeout" and record["error"]["kind"] == "timeout" and record["sample"] is None
        assert (out / "failures" / f"{record['index']:05d}.log").is_file()
    assert not [p for p in (out / "samples").iterdir()], "a failed sample leaves no sample folder"

    again = _cli(home, *args, "--json")  # the same command: failures are skipped, not redone
    assert json.loads(again.stdout)["failed"] == 2 and len(_records(out)) == 2

    retried = _cli(home, *args, "--retry-failed", "--json")
    assert retried.returncode == 0, retried.stderr[-2000:]
    assert json.loads(retried.stdout)["succeeded"] == 2
    latest = {r["index"]: r for r in _records(out)}
    assert all(r["status"] == "ok" for r in latest.values())
    _check_samples_complete(out)


def test_dry_run_prints_the_plan_and_an_estimate_and_writes_nothing(tmp_path):
    out = tmp_path / "ds"
    proc = _cli(tmp_path / "home", "dataset", "--preset", "smoke_plume", "--n", "64", "--out", str(out), *BAKE,
                "--dry-run")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "5 simulation + 3 render parameters" in proc.stdout and "64 to do" in proc.stdout
    assert "probe sample #0" in proc.stdout and "about" in proc.stdout and "nothing was written" in proc.stdout
    assert not out.exists()


def test_rerun_with_other_settings_is_refused(killed_and_resumed):
    out = killed_and_resumed["out"]
    before = (out / "index.jsonl").read_text()
    args = [a if a != "16" else "24" for a in killed_and_resumed["args"]]  # --resolution 24
    proc = _cli(killed_and_resumed["home"], *args)
    assert proc.returncode == 1
    error = proc.stderr.strip().splitlines()
    assert len(error) == 1 and "made differently" in error[0] and "resolution 16 -> 24" in error[0]
    assert (out / "index.jsonl").read_text() == before


def test_scene_hash_follows_the_scene_not_the_schema():
    """A setting left at its default (as one a newer schema adds is) does not change the hash; a set one does."""
    from vdbforge_addon.core.dataset_format import scene_data, scene_hash
    from vdbforge_addon.core.match_space import SearchSpace
    from vdbforge_addon.core.preset_library import resolve_preset

    preset = resolve_preset("nebula")
    spelled_out = preset.model_copy(update={"material": preset.material.model_copy(update={"edge_radius": 0.0})})
    changed = preset.model_copy(update={"material": preset.material.model_copy(update={"edge_radius": 2.5})})
    plain, same, other = (scene_hash(SearchSpace.of(p)) for p in (preset, spelled_out, changed))
    assert plain == same != other
    assert "edge_radius" not in scene_data(SearchSpace.of(preset))["material"]
    assert scene_data(SearchSpace.of(changed))["material"]["edge_radius"] == 2.5
