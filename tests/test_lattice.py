import numpy as np
import pytest
import torch
from scipy import stats

from neurosql.lattice import LATTICES, make_lattice, sample_prior


@pytest.mark.parametrize("kind", LATTICES)
def test_lattice_shape_and_dtype(kind):
    q = make_lattice(kind, 500, 3, seed=11)
    assert q.shape == (500, 3)
    assert q.dtype == torch.float32
    assert torch.isfinite(q).all()


@pytest.mark.parametrize("kind", LATTICES)
def test_lattice_seeded_reproducible(kind):
    a = make_lattice(kind, 300, 2, seed=5)
    b = make_lattice(kind, 300, 2, seed=5)
    c = make_lattice(kind, 300, 2, seed=6)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_sobol_gaussian_marginals_match_normal_quantiles():
    n = 4096
    q = make_lattice("sobol_gaussian", n, 3, seed=11).double().numpy()
    expected = stats.norm.ppf((np.arange(n) + 0.5) / n)
    for j in range(3):
        # Kolmogorov-Smirnov distance to N(0, 1): i.i.d. draws give ~0.02 at
        # this n, a scrambled Sobol prefix stays far below.
        assert stats.kstest(q[:, j], "norm").statistic < 0.002
        # Sorted lattice values track the (i + 0.5)/n normal quantiles in the bulk.
        middle = slice(n // 20, n - n // 20)
        assert np.abs(np.sort(q[:, j])[middle] - expected[middle]).max() < 0.01


def test_sobol_gaussian_coordinates_are_uncorrelated():
    q = make_lattice("sobol_gaussian", 4096, 4, seed=3).double().numpy()
    corr = np.corrcoef(q.T)
    assert np.abs(corr - np.eye(4)).max() < 0.01


def test_uniform_grid_full_grid_is_cell_centres():
    q = make_lattice("uniform_grid", 16, 2, seed=0).double().numpy()
    centres = (np.arange(4) + 0.5) / 4
    expected = {(a, b) for a in centres for b in centres}
    assert {tuple(row) for row in np.round(q, 12)} == expected


def test_uniform_grid_thinned_points_are_distinct_cells():
    q = make_lattice("uniform_grid", 10, 2, seed=0).numpy()
    assert len({tuple(row) for row in q}) == 10
    assert (q > 0).all()
    assert (q < 1).all()


def test_unit_ball_radii_are_radius_quantiles():
    n, d = 1000, 3
    q = make_lattice("unit_ball", n, d, seed=2).double()
    radii = torch.sort(q.norm(dim=1)).values.numpy()
    expected = ((np.arange(n) + 0.5) / n) ** (1 / d)
    assert np.abs(radii - expected).max() < 1e-6
    assert radii.max() < 1.0


def test_prior_draws_match_lattice_support():
    rng = torch.Generator().manual_seed(0)
    cube = sample_prior("uniform_grid", 2000, 2, rng)
    ball = sample_prior("unit_ball", 2000, 3, rng)
    normal = sample_prior("sobol_gaussian", 20000, 2, rng)
    assert (cube >= 0).all()
    assert (cube <= 1).all()
    assert (ball.norm(dim=1) <= 1.0 + 1e-6).all()
    assert abs(float(normal.mean())) < 0.03
    assert abs(float(normal.std()) - 1.0) < 0.03


def test_unknown_lattice_rejected():
    with pytest.raises(ValueError, match="unknown lattice 'grid'"):
        make_lattice("grid", 10, 2, seed=0)
