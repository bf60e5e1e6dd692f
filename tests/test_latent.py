"""Latent-space numbers: probability transforms, coverage and k-NN class separation."""

import numpy as np
import pytest
from scipy.stats import kstest
from sklearn.neighbors import KNeighborsClassifier

from neurosql.lattice import make_lattice
from neurosql.latent import coverage_stats, knn_accuracy, prior_sample, to_unit_cube


@pytest.mark.parametrize("prior", ["sobol_gaussian", "uniform_grid", "unit_ball"])
def test_prior_maps_to_uniform(prior):
    u = to_unit_cube(prior_sample(prior, 4000, 3, seed=2), prior)
    for j in range(3):
        assert kstest(u[:, j], "uniform").pvalue > 1e-3


def test_even_points_have_small_ks():
    n = 1000
    codes = ((np.arange(n) + 0.5) / n)[:, None]
    # Evenly spaced points are at KS distance 0.5 / n from U(0, 1).
    assert coverage_stats(codes, "uniform_grid")["marginal_ks_max"] == pytest.approx(0.5 / n)


def test_lattice_beats_iid_discrepancy():
    lattice = make_lattice("sobol_gaussian", 1024, 2, seed=5).numpy()
    stats = coverage_stats(lattice, "sobol_gaussian", iid_seed=5)
    assert stats["discrepancy_cd"] < stats["discrepancy_cd_iid"]


def test_cell_counts_by_hand():
    # 2-D, 16 codes: 2 bins per axis (16 / 4 = 4 cells), every code in the lower-left cell.
    codes = np.full((16, 2), 0.1)
    stats = coverage_stats(codes, "uniform_grid")
    assert stats["bins_per_axis"] == 2
    assert stats["cell_occupancy"] == pytest.approx(0.25)
    assert stats["cell_entropy"] == pytest.approx(0.0)
    assert stats["cell_occupancy_iid"] == pytest.approx(1 - 0.75**16)


def test_equal_cells_have_entropy_one():
    axis = (np.arange(4) + 0.5) / 4
    codes = np.stack(np.meshgrid(axis, axis), -1).reshape(-1, 2).repeat(4, axis=0)  # 64 codes, 4 per cell
    stats = coverage_stats(codes, "uniform_grid")
    assert stats["bins_per_axis"] == 4
    assert stats["cell_occupancy"] == 1.0
    assert stats["cell_entropy"] == pytest.approx(1.0)


def test_high_dimension_skips_cells():
    stats = coverage_stats(np.random.default_rng(0).normal(size=(100, 16)), "sobol_gaussian")
    assert np.isnan(stats["cell_occupancy"])


def test_knn_matches_sklearn():
    rng = np.random.default_rng(4)
    codes = rng.normal(size=(300, 3))
    labels = (codes[:, 0] > 0).astype(int) + 2 * (rng.random(300) < 0.2)
    reference = KNeighborsClassifier(n_neighbors=6).fit(codes, labels)
    neighbours = reference.kneighbors(codes, return_distance=False)[:, 1:]  # drop each point itself
    votes = np.stack([np.bincount(labels[row], minlength=4) for row in neighbours])
    expected = (votes.argmax(1) == labels).mean()
    assert knn_accuracy(codes, labels, k=5, chunk_size=64) == pytest.approx(expected)


def test_knn_separated_classes():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 50)
    codes = rng.normal(scale=0.1, size=(150, 2)) + labels[:, None] * 10.0
    assert knn_accuracy(codes, labels, k=5) == 1.0


def test_knn_rejects_bad_k():
    with pytest.raises(ValueError, match="k must be"):
        knn_accuracy(np.zeros((5, 2)), np.zeros(5, dtype=int), k=5)
