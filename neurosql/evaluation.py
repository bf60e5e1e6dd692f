"""The evaluate stage: metrics of one samples file against the matching real images."""

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurosql.data.prepare import load_prepared, to_float
from neurosql.io import atomic_write_json
from neurosql.metrics.fid import InceptionFeatures, cached_features, load_features
from neurosql.metrics.pairs import evaluate_images

log = logging.getLogger(__name__)


def real_images(data_path: Path, mode: str, n: int, pair_index: np.ndarray | None = None) -> torch.Tensor:
    """Return the real set a samples file is compared with.

    Sampled-z samples are compared with the first n held-out test images;
    paired-z reconstructions with the training images they reconstruct.
    """
    data = load_prepared(data_path)
    if mode == "sampled_z":
        test = data["test_images"]
        if n > len(test):
            raise ValueError(
                f"the FID proxy needs {n} real test images but {data_path} contains {len(test)}; "
                "lower evaluate.fid_samples or raise the dataset's n_test in params.yaml"
            )
        return to_float(test[:n])
    if pair_index is None or (pair_index < 0).any():
        raise ValueError("paired_z samples must carry the training index of each pair")
    return to_float(data["train_images"][pair_index])


def compute_real_features(data_path: Path, n: int, out_path: Path, device: str = "cpu") -> None:
    """Compute and cache Inception features of the first n test images."""
    images = real_images(data_path, "sampled_z", n)
    meta = {"data": str(data_path), "split": "test", "first_n": int(n)}
    cached_features(out_path, images, InceptionFeatures(device), meta=meta)


def evaluate_samples(
    samples_path: Path,
    data_path: Path,
    out_path: Path,
    real_features_path: Path | None,
    n_pairs: int,
    pair_seed: int,
    device: str = "cpu",
) -> dict[str, Any]:
    """Evaluate one samples file and write its metrics JSON atomically."""
    start = time.perf_counter()
    with np.load(samples_path, allow_pickle=False) as samples:
        fake = to_float(samples["images"])
        pair_index = samples["pair_index"]
        mode = str(samples["mode"])
        meta = {key: samples[key].item() for key in ("method", "backbone", "dataset", "latent_dim", "seed", "sample_seed")}

    real = real_images(data_path, mode, len(fake), pair_index)
    real_feats = None
    if mode == "sampled_z" and real_features_path is not None:
        real_feats, _ = load_features(real_features_path)
        if len(real_feats) != len(real):
            raise ValueError(
                f"{real_features_path} contains features of {len(real_feats)} images but {samples_path} "
                f"has {len(real)}; rerun the real-features stage with the same evaluate.fid_samples"
            )

    metrics = evaluate_images(
        real,
        fake,
        real_feats=real_feats,
        device=device,
        n_pairs=n_pairs,
        seed=pair_seed,
        kid_subset_size=min(1000, len(real)),
        # Paired-z row i reconstructs real row i, so the pairs must stay aligned.
        aligned_pairs=(mode == "paired_z"),
    )
    result = {**meta, "mode": mode, **metrics, "evaluate_seconds": time.perf_counter() - start}
    atomic_write_json(out_path, result)
    return result
