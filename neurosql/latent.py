"""Latent-space numbers: how evenly aligned codes fill the prior, and how well they separate classes.

The aligned codes of a trained model are NeuroSQL's momentum-smoothed codes
Zhat (row i for training image i) or the VAE encoder's posterior means of
the training images. Two kinds of number describe them:

- Coverage. Codes are mapped to the unit cube by the prior's own
  probability transform (``to_unit_cube``), where codes that follow the
  prior are uniform. ``marginal_ks_max`` is the largest per-coordinate
  Kolmogorov-Smirnov distance to U(0, 1); ``discrepancy_cd`` is the centred
  L2 discrepancy (scipy.stats.qmc), printed beside that of a seeded i.i.d.
  uniform sample of the same size (``discrepancy_cd_iid``) for scale; the
  cell numbers count the codes in the b^d equal-probability cells of the
  prior, with b the largest number of bins per axis that gives at least 4
  codes per cell (NaN when even b = 2 gives fewer).
- Class separation. ``knn_accuracy`` is the leave-one-out k-nearest-neighbour
  accuracy of the class labels on the codes (Euclidean distance), beside
  ``knn_chance``, the share of the largest class.
"""

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import chi2, kstest, norm, qmc

from neurosql.data.prepare import load_prepared, to_float
from neurosql.io import atomic_savez
from neurosql.models import load_model
from neurosql.paradigms import VAE, NeuroSQL

log = logging.getLogger(__name__)

# Codes per equal-probability cell below which the cell numbers are not computed.
MIN_CODES_PER_CELL = 4
# Keeps probability transforms strictly inside (0, 1).
_EPS = 1e-12


def aligned_codes(model_path: Path, data_path: Path) -> dict[str, Any]:
    """Return the aligned codes of a model's training images, their labels and the cell keys.

    Raises ValueError for methods without aligned codes (GAN, DDPM) and for
    datasets without class labels.
    """
    paradigm, payload = load_model(Path(model_path))
    config = payload["config"]
    data = load_prepared(Path(data_path))
    if "train_labels" not in data:
        raise ValueError(f"{data_path} has no train_labels; latent class numbers need a labelled dataset")
    images = to_float(data["train_images"])

    if isinstance(paradigm, NeuroSQL):
        codes = paradigm.paired_codes()
        prior = paradigm.latent_prior()
    elif isinstance(paradigm, VAE):
        codes = paradigm.encode_mean(images)
        prior = "sobol_gaussian"  # the VAE's prior is N(0, I)
    else:
        raise ValueError(f"method {config['method']!r} has no aligned codes; only NeuroSQL and the VAE have them")
    if len(codes) != len(images):
        raise ValueError(
            f"{model_path} contains {len(codes)} codes but {data_path} has {len(images)} training images; "
            "pass the prepared data the model was trained on"
        )
    solver = config["method_settings"].get("solver")
    method = config["method"] if solver in (None, "exact") else f"{config['method']}-{solver}"
    return {
        "codes": codes.numpy().astype(np.float64),
        "labels": np.asarray(data["train_labels"]).astype(np.int64),
        "prior": prior,
        "method": method,
        "backbone": config["backbone"],
        "dataset": config["dataset"],
        "latent_dim": int(config["latent_dim"]),
        "seed": int(config["seed"]),
    }


def write_codes(model_path: Path, data_path: Path, out_path: Path) -> None:
    """Write a model's aligned codes, labels and cell keys to an npz file."""
    cell = aligned_codes(model_path, data_path)
    atomic_savez(out_path, **{key: np.asarray(value) for key, value in cell.items()})
    log.info("wrote %d aligned codes of %s to %s", len(cell["codes"]), cell["method"], out_path)


def read_codes(path: Path) -> dict[str, Any]:
    """Read a codes file written by ``write_codes``."""
    with np.load(path, allow_pickle=False) as data:
        cell = {key: data[key] for key in data.files}
    for key in ("prior", "method", "backbone", "dataset"):
        cell[key] = str(cell[key])
    for key in ("latent_dim", "seed"):
        cell[key] = int(cell[key])
    return cell


def to_unit_cube(codes: np.ndarray, prior: str) -> np.ndarray:
    """Map codes to [0, 1]^d by the probability transform under which ``prior`` is uniform.

    ``sobol_gaussian`` (N(0, I)): the normal CDF per coordinate.
    ``uniform_grid`` (U([0, 1]^d)): the identity. ``unit_ball`` (uniform on
    the unit ball): radius r -> r^d is U(0, 1) and independent of the
    direction, so direction * sqrt(chi2_d^-1(r^d)) is N(0, I); the normal CDF
    then maps it to the cube.
    """
    codes = np.asarray(codes, dtype=np.float64)
    if prior == "sobol_gaussian":
        return norm.cdf(codes)
    if prior == "uniform_grid":
        return np.clip(codes, 0.0, 1.0)
    if prior == "unit_ball":
        d = codes.shape[1]
        radius = np.linalg.norm(codes, axis=1, keepdims=True)
        direction = codes / np.maximum(radius, _EPS)
        u = np.clip(np.minimum(radius, 1.0) ** d, _EPS, 1.0 - _EPS)
        return norm.cdf(direction * np.sqrt(chi2.ppf(u, d)))
    raise ValueError(f"unknown prior {prior!r}; expected sobol_gaussian, uniform_grid or unit_ball")


def coverage_stats(codes: np.ndarray, prior: str, iid_seed: int = 0) -> dict[str, float]:
    """Measure how evenly ``codes`` fill ``prior`` (see the module docstring for each number)."""
    u = to_unit_cube(codes, prior)
    n, d = u.shape
    ks = max(kstest(u[:, j], "uniform").statistic for j in range(d))
    iid = np.random.default_rng(iid_seed).random((n, d))
    stats = {
        "marginal_ks_max": float(ks),
        "discrepancy_cd": float(qmc.discrepancy(u, method="CD")),
        "discrepancy_cd_iid": float(qmc.discrepancy(iid, method="CD")),
        "bins_per_axis": float("nan"),
        "cell_occupancy": float("nan"),
        "cell_occupancy_iid": float("nan"),
        "cell_entropy": float("nan"),
    }

    bins = int(np.floor((n / MIN_CODES_PER_CELL) ** (1.0 / d)))
    if bins >= 2:
        cells = bins**d
        index = np.minimum((u * bins).astype(np.int64), bins - 1)
        flat = np.ravel_multi_index(index.T, (bins,) * d)
        counts = np.bincount(flat, minlength=cells)
        share = counts[counts > 0] / n
        stats.update(
            {
                "bins_per_axis": float(bins),
                "cell_occupancy": float((counts > 0).mean()),
                # Expected occupied share for n i.i.d. uniform codes, for scale.
                "cell_occupancy_iid": float(1.0 - (1.0 - 1.0 / cells) ** n),
                # Entropy of the cell shares over its maximum log(cells): 1 means equal counts.
                "cell_entropy": float(-(share * np.log(share)).sum() / np.log(cells)),
            }
        )
    return stats


def knn_accuracy(codes: np.ndarray, labels: np.ndarray, k: int = 5, chunk_size: int = 1024) -> float:
    """Return the leave-one-out k-NN accuracy of ``labels`` on ``codes``.

    Each code votes with its k nearest other codes (Euclidean; equal
    distances keep index order). A tied vote goes to the smallest label.
    """
    codes = np.asarray(codes, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n = len(codes)
    if not 1 <= k < n:
        raise ValueError(f"k must be in [1, {n - 1}] for {n} codes, got {k}")
    n_classes = int(labels.max()) + 1
    squared = (codes**2).sum(1)
    correct = 0
    for start in range(0, n, chunk_size):
        block = codes[start : start + chunk_size]
        distances = squared[start : start + len(block), None] + squared[None, :] - 2.0 * block @ codes.T
        rows = np.arange(len(block))
        distances[rows, start + rows] = np.inf  # leave the code itself out
        neighbours = np.argsort(distances, axis=1, kind="stable")[:, :k]
        votes = np.zeros((len(block), n_classes), dtype=np.int64)
        np.add.at(votes, (np.repeat(rows, k), labels[neighbours].ravel()), 1)
        correct += int((votes.argmax(1) == labels[start : start + len(block)]).sum())
    return correct / n


def latent_stats(codes_path: Path, k: int = 5) -> dict[str, Any]:
    """Return the cell keys, coverage numbers and k-NN class separation of one codes file."""
    cell = read_codes(codes_path)
    labels = cell["labels"]
    row = {key: cell[key] for key in ("dataset", "backbone", "method", "latent_dim", "seed", "prior")}
    row["n_codes"] = int(len(cell["codes"]))
    row.update(coverage_stats(cell["codes"], cell["prior"], iid_seed=cell["seed"]))
    row["knn_k"] = int(k)
    row["knn_accuracy"] = knn_accuracy(cell["codes"], labels, k=k)
    row["knn_chance"] = float(np.bincount(labels).max() / len(labels))
    return row


def prior_sample(prior: str, n: int, d: int, seed: int) -> np.ndarray:
    """Draw n codes from ``prior`` with a seeded torch generator (a reference set for tests and plots)."""
    from neurosql.lattice import sample_prior

    return sample_prior(prior, n, d, torch.Generator().manual_seed(seed)).numpy().astype(np.float64)


def latent_table(codes_paths: list[Path], k: int = 5) -> pd.DataFrame:
    """Return one row of latent-space numbers per codes file, in table order."""
    from neurosql.figures import method_rank

    rows = [latent_stats(Path(p), k=k) for p in codes_paths]
    rows.sort(key=lambda r: (r["dataset"], r["backbone"], r["latent_dim"], r["seed"], method_rank(r["method"])))
    return pd.DataFrame(rows)
