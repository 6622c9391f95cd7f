"""`report.html` for a `vdbforge match` run directory: read run.json + history.jsonl, derive the series, write.

The run directory format is the match contract (docs/MATCH.md). The report can be rewritten at any moment of a run,
so a history whose last line is still being written (torn) is read without that line.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .atomic import write_text
from .errors import VDBForgeError

REPORT_NAME = "report.html"
TEXT_METRIC = "clip_text"
PREVIEW_NAME = re.compile(r"f(\d+)_a(\d+)")


@dataclass
class RunData:
    run_dir: Path
    run: dict
    evals: list[dict] = field(default_factory=list)
    torn_line: bool = False

    @property
    def settings(self) -> dict:
        settings = self.run.get("settings")
        return settings if isinstance(settings, dict) else {}


def number(value: object) -> float | None:
    """A finite float, or None for anything else (missing, null, NaN, a string)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def is_ok(ev: dict) -> bool:
    return ev.get("status") == "ok" and number(ev.get("score")) is not None


def read_history(path: Path) -> tuple[list[dict], bool]:
    """Evaluations of history.jsonl in index order, and whether a torn last line was left out."""
    if not path.is_file():
        return [], False
    lines = [(n, raw) for n, raw in enumerate(path.read_bytes().split(b"\n"), 1) if raw.strip()]
    evals: list[dict] = []
    torn = False
    for k, (n, raw) in enumerate(lines):
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            if k == len(lines) - 1:
                torn = True  # the writer's append was cut short; the next report will include it
                break
            raise VDBForgeError(f"{path} line {n} is not valid JSON: {exc}") from None
        if not isinstance(obj, dict) or isinstance(obj.get("index"), bool) or not isinstance(obj.get("index"), int):
            raise VDBForgeError(f"{path} line {n} is not an evaluation record (no integer 'index')")
        evals.append(obj)
    evals.sort(key=lambda ev: ev["index"])
    return evals, torn


def read_run(run_dir: str | os.PathLike) -> RunData:
    """run.json and the finished evaluations of a run directory."""
    run_dir = Path(run_dir)
    run_json = run_dir / "run.json"
    if not run_json.is_file():
        raise VDBForgeError(f"'{run_dir}' is not a match run directory: run.json is missing")
    try:
        run = json.loads(run_json.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise VDBForgeError(f"{run_json} is not valid JSON: {exc}") from None
    if not isinstance(run, dict):
        raise VDBForgeError(f"{run_json} does not hold a JSON object")
    evals, torn = read_history(run_dir / "history.jsonl")
    return RunData(run_dir=run_dir, run=run, evals=evals, torn_line=torn)


def best_so_far(evals: Iterable[dict]) -> list[tuple[int, float]]:
    """(index, best score of the successful evaluations up to it), from the first successful evaluation on."""
    series: list[tuple[int, float]] = []
    best: float | None = None
    for ev in evals:
        if is_ok(ev):
            score = number(ev["score"])
            best = score if best is None else max(best, score)
        if best is not None:
            series.append((ev["index"], best))
    return series


def improvements(evals: Iterable[dict]) -> list[tuple[dict, float | None]]:
    """Each successful evaluation that raised the best score so far, with the best before it (None: the first)."""
    out: list[tuple[dict, float | None]] = []
    best: float | None = None
    for ev in evals:
        if is_ok(ev) and (best is None or number(ev["score"]) > best):
            out.append((ev, best))
            best = number(ev["score"])
    return out


def best_evaluation(evals: Iterable[dict]) -> dict | None:
    """The highest-scoring successful evaluation; the earliest wins a tie."""
    found = improvements(evals)
    return found[-1][0] if found else None


def frame_angle(preview: object) -> tuple[int, int] | None:
    """(frame, angle) from a preview name `f####_a##.png`."""
    match = PREVIEW_NAME.search(Path(str(preview)).name)
    return (int(match.group(1)), int(match.group(2))) if match else None


def best_preview(ev: dict, frame: object = None, angle: object = None, name: object = None) -> str | None:
    """The preview of `ev` with that frame+angle (or file name); the evaluation's own best one by default."""
    previews = [p for p in ev.get("previews") or [] if isinstance(p, str)]
    if name:
        for p in previews:
            if Path(p).name == Path(str(name)).name:
                return p
    if frame is None and angle is None and not name:
        frame, angle = ev.get("best_frame"), ev.get("best_angle")
    for p in previews:
        if frame is not None and frame_angle(p) == (frame, angle):
            return p
    return previews[0] if previews else None


def metric_means(ev: dict) -> dict[str, float]:
    """Each metric's mean over the references of one evaluation, plus the text target's score."""
    breakdown = ev.get("breakdown") if isinstance(ev.get("breakdown"), dict) else {}
    sums: dict[str, list[float]] = {}
    for ref in breakdown.get("references") or []:
        metrics = ref.get("metrics") if isinstance(ref, dict) else None
        for name, value in (metrics or {}).items():
            if number(value) is not None:
                sums.setdefault(str(name), []).append(number(value))
    means = {name: sum(vals) / len(vals) for name, vals in sums.items()}
    text = breakdown.get("text")
    if isinstance(text, dict) and number(text.get("score")) is not None:
        means[TEXT_METRIC] = number(text["score"])
    return means


PLOTS_NEED_MATPLOTLIB = (
    "Plots need matplotlib, which this Python lacks: install it into Blender's Python (python -m pip install "
    "matplotlib) or write the report with the vdbforge command (vdbforge match --resume on this folder)."
)


def score_plot_png(data: RunData, baseline: RunData | None) -> bytes | None:
    """Plot 1, or None when neither the run nor its baseline has an evaluation yet."""
    from .report_plots import score_plot

    if not data.evals and not (baseline and baseline.evals):
        return None
    points = []
    for ev in data.evals:
        score = number(ev.get("score"))
        if is_ok(ev) or score is not None:
            points.append((ev["index"], score, is_ok(ev)))
        else:
            points.append((ev["index"], 0.0, False))  # a failure without a recorded penalty is drawn at 0
    optimizer = baseline.settings.get("optimizer", "baseline") if baseline else ""
    budget = number(data.settings.get("budget"))
    return score_plot(
        points,
        best_so_far(data.evals),
        best_so_far(baseline.evals) if baseline else None,
        budget=int(budget) if budget else None,
        threshold=number(data.settings.get("threshold")),
        baseline_label=f"baseline ({optimizer}): best so far",
    )


def metric_plot_png(data: RunData, best: dict | None) -> bytes | None:
    """Plot 2, or None without a successful evaluation that recorded metrics."""
    from .report_plots import metric_plot

    best_metrics = metric_means(best) if best else {}
    if not best_metrics:
        return None
    weights = best.get("breakdown", {}).get("weights") or {}
    weights = {str(k): number(v) for k, v in weights.items() if number(v) is not None}
    series: dict[str, list[tuple[int, float]]] = {}
    for ev in data.evals:
        if is_ok(ev):
            for name, value in metric_means(ev).items():
                series.setdefault(name, []).append((ev["index"], value))
    if len(data.evals) < 2:
        series = {}
    return metric_plot(best_metrics, weights, series)


def resolve_baseline(data: RunData, baseline_dir: str | os.PathLike | None) -> tuple[RunData | None, str | None]:
    """The baseline run (the argument wins over run.json's `baseline`), and a note when run.json's is unreadable."""
    if baseline_dir is not None:
        return read_run(baseline_dir), None
    named = data.run.get("baseline")
    if not named:
        return None, None
    path = Path(str(named))
    path = path if path.is_absolute() else data.run_dir / path
    try:
        return read_run(path), None
    except VDBForgeError as exc:
        # The run itself is fine; the report says why its baseline curve is absent instead of refusing to render.
        return None, f"baseline run not shown: {exc}"


def write_report(run_dir: Path, baseline_dir: Path | None = None) -> Path:
    """Write `run_dir/report.html` (self-contained, atomic) and return its path."""
    from .report_html import render_report

    data = read_run(run_dir)
    baseline, note = resolve_baseline(data, baseline_dir)
    best = best_evaluation(data.evals)
    # A stock Blender has no matplotlib: the report is still written, with the tables and pictures, and says why the
    # plots are missing instead of failing the run that produced it.
    plots = importlib.util.find_spec("matplotlib") is not None
    html = render_report(
        data,
        best=best,
        baseline=baseline,
        baseline_note=note,
        score_png=score_plot_png(data, baseline) if plots else None,
        metric_png=metric_plot_png(data, best) if plots else None,
        plots_note=None if plots else PLOTS_NEED_MATPLOTLIB,
    )
    out = Path(run_dir) / REPORT_NAME
    write_text(out, html)
    return out
