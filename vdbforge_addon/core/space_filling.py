"""Space-filling samples of the unit cube: Sobol (scipy) for the dataset job, a Latin hypercube (numpy) for the search."""

from __future__ import annotations

import math
import warnings


def sobol_points(dimensions: int, n: int, seed: int) -> list[list[float]]:
    """The first n points of one scrambled Sobol sequence: a larger n extends a dataset with the same seed."""
    from scipy.stats import qmc

    sampler = qmc.Sobol(d=dimensions, scramble=True, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy's note that n is not a power of two
        points = sampler.random_base2(max(0, math.ceil(math.log2(n)))) if n > 1 else sampler.random(1)
    return [[float(v) for v in row] for row in points[:n]]


def latin_hypercube(dimensions: int, n: int, seed: int) -> list[list[float]]:
    """n points, one in each of n equal slices of every dimension, seeded. numpy only: the outer search's opening runs
    inside Blender's Python, which has numpy but no scipy."""
    import numpy as np

    rng = np.random.default_rng(seed)
    slices = np.stack([rng.permutation(n) for _ in range(dimensions)], axis=1)
    return ((slices + rng.random((n, dimensions))) / n).tolist()
