"""Outer search over the normalised simulation parameters: CMA-ES (pycma, ask/tell) or random search.

Both are generation based and deterministic for a seed: a generation of `population` points is asked, evaluated in
any order by the worker pool, and told back in index order, so a resumed run replays exactly. The first point of the
first generation is the start (preset defaults or a warm start) for both, so the baseline sees it too. Scores are
similarities in [0, 1]; CMA-ES minimises 1 − score.

`cma` opens with one space-filling generation (the start and a Latin hypercube sample of the search region) and
runs CMA-ES from that generation's best point: at ~32 bakes the landscape is rough at the scale a search can explore
(../shared/MATCHING.md), so a mean recombined from a few widely spread points can land between basins, while the best
point of a well spread first look is a basin worth refining.
"""

from __future__ import annotations

import numpy as np

from .errors import VDBForgeError


class RandomSearch:
    def __init__(self, start: list[float], seed: int, population: int) -> None:
        self.start, self.population, self.generation = list(start), population, 0
        self.rng = np.random.default_rng(seed)

    def ask(self) -> list[list[float]]:
        points = self.rng.random((self.population, len(self.start))).tolist()
        if self.generation == 0:
            points[0] = list(self.start)
        self.generation += 1
        return points

    def tell(self, points: list[list[float]], scores: list[float]) -> None:
        pass


class CmaSearch:
    """pycma with box bounds [0, 1]; a single dimension gets a dummy partner (pycma needs at least two)."""

    def __init__(
        self, start: list[float], sigma0: float, seed: int, population: int, include_start: bool = True
    ) -> None:
        import cma

        self.dims = len(start)
        x0 = list(start) + ([0.5] if self.dims == 1 else [])
        options = {
            "bounds": [0.0, 1.0],
            "popsize": population,
            "seed": seed + 1,  # pycma treats seed 0 as "random"
            "verbose": -9,
            "CMA_diagonal": False,
            "tolfun": 0.0,
            "tolflatfitness": 10_000,  # flat generations are normal with small budgets; the budget decides
        }
        self.es = cma.CMAEvolutionStrategy(x0, sigma0, options)
        if include_start:
            self.es.inject([x0], force=True)
        self._asked: list[np.ndarray] = []

    def ask(self) -> list[list[float]]:
        self._asked = self.es.ask()
        return [np.clip(x[: self.dims], 0.0, 1.0).tolist() for x in self._asked]

    def tell(self, points: list[list[float]], scores: list[float]) -> None:
        if len(scores) != len(self._asked):
            return  # a truncated last generation is never told; the run ends there
        self.es.tell(self._asked, [1.0 - s for s in scores])


def latin_hypercube(dimensions: int, n: int, seed: int) -> list[list[float]]:
    """n points, one in each of n equal slices of every dimension, seeded. numpy only: the search runs inside
    Blender's Python, which has numpy but no scipy."""
    rng = np.random.default_rng(seed)
    slices = np.stack([rng.permutation(n) for _ in range(dimensions)], axis=1)
    return ((slices + rng.random((n, dimensions))) / n).tolist()


class OpenedCmaSearch:
    """Generation 0: the start plus population − 1 Latin hypercube points of the opening region (the whole box, or
    start ± 2 σ₀ for an informed start); then CMA-ES from generation 0's best point with step REFINE × σ₀, without
    re-baking that point."""

    REFINE = 0.6  # the opening looked at σ₀'s scale already; the refinement works closer to its best point

    def __init__(self, start: list[float], sigma0: float, seed: int, population: int, informed: bool = False) -> None:
        self.sigma0, self.seed, self.population = sigma0, seed, population
        low = [max(0.0, u - 2 * sigma0) if informed else 0.0 for u in start]
        high = [min(1.0, u + 2 * sigma0) if informed else 1.0 for u in start]
        sample = latin_hypercube(len(start), max(0, population - 1), seed)
        self.opening = [list(start)] + [
            [lo + u * (hi - lo) for u, lo, hi in zip(point, low, high, strict=True)] for point in sample
        ]
        self.cma: CmaSearch | None = None

    def ask(self) -> list[list[float]]:
        if self.cma is None:
            return [list(p) for p in self.opening]
        return self.cma.ask()

    def tell(self, points: list[list[float]], scores: list[float]) -> None:
        if self.cma is not None:
            self.cma.tell(points, scores)
        elif len(scores) == len(self.opening):
            best = self.opening[int(np.argmax(scores))]  # the first of equals: the start wins ties
            self.cma = CmaSearch(best, self.REFINE * self.sigma0, self.seed, self.population, include_start=False)


def make_optimizer(kind: str, start: list[float], sigma0: float, seed: int, population: int, informed: bool = False):
    """`informed`: the start is a prediction or a warm start (its σ₀ says how far to trust it), not the preset's."""
    if not start:
        return RandomSearch([], seed, 1)  # nothing to search: one bake, the inner fit does the rest
    if kind == "random":
        return RandomSearch(start, seed, population)
    if kind == "cma":
        return OpenedCmaSearch(start, sigma0, seed, population, informed)
    raise VDBForgeError(f"unknown optimizer '{kind}' (choose cma or random)")
