"""`vdbforge match` end to end on tiny real bakes: the run directory, best/ reproducing its render, kill and resume
giving the same results as an uninterrupted run, cancel keeping what finished, timeouts recorded, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, VDBFORGE, run_cli

BAKE = ["--resolution", "16", "--frames", "1:8", "--angles", "1", "--preview-frames", "6"]
MATCH = [*BAKE, "--metrics", "ssim=0.4,silhouette=0.3,color=0.3", "--inner-budget", "2", "--population", "2",
         "--budget", "4", "--workers", "2", "--threshold", "1.0", "--seed", "3"]  # fmt: skip


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """A render of the preset with hidden parameters, the picture the match has to recover."""
    out = tmp_path_factory.mktemp("reference") / "out"
    proc = run_cli("render", "--preset", "smoke_plume", "--out", str(out), *BAKE,
                   "--set", "domain.vorticity=0.6", "--set", "domain.beta=2.2")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out / "preview" / "f0006_a00.png"


@pytest.fixture(scope="module")
def full_run(reference, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("match") / "run"
    proc = run_cli("match", "--preset", "smoke_plume", "--reference", str(reference), "--out", str(out), *MATCH,
                   "--snapshots", "--json", timeout=900)  # fmt: skip
    return out, proc


def _history(run: Path) -> dict[int, dict]:
    lines = (run / "history.jsonl").read_text().splitlines() if (run / "history.jsonl").exists() else []
    return {e["index"]: e for e in map(json.loads, lines)}


def test_match_writes_the_run_and_best_reproduces_its_render(full_run, tmp_path):
    run, proc = full_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    history = _history(run)
    assert sorted(history) == [0, 1, 2, 3] and summary["evaluations"] == 4 and summary["stop_reason"] == "budget"
    best = max(history.values(), key=lambda e: (e["score"], -e["index"]))
    assert summary["best_index"] == best["index"] and summary["best_score"] == pytest.approx(best["score"])
    for entry in history.values():
        assert entry["status"] == "ok" and 0.0 < entry["score"] <= 1.0
        assert entry["best_so_far"] >= entry["score"] - 1e-12
        assert set(entry["sim_params"]) == {"domain.vorticity", "domain.beta", "domain.alpha",
                                            "emitters.0.temperature", "domain.noise.strength"}  # fmt: skip
        assert entry["inner"]["trials"] <= 2 and entry["previews"]
        assert all((run / p).is_file() for p in entry["previews"])
        kept = (run / entry["candidate"] / "vdb").exists()
        assert kept == (entry["index"] == best["index"]), "only the best candidate keeps its volumes"
    assert history[0]["x"] == pytest.approx(json.loads((run / "run.json").read_text())["init"]["x"])
    config = json.loads((run / "run.json").read_text())
    assert config["references"] == ["references/ref_00.png"] and (run / config["references"][0]).is_file()
    assert sorted(p.name for p in (run / "best").iterdir()) == [
        "nvdb", "preset.json", "preview", "scene.blend", "score.json", "vdb"]  # fmt: skip
    assert all((run / e["candidate"] / "scene.blend").is_file() for e in history.values())
    assert len(list((run / "best" / "nvdb").glob("*.nvdb"))) == 8
    html = (run / "report.html").read_text()
    assert html.count('src="data:image/') >= 3 and "http://" not in html.replace("http://www.w3.org", "")

    # best/preset.json is a preset `vdbforge render` reads and that renders exactly the best candidate's pictures.
    proc = run_cli("render", "--preset", str(run / "best" / "preset.json"), "--out", str(tmp_path / "again"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    for image in (run / "best" / "preview").glob("f*_a*.png"):
        again = np.asarray(Image.open(tmp_path / "again" / "preview" / image.name))
        assert np.array_equal(again, np.asarray(Image.open(image))), image.name


def _start(reference: Path, out: Path) -> subprocess.Popen:
    cmd = [*VDBFORGE, "match", "--preset", "smoke_plume", "--reference", str(reference), "--out", str(out), *MATCH]
    return subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _wait_for_history(run: Path, proc: subprocess.Popen, lines: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while len(_history(run)) < lines:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "no evaluation finished in time"
        time.sleep(0.5)


def test_kill_then_resume_gives_the_uninterrupted_results(full_run, reference, tmp_path):
    uninterrupted = _history(full_run[0])
    run = tmp_path / "run"
    proc = _start(reference, run)
    _wait_for_history(run, proc, 1)
    proc.kill()  # SIGKILL: no chance to clean up; its workers die with it (PR_SET_PDEATHSIG)
    proc.wait()
    partial = _history(run)
    assert 1 <= len(partial) < 4
    proc = run_cli("match", "--out", str(run), "--resume", "--json", timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resumed = _history(run)
    assert sorted(resumed) == [0, 1, 2, 3]
    assert not list((run / "candidates").glob(".staging-*")), "in-flight work of the killed run is cleaned up"
    for index, entry in resumed.items():
        assert entry["x"] == pytest.approx(uninterrupted[index]["x"], abs=1e-12), index
        assert entry["score"] == pytest.approx(uninterrupted[index]["score"], abs=1e-9), index
    assert len(json.loads((run / "run.json").read_text())["resumes"]) == 1


def test_cancel_keeps_finished_evaluations(reference, tmp_path):
    run = tmp_path / "run"
    proc = _start(reference, run)
    _wait_for_history(run, proc, 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err.decode()[-2000:]
    finished = _history(run)
    assert 1 <= len(finished) < 4 and all(e["status"] == "ok" for e in finished.values())
    assert not list((run / "candidates").glob(".staging-*"))
    assert (run / "best" / "preset.json").is_file() and (run / "report.html").is_file()


def test_timed_out_candidates_get_the_penalty_and_their_error(reference, tmp_path):
    run = tmp_path / "run"
    args = ["match", "--preset", "smoke_plume", "--reference", str(reference), "--out", str(run), *MATCH]
    proc = run_cli(*args[:-10], "--budget", "2", "--population", "2", "--timeout", "1", timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "no candidate succeeded" in proc.stdout
    history = _history(run)
    assert sorted(history) == [0, 1]
    for entry in history.values():
        assert entry["status"] == "timeout" and entry["score"] == 0.0 and entry["error"]["kind"] == "timeout"
    assert "timeout" in (run / "report.html").read_text()


def test_bad_input_is_one_line_and_writes_nothing(reference, tmp_path):
    cases = [
        (["--preset", "smoke_plume", "--reference", str(tmp_path / "missing.png")], "reference image not found"),
        (["--preset", "smoke_plume"], "needs a target"),
        (["--preset", "smoke_plume", "--reference", str(reference), "--budget", "0"], "--budget"),
        (["--preset", "nope", "--reference", str(reference)], "nope"),
        (["--resume"], "no run to resume"),
        (
            ["--preset", "smoke_plume", "--reference", str(reference), "--init", "inverse"],
            "there is no model for 'smoke_plume'",
        ),
    ]
    for extra, message in cases:
        out = tmp_path / f"out{len(message)}"
        proc = run_cli("match", "--out", str(out), *extra, "--metrics", "ssim")
        assert proc.returncode != 0 and message in proc.stderr, (extra, proc.stderr)
        assert proc.stderr.strip().count("\n") == 0
        assert not out.exists() or not any(out.iterdir()), extra
