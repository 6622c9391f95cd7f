"""Outer search over the normalised simulation parameters: CMA-ES (pycma, ask/tell) or random search.

Both are generation based and deterministic for a seed: a generation of `population` points is asked, evaluated in
any order by the worker pool, and told back in index order, so a resumed run replays exactly. The first point of the
first generation is the start (preset defaults or a warm start) for both, so the baseline sees it too. Scores are
similarities in [0, 1]; CMA-ES minimises 1 − score.
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

    def __init__(self, start: list[float], sigma0: float, seed: int, population: int) -> None:
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
        self.es.inject([x0], force=True)
        self._asked: list[np.ndarray] = []

    def ask(self) -> list[list[float]]:
        self._asked = self.es.ask()
        return [np.clip(x[: self.dims], 0.0, 1.0).tolist() for x in self._asked]

    def tell(self, points: list[list[float]], scores: list[float]) -> None:
        if len(scores) != len(self._asked):
            return  # a truncated last generation is never told; the run ends there
        self.es.tell(self._asked, [1.0 - s for s in scores])


def make_optimizer(kind: str, start: list[float], sigma0: float, seed: int, population: int):
    if not start:
        return RandomSearch([], seed, 1)  # nothing to search: one bake, the inner fit does the rest
    if kind == "random":
        return RandomSearch(start, seed, population)
    if kind == "cma":
        return CmaSearch(start, sigma0, seed, population)
    raise VDBForgeError(f"unknown optimizer '{kind}' (choose cma or random)")
