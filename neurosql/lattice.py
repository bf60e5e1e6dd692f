"""Latent lattices: the n fixed codes Q_1..Q_n that NeuroSQL assigns to images.

Each lattice comes with the prior it discretises, and ``sample_prior`` draws
from that same prior, so sampled-z generation never feeds the decoder codes
from a distribution it was not trained on:

- ``sobol_gaussian``: scrambled Sobol points in [0, 1]^d mapped coordinatewise
  through the standard normal inverse CDF; prior N(0, I).
- ``uniform_grid``: a regular grid of cell centres in [0, 1]^d, thinned to n
  points by a seeded draw when the full grid is larger; prior U([0, 1]^d).
- ``unit_ball``: center-outward quantiles of the uniform distribution on the
  unit ball (radii at the (i - 0.5)/n quantiles of the radius law, directions
  from a scrambled Sobol sequence); prior U(unit ball).
"""

import math
import warnings

import numpy as np
import torch
from scipy.stats import norm, qmc

LATTICES = ("sobol_gaussian", "uniform_grid", "unit_ball")

# Keeps the normal inverse CDF finite for Sobol points that land on 0 or 1.
_EPS = 1e-6


def _sobol(n: int, d: int, seed: int) -> np.ndarray:
    # A prefix of a scrambled Sobol sequence keeps low discrepancy for any n.
    # scipy warns when n is not a power of two because of balance properties
    # that the lattice does not rely on.
    sampler = qmc.Sobol(d=d, scramble=True, seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return sampler.random(n)


def sobol_gaussian(n: int, d: int, seed: int) -> np.ndarray:
    """Return n scrambled Sobol points pushed through the N(0, 1) inverse CDF."""
    u = np.clip(_sobol(n, d, seed), _EPS, 1.0 - _EPS)
    return norm.ppf(u)


def uniform_grid(n: int, d: int, seed: int) -> np.ndarray:
    """Return n centres of a regular grid in [0, 1]^d with ceil(n^(1/d)) cells per axis."""
    per_axis = math.ceil(n ** (1.0 / d) - 1e-9)
    if per_axis**d > 50_000_000:
        raise ValueError(
            f"uniform_grid with n={n} and d={d} needs {per_axis}^{d} grid cells; "
            "use the sobol_gaussian or unit_ball lattice for this latent dimension"
        )
    axis = (np.arange(per_axis) + 0.5) / per_axis
    grid = np.stack(np.meshgrid(*([axis] * d), indexing="ij"), axis=-1).reshape(-1, d)
    if len(grid) > n:
        keep = np.random.default_rng(seed).choice(len(grid), size=n, replace=False)
        grid = grid[np.sort(keep)]
    return grid


def unit_ball(n: int, d: int, seed: int) -> np.ndarray:
    """Return n center-outward quantiles of the uniform law on the unit ball in R^d."""
    # Radius of a uniform point in the d-ball has CDF r^d, so the (i - 0.5)/n
    # quantiles are ((i - 0.5)/n)^(1/d).
    radii = ((np.arange(n) + 0.5) / n) ** (1.0 / d)
    if d == 1:
        signs = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
        return (radii * signs)[:, None]
    directions = norm.ppf(np.clip(_sobol(n, d, seed), _EPS, 1.0 - _EPS))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    order = np.random.default_rng(seed).permutation(n)
    return directions * radii[order, None]


def make_lattice(kind: str, n: int, d: int, seed: int) -> torch.Tensor:
    """Build the (n, d) float32 lattice of the given kind, seeded."""
    builders = {"sobol_gaussian": sobol_gaussian, "uniform_grid": uniform_grid, "unit_ball": unit_ball}
    if kind not in builders:
        raise ValueError(f"unknown lattice {kind!r}; expected one of {', '.join(LATTICES)}")
    if n < 1 or d < 1:
        raise ValueError(f"lattice size n={n} and dimension d={d} must both be at least 1")
    return torch.as_tensor(builders[kind](n, d, seed), dtype=torch.float32)


def sample_prior(kind: str, n: int, d: int, generator: torch.Generator) -> torch.Tensor:
    """Draw n codes from the prior that lattice ``kind`` discretises."""
    if kind == "sobol_gaussian":
        return torch.randn(n, d, generator=generator)
    if kind == "uniform_grid":
        return torch.rand(n, d, generator=generator)
    if kind == "unit_ball":
        direction = torch.randn(n, d, generator=generator)
        direction /= direction.norm(dim=1, keepdim=True).clamp_min(1e-12)
        radius = torch.rand(n, 1, generator=generator) ** (1.0 / d)
        return direction * radius
    raise ValueError(f"unknown lattice {kind!r}; expected one of {', '.join(LATTICES)}")


def prior_of_lattice(kind: str) -> str:
    """Name the prior distribution that lattice ``kind`` discretises."""
    return {"sobol_gaussian": "normal", "uniform_grid": "uniform_cube", "unit_ball": "uniform_ball"}[kind]
