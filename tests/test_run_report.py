"""report.html of a match run directory: built from hand-written run directories (per docs/MATCH.md's contract) with
PIL previews, checked as HTML and opened in headless Chromium (no bpy, no bakes)."""

from __future__ import annotations

import colorsys
import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vdbforge_addon.core.errors import VDBForgeError
from vdbforge_addon.core.run_report import read_history, write_report

MAGENTA = (255, 0, 255)
HOSTILE_PRESET = 'storm<script>alert("p")</script>'
HOSTILE_ERROR = '<script>alert("e")</script> & <img src=http://evil.example/x.png> mantaflow diverged'
HOSTILE_TEXT = 'a "tall" <b>storm</b> cloud'
SPACE = [
    {"path": "simulation.vorticity", "stage": "simulation", "min": 0.0, "max": 1.0, "scale": "linear", "start": 0.2},
    {"path": "simulation.flow_rate", "stage": "simulation", "min": 0.1, "max": 10.0, "scale": "log", "start": 1.0},
    {"path": "render.density_scale", "stage": "render", "min": 0.5, "max": 20.0, "scale": "log", "start": 5.0},
]
# Probe appended to a copy of the report: records, once everything loaded, whether each image decoded.
PROBE = (
    "<script>window.addEventListener('load',()=>{document.body.setAttribute('data-images',"
    "JSON.stringify(Array.from(document.images).map(i=>[i.complete,i.naturalWidth])));});</script>"
)


def save_image(path: Path, fg: tuple, size: tuple[int, int] = (320, 240), bg: tuple = (20, 22, 30)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", size, bg)
    w, h = size
    ImageDraw.Draw(im).ellipse([w * 0.3, h * 0.15, w * 0.7, h * 0.9], fill=fg)
    im.save(path)


def colour(k: int) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb((k * 0.13) % 1.0, 0.8, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def evaluation(run_dir: Path, k: int, outcome, refs: list[str], text: str, views: int, size) -> dict:
    cand = f"candidates/{k:04d}"
    ok = not isinstance(outcome, str)
    score = float(outcome) if ok else 0.0
    previews = []
    if ok:
        for f, a in [(10, 0), (10, 1), (14, 0), (14, 1)][:views]:
            previews.append(f"{cand}/preview/f{f:04d}_a{a:02d}.png")
            save_image(run_dir / previews[-1], colour(k), size)
    metrics = {"lpips_alex": score * 0.9, "ssim": score, "silhouette": min(1.0, score * 1.1), "color": score * 0.8}
    fa = [tuple(int(x) for x in re.findall(r"\d+", Path(p).name)) for p in previews]
    breakdown = {
        "objective": score,
        "metrics_used": list(metrics),
        "weights": {"lpips_alex": 0.3, "ssim": 0.2, "silhouette": 0.2, "color": 0.15},
        "references": [
            {"path": r, "best_render": previews[(j + 1) % len(previews)], "frame": fa[(j + 1) % len(fa)][0],
             "angle": fa[(j + 1) % len(fa)][1], "score": score, "metrics": metrics}
            for j, r in enumerate(refs) if ok
        ],
        "text": {"text": text, "best_render": previews[0], "frame": 10, "angle": 0, "score": score * 0.7}
        if text and ok
        else None,
        "renders": [
            {"path": str(run_dir / p), "frame": f, "angle": a, "references": [{"score": score - 0.01 * i}] * len(refs),
             **({"text_score": score * 0.7} if text else {})}
            for i, (p, (f, a)) in enumerate(zip(previews, fa, strict=True))
        ],
    }  # fmt: skip
    error = None
    if not ok:
        error = {"kind": "python", "message": HOSTILE_ERROR, "file": "vdbforge_addon/blender/bake.py", "line": 42}
        (run_dir / cand).mkdir(parents=True, exist_ok=True)
        (run_dir / cand / "worker.log").write_text("Traceback ...\n")
    return {
        "index": k,
        "generation": k // 4,
        "candidate": cand,
        "status": "ok" if ok else outcome,
        "sim_params": {"simulation.vorticity": round(0.2 + 0.01 * k, 4), "simulation.flow_rate": 1.0},
        "render_params": {"render.density_scale": 5.0 + k},
        "x": [0.2 + 0.01 * k, 0.5],
        "score": score,
        "breakdown": breakdown,
        "inner": {"renders": 6, "start_score": score * 0.9, "final_score": score},
        "best_frame": fa[1 % len(fa)][0] if ok else None,
        "best_angle": fa[1 % len(fa)][1] if ok else None,
        "previews": previews,
        "timings": {"bake": 20.0, "export": 2.0, "render": 5.0, "inner": 12.0, "score": 1.5, "total": 40.5},
        "error": error,
        "best_so_far": 0.0,
        "finished": f"2025-01-01T10:{k // 60 % 60:02d}:{k % 60:02d}+00:00",
    }


def make_run(
    run_dir: Path,
    outcomes=(),
    *,
    preset_id: str = "storm",
    n_refs: int = 2,
    text: str = "",
    optimizer: str = "cma",
    baseline: str | None = None,
    views: int = 4,
    size: tuple[int, int] = (320, 240),
    ref_names: tuple[str, ...] = (),
) -> Path:
    refs = []
    for j in range(n_refs):
        refs.append(f"references/{ref_names[j] if j < len(ref_names) else f'ref_{j:02d}.png'}")
        save_image(run_dir / refs[-1], MAGENTA, (400, 300), bg=(0, 0, 0))
    run = {
        "format": 1,
        "created": "2025-01-01T10:00:00+00:00",
        "preset_id": preset_id,
        "family": "smoke_plume",
        "preset": {"id": preset_id, "family": "smoke_plume"},
        "references": refs,
        "text": text,
        "settings": {"budget": max(12, len(outcomes)), "population": 4, "workers": 1, "threshold": 0.95,
                     "patience": 3, "optimizer": optimizer, "seed": 1, "sigma0": 0.25, "inner_budget": 6,
                     "resolution": 32, "frames": [1, 20], "preview_frames": [10, 14], "angles": 2},
        "space": SPACE,
        "versions": {"vdbforge": "0.1.0", "blender": "4.5.15", "cma": "4.0.0"},
        "init": {"kind": "default", "mean": {"simulation.vorticity": 0.2, "simulation.flow_rate": 1.0},
                 "sigma0": 0.25},
        "baseline": baseline,
        "resumes": [],
    }  # fmt: skip
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "run.json").write_text(json.dumps(run, indent=2))
    lines = [json.dumps(evaluation(run_dir, k, o, refs, text, views, size)) + "\n" for k, o in enumerate(outcomes)]
    if outcomes:
        (run_dir / "history.jsonl").write_text("".join(lines))
    return run_dir


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def check_html(report: Path) -> tuple[str, list[dict]]:
    """Self-contained: no scripts, no external URL anywhere, every image embedded. Returns (text, <img> attributes)."""
    text = report.read_text(encoding="utf-8")
    parser = Tags()
    parser.feed(text)
    assert not [t for t, _ in parser.tags if t in ("script", "link", "iframe", "object", "embed")]
    assert 'src="http' not in text and "url(" not in text and "@import" not in text
    for _, attrs in parser.tags:
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert not re.match(r"^\s*([a-z]+:)?//", value, re.I) and not value.lower().startswith("javascript:")
    images = [a for t, a in parser.tags if t == "img"]
    assert all(a["src"].startswith(("data:image/png;base64,", "data:image/jpeg;base64,")) for a in images)
    assert not list(report.parent.glob(".report.html*"))  # atomic write left no temporary file
    return text, images


def open_in_chromium(report: Path, tmp: Path) -> tuple[Image.Image, list]:
    """Screenshot of the report and, from a probed copy's DOM, (complete, naturalWidth) of each image."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian package `chromium` is not installed (the setup script installs it)")
    tmp.mkdir(parents=True, exist_ok=True)
    common = [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    common += [f"--user-data-dir={tmp / 'profile'}", "--window-size=1200,3000"]
    shot = tmp / "shot.png"
    subprocess.run([*common, f"--screenshot={shot}", report.as_uri()], capture_output=True, timeout=60, check=True)
    probe = tmp / "probe.html"
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    proc = subprocess.run(
        [*common, "--dump-dom", "--virtual-time-budget=5000", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = re.search(r'data-images="([^"]*)"', proc.stdout)
    assert found, proc.stdout[-2000:] + proc.stderr[-2000:]
    return Image.open(shot).convert("RGB"), json.loads(html.unescape(found.group(1)))


def assert_rendered(shot: Image.Image, statuses: list, n_images: int, magenta: bool) -> None:
    assert len(statuses) == n_images and all(done and width > 0 for done, width in statuses), statuses
    colours = shot.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50  # text, plots and pictures, not a blank page
    px = np.asarray(shot.resize((300, 750)), dtype=np.int16)
    near_magenta = (px[..., 0] > 200) & (px[..., 1] < 80) & (px[..., 2] > 200)
    assert bool(near_magenta.any()) == magenta  # the reference thumbnails were painted


def test_run_with_improvements_failure_and_baseline_renders_in_chromium(tmp_path):
    make_run(tmp_path / "baseline", [0.2, 0.3, 0.25, 0.4, 0.35, 0.45, 0.42, 0.5], optimizer="random")
    outcomes = [0.3, 0.55, "failed", 0.5, 0.62, 0.6, 0.71, "timeout", 0.7, 0.74]
    run = make_run(
        tmp_path / "run",
        outcomes,
        preset_id=HOSTILE_PRESET,
        text=HOSTILE_TEXT,
        baseline="../baseline",
        ref_names=("ref_00.png", "ref_<i>01.png"),
    )
    (run / "best").mkdir()
    (run / "best" / "preset.json").write_text("{}")

    report = write_report(run)
    assert report == run / "report.html"
    text, images = check_html(report)
    assert "storm&lt;script&gt;alert(&quot;p&quot;)&lt;/script&gt;" in text
    assert "&lt;script&gt;alert(&quot;e&quot;)&lt;/script&gt; &amp; &lt;img src=http://evil.example/x.png&gt;" in text
    assert "a &quot;tall&quot; &lt;b&gt;storm&lt;/b&gt; cloud" in text
    assert "10 of 12 evaluations" in text and "0.7400 at evaluation #9" in text
    assert "random: best 0.5000 at #7" in text and "this run reached it at evaluation #1" in text
    assert "vdbforge_addon/blender/bake.py:42" in text and 'href="candidates/0002/worker.log"' in text
    assert 'href="best/preset.json"' in text and "Failures (2)" in text
    assert text.count("changed ↑") == 2  # vorticity and density scale moved up; flow rate stayed
    # 2 header thumbs + 2 plots + 2 (reference, render) rows + text row render + 4 previews + 5 improvements
    strip = re.search(r'<div class="strip">(.*?)</div>\s*<h2', text, re.S).group(1)
    assert re.findall(r"<figcaption>(#\d+)", strip) == ["#0", "#1", "#4", "#6", "#9"]
    assert len(images) == 2 + 2 + 5 + 4 + 5
    assert 'class="hl"' in text and "best overall" in text and "best for ref 1" in text
    assert "frame 14 · angle 1 · scores 0.71 / 0.71 / 0.518" in text  # per-render scores: ref 1, ref 2, text
    assert max(int(a["width"]) for a in images if a["src"].startswith("data:image/jpeg")) <= 256

    shot, statuses = open_in_chromium(report, tmp_path / "chromium")
    assert_rendered(shot, statuses, len(images), magenta=True)


def test_baseline_argument_wins_and_an_unreadable_baseline_is_a_note(tmp_path):
    base = make_run(tmp_path / "random", [0.1, 0.2], optimizer="random")
    run = make_run(tmp_path / "run", [0.3, 0.4], baseline="missing_dir")
    text, _ = check_html(write_report(run))
    assert "baseline run not shown" in text and "missing_dir" in text
    text, _ = check_html(write_report(run, baseline_dir=base))
    assert "baseline run not shown" not in text and "random: best 0.2000 at #1 of 2 evaluations" in text
    with pytest.raises(VDBForgeError, match="run.json is missing"):
        write_report(run, baseline_dir=tmp_path / "nowhere")


def test_a_run_that_just_started_renders(tmp_path):
    run = make_run(tmp_path / "run", [])
    report = write_report(run)
    text, images = check_html(report)
    assert "0 of 12 evaluations" in text and "No evaluation has finished yet" in text
    assert "no successful evaluation yet" in text and "Failures (0)" in text
    assert len(images) == 2  # the reference thumbnails only
    shot, statuses = open_in_chromium(report, tmp_path / "chromium")
    assert_rendered(shot, statuses, len(images), magenta=True)


def test_all_failed_text_only_run_renders(tmp_path):
    run = make_run(tmp_path / "run", ["failed", "timeout", "cancelled"], n_refs=0, text="a wispy plume")
    report = write_report(run)
    text, images = check_html(report)
    assert "no reference images" in text and "a wispy plume" in text
    assert "Failures (3)" in text and text.count("mantaflow diverged") == 3
    assert "No successful evaluation with metrics yet" in text
    assert len(images) == 1  # the score plot, failures drawn as crosses
    shot, statuses = open_in_chromium(report, tmp_path / "chromium")
    assert_rendered(shot, statuses, len(images), magenta=False)


def test_text_only_target_reports_the_text_score(tmp_path):
    run = make_run(tmp_path / "run", [0.4, 0.6], n_refs=0, text="a wispy plume")
    text, images = check_html(write_report(run))
    assert "“a wispy plume”" in text and "clip_text" in text
    assert len(images) == 2 + 1 + 4 + 2  # plots, text row render, previews, strip


def test_torn_last_line_is_left_out_and_a_corrupt_line_is_an_error(tmp_path):
    run = make_run(tmp_path / "run", [0.3, 0.5, 0.4])
    history = run / "history.jsonl"
    full = history.read_text()
    history.write_text(full + full.splitlines()[1][:57])
    evals, torn = read_history(history)
    assert [ev["index"] for ev in evals] == [0, 1, 2] and torn
    text, _ = check_html(write_report(run))
    assert "3 of 12 evaluations" in text and "last line of history.jsonl is incomplete" in text

    lines = full.splitlines(keepends=True)
    history.write_text(lines[0] + "{not json\n" + lines[2])
    with pytest.raises(VDBForgeError, match="line 2 is not valid JSON"):
        write_report(run)


def test_many_evaluations_stay_small(tmp_path):
    outcomes = [("failed" if k % 17 == 5 else min(0.99, 0.1 + k / 300)) for k in range(240)]
    run = make_run(tmp_path / "run", outcomes, views=1, size=(640, 480))
    report = write_report(run)
    text, images = check_html(report)
    size = report.stat().st_size
    assert size < 5_000_000, size
    assert "40 of 226 improvements shown" in text and "240 of 240 evaluations" in text
    assert all(int(a["width"]) <= 256 for a in images if a["src"].startswith("data:image/jpeg"))
