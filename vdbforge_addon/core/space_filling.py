"""Space-filling samples of the unit cube, shared by the dataset job and the outer search's opening generation."""

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
