"""The run report's plots, drawn with matplotlib and returned as PNG bytes.

matplotlib is imported inside each function (the add-on registers without it) and figures are drawn on an explicit
Agg canvas instead of through pyplot, so nothing changes the process-wide backend a user may rely on inside Blender.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

OK_COLOR = "#1f77b4"
FAIL_COLOR = "#d62728"
BEST_COLOR = "#2ca02c"
BASELINE_COLOR = "#7f7f7f"


def _new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def score_plot(
    points: Sequence[tuple[int, float, bool]],
    best_so_far: Sequence[tuple[int, float]],
    baseline_best_so_far: Sequence[tuple[int, float]] | None = None,
    budget: int | None = None,
    threshold: float | None = None,
    baseline_label: str = "random baseline: best so far",
) -> bytes:
    """Score per evaluation (dots, failed ones as red crosses) with the best-so-far step line(s).

    `points` are (index, score, ok); best-so-far series are (index, value) and drawn as steps after each index.
    The x axis spans the whole `budget` (evaluations), so a run in progress shows how much is left.
    """
    fig = _new_figure(11, 4)
    ax = fig.add_subplot()
    ok = [(i, s) for i, s, good in points if good]
    failed = [(i, s) for i, s, good in points if not good]
    if ok:
        ax.scatter(*zip(*ok, strict=True), s=18, color=OK_COLOR, alpha=0.75, label="score (ok)", zorder=3)
    if failed:
        ax.scatter(*zip(*failed, strict=True), s=30, marker="x", color=FAIL_COLOR, label="failed (penalty)", zorder=3)
    if best_so_far:
        xs, ys = zip(*best_so_far, strict=True)
        ax.step(xs, ys, where="post", color=BEST_COLOR, linewidth=2, label="best so far", zorder=4)
        best_i = max(range(len(ys)), key=lambda k: (ys[k], -k))
        if points and any(good for *_, good in points):
            ax.scatter([xs[best_i]], [ys[best_i]], marker="*", s=160, color=BEST_COLOR, edgecolor="black", zorder=5)
    if baseline_best_so_far:
        xs, ys = zip(*baseline_best_so_far, strict=True)
        ax.step(xs, ys, where="post", color=BASELINE_COLOR, linestyle="--", linewidth=1.8, label=baseline_label)
    if threshold is not None and threshold > 0:
        ax.axhline(threshold, color="black", linestyle=":", linewidth=1, label=f"threshold {threshold:g}")
    right = max([(budget or 0) - 1] + [i for i, *_ in points] + [i for i, _ in baseline_best_so_far or []])
    ax.set_xlim(-0.5, max(right, 1) + 0.5)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("evaluation (bake)")
    ax.set_ylabel("score")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=9)
    return _png(fig)


def metric_plot(
    best_metrics: dict[str, float],
    weights: dict[str, float],
    series: dict[str, Sequence[tuple[int, float]]],
) -> bytes:
    """The best candidate's metrics as bars (weight in the label) and, beside it, each metric over the evaluations.

    `series` maps a metric name to (evaluation index, value) for the successful evaluations; empty skips the panel.
    """
    has_series = any(len(v) > 0 for v in series.values())
    fig = _new_figure(11 if has_series else 6, 3.8)
    axes = fig.subplots(1, 2, width_ratios=[1, 1.6]) if has_series else [fig.add_subplot()]
    bars = axes[0]
    names = list(best_metrics)
    values = [best_metrics[n] for n in names]
    labels = [f"{n}\nw {weights[n]:.2g}" if n in weights else n for n in names]
    colors = [f"C{k % 10}" for k in range(len(names))]
    drawn = bars.bar(range(len(names)), values, color=colors)
    bars.bar_label(drawn, labels=[f"{v:.3f}" for v in values], fontsize=8, padding=2)
    bars.set_xticks(range(len(names)), labels, fontsize=8)
    bars.set_ylim(0, 1.1)
    bars.set_ylabel("similarity (1 = identical)")
    bars.set_title("best candidate", fontsize=10)
    bars.grid(True, axis="y", alpha=0.3)
    if has_series:
        lines = axes[1]
        for k, name in enumerate(names + [n for n in series if n not in best_metrics]):
            pts = series.get(name) or []
            if pts:
                xs, ys = zip(*pts, strict=True)
                lines.plot(xs, ys, marker=".", markersize=4, linewidth=1, color=f"C{k % 10}", label=name)
        lines.set_ylim(-0.02, 1.02)
        lines.set_xlabel("evaluation (bake)")
        lines.set_title("over evaluations (mean over references)", fontsize=10)
        lines.grid(True, alpha=0.3)
        lines.legend(fontsize=8, loc="lower right", ncols=2)
    return _png(fig)
