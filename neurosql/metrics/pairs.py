"""Paired metrics (SSIM, LPIPS) and the evaluation entry point.

Appendix D of the NeuroSQL paper reports FID (proxy) on #gen = #real images,
and LPIPS and SSIM as means over 50 random real-fake pairs, with grayscale
replicated to 3 channels at metric time.
"""

import logging
from typing import Any

import lpips
import numpy as np
import torch

from neurosql.losses import ssim_per_image
from neurosql.metrics.fid import (
    InceptionFeatures,
    validate_images,
    fid_from_features,
    kid_from_features,
)
from neurosql.metrics.lpips_vgg import load_lpips_vgg, lpips_distance

log = logging.getLogger(__name__)

# Default for evaluate_images' lpips_model: load LPIPS (VGG) on the requested device.
LOAD_LPIPS = "load"


def select_pairs(
    n_real: int, n_fake: int, n_pairs: int = 50, seed: int = 0, aligned: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Draw n_pairs random real and fake indices, each without replacement.

    n_pairs is lowered to min(n_real, n_fake) when it exceeds it. With
    ``aligned=True`` (paired-z reconstructions, where fake[i] reconstructs
    real[i]) both index arrays are the same draw.
    """
    if n_real < 1 or n_fake < 1 or n_pairs < 1:
        raise ValueError(f"n_real, n_fake and n_pairs must be >= 1, got {n_real}, {n_fake}, {n_pairs}")

    n = min(n_pairs, n_real, n_fake)
    if n < n_pairs:
        log.warning("Only %d pairs available (n_real=%d, n_fake=%d), fewer than the %d requested", n, n_real, n_fake, n_pairs)

    rng = np.random.default_rng(seed)
    idx_real = rng.choice(n_real, size=n, replace=False)
    if aligned:
        if n_real != n_fake:
            raise ValueError(f"aligned pairs need n_real == n_fake, got {n_real} and {n_fake}")
        return idx_real, idx_real.copy()
    idx_fake = rng.choice(n_fake, size=n, replace=False)
    return idx_real, idx_fake


def ssim_pairs(real: torch.Tensor, fake: torch.Tensor) -> float:
    """Compute the mean SSIM over pairs (real[i], fake[i]) with the training SSIM (neurosql.losses)."""
    if real.shape != fake.shape:
        raise ValueError(f"real and fake must have the same shape, got {tuple(real.shape)} and {tuple(fake.shape)}")
    with torch.no_grad():
        return float(ssim_per_image(real.float(), fake.float()).mean().item())


def evaluate_images(
    real: torch.Tensor,
    fake: torch.Tensor,
    real_feats: np.ndarray | None = None,
    device: str | torch.device = "cpu",
    n_pairs: int = 50,
    seed: int = 0,
    lpips_model: lpips.LPIPS | str | None = LOAD_LPIPS,
    extractor: InceptionFeatures | None = None,
    kid_subset_size: int = 1000,
    kid_subsets: int = 100,
    batch_size: int = 64,
    aligned_pairs: bool = False,
) -> dict[str, Any]:
    """Compute FID (proxy), KID, LPIPS and SSIM of generated images against real ones.

    Both sets are float (N, C, H, W) tensors in [0, 1] with the same N.
    ``real_feats`` are cached Inception features of ``real`` (see
    fid.cached_features). ``lpips_model`` is a loaded model, LOAD_LPIPS to load
    it here, or None to skip LPIPS. LPIPS and SSIM use the same
    ``n_pairs`` random pairs, drawn with ``seed``: independent real and fake
    indices in sampled-z mode, or (real[i], fake[i]) with ``aligned_pairs=True``
    for paired-z reconstructions.
    """
    validate_images(real, "real")
    validate_images(fake, "fake")
    n_real, n_fake = real.shape[0], fake.shape[0]
    if n_real != n_fake:
        raise ValueError(f"#gen must equal #real for the FID proxy, got {n_fake} generated and {n_real} real images")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"real and fake image shapes differ: {tuple(real.shape[1:])} and {tuple(fake.shape[1:])}")
    if real_feats is not None and real_feats.shape[0] != n_real:
        raise ValueError(f"real_feats has {real_feats.shape[0]} rows but there are {n_real} real images")

    # Distribution metrics on Inception features.
    extractor = extractor or InceptionFeatures(device)
    if real_feats is None:
        real_feats = extractor.extract(real, batch_size=batch_size)
    fake_feats = extractor.extract(fake, batch_size=batch_size)
    fid = fid_from_features(real_feats, fake_feats)
    kid, kid_std = kid_from_features(real_feats, fake_feats, subset_size=kid_subset_size, n_subsets=kid_subsets, seed=seed)

    # Paired metrics on the same random pairs.
    idx_real, idx_fake = select_pairs(n_real, n_fake, n_pairs=n_pairs, seed=seed, aligned=aligned_pairs)
    real_pairs, fake_pairs = real[idx_real], fake[idx_fake]
    ssim = ssim_pairs(real_pairs, fake_pairs)

    if isinstance(lpips_model, str):
        if lpips_model != LOAD_LPIPS:
            raise ValueError(f"lpips_model must be an lpips.LPIPS, {LOAD_LPIPS!r} or None, got {lpips_model!r}")
        lpips_model = load_lpips_vgg(device)
    lpips_value = None if lpips_model is None else lpips_distance(lpips_model, real_pairs, fake_pairs)

    results = {
        "fid_proxy": fid,
        "kid": kid,
        "kid_std": kid_std,
        "lpips": lpips_value,
        "lpips_available": lpips_value is not None,
        "ssim": ssim,
        "n_real": int(n_real),
        "n_fake": int(n_fake),
        "n_pairs": int(len(idx_real)),
    }
    log.info("Evaluation: %s", results)
    return results
