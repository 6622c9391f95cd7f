"""The inner fit: render-time parameters fitted on one cached bake, a render budget at a time.

Render-time parameters (density scale, emission strength, exposure, framing, light strength, colours) act on the
image smoothly and mostly one at a time: brighter or darker, larger or smaller. So instead of a generic optimizer the
fit walks the coordinates: around the best point it renders −step and +step along one dimension, fits a parabola
through the three scores and renders its peak when it lies between them. After the first pass the dimensions are
visited most-sensitive first and the ones whose renders did not move the score are skipped; the step halves per pass.
Every render is a real render and score (`evaluate`); nothing is extrapolated.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

INSENSITIVE = 1e-3  # score change below which a dimension is not worth more renders


@dataclass
class FitResult:
    best: list[float]
    best_score: float
    start_score: float
    trials: list[tuple[list[float], float]] = field(default_factory=list)

    @property
    def renders(self) -> int:
        return len(self.trials)


def _clip(u: float) -> float:
    return min(1.0, max(0.0, u))


def _parabola_peak(x0: float, y0: float, x1: float, y1: float, x2: float, y2: float) -> float | None:
    """The maximum of the parabola through three points, or None if it opens upward or is degenerate."""
    denom = (x0 - x1) * (x0 - x2) * (x1 - x2)
    if abs(denom) < 1e-12:
        return None
    a = (x2 * (y1 - y0) + x1 * (y0 - y2) + x0 * (y2 - y1)) / denom
    b = (x2 * x2 * (y0 - y1) + x1 * x1 * (y2 - y0) + x0 * x0 * (y1 - y2)) / denom
    if a >= 0:
        return None
    return -b / (2 * a)


def coordinate_fit(
    evaluate: Callable[[list[float]], float],
    start: list[float],
    budget: int,
    step: float = 0.25,
    min_step: float = 0.02,
    should_stop: Callable[[], bool] | None = None,
) -> FitResult:
    """Maximise `evaluate` over [0, 1]^d from `start` with at most `budget` calls (the first scores `start`)."""
    cache: dict[tuple[float, ...], float] = {}
    result = FitResult(list(start), 0.0, 0.0)

    def score(u: list[float]) -> float | None:
        key = tuple(round(v, 6) for v in u)
        if key in cache:
            return cache[key]
        if len(result.trials) >= budget or (should_stop and should_stop()):
            return None
        value = float(evaluate(list(u)))
        cache[key] = value
        result.trials.append((list(u), value))
        return value

    first = score(list(start))
    if first is None:
        return result
    result.best_score = result.start_score = first
    dims = list(range(len(start)))
    sensitivity = {d: 0.0 for d in dims}
    while step >= min_step and len(result.trials) < budget:
        order = sorted(dims, key=lambda d: -sensitivity[d]) if any(sensitivity.values()) else dims
        moved = False
        for d in order:
            if len(result.trials) > len(dims) * 2 + 1 and sensitivity[d] < INSENSITIVE:
                continue
            center = result.best[d]
            points = {center: result.best_score}
            for u in (_clip(center - step), _clip(center + step)):
                if u in points:
                    continue
                trial = list(result.best)
                trial[d] = u
                value = score(trial)
                if value is None:
                    break
                points[u] = value
            if len(points) == 3:
                (x0, y0), (x1, y1), (x2, y2) = sorted(points.items())
                peak = _parabola_peak(x0, y0, x1, y1, x2, y2)
                if peak is not None and x0 < peak < x2 and min(abs(peak - x) for x in points) > min_step / 2:
                    trial = list(result.best)
                    trial[d] = peak
                    value = score(trial)
                    if value is not None:
                        points[peak] = value
            sensitivity[d] = max(sensitivity[d], max(points.values()) - min(points.values()))
            u_best = max(points, key=points.get)
            if points[u_best] > result.best_score:
                result.best[d], result.best_score, moved = u_best, points[u_best], True
            if len(result.trials) >= budget:
                break
        if not moved:
            step /= 2
    return result
