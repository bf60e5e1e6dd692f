"""Generate images from a trained model: sampled-z (prior draws) and paired-z (aligned codes).

Sampled-z draws code i from a generator seeded by (seed, i), so any single
image can be regenerated alone. Paired-z decodes the codes aligned with the
first n training images: NeuroSQL's momentum-smoothed codes Zhat, or the
VAE encoder's posterior means; the GAN and the DDPM have no paired codes.
"""

from pathlib import Path

import numpy as np
import torch

from neurosql.data.prepare import load_prepared, to_float
from neurosql.lattice import sample_prior
from neurosql.models import load_model
from neurosql.paradigms import DDPM, VAE, NeuroSQL, Paradigm

MODES = ("sampled_z", "paired_z")


def image_seed(seed: int, index: int) -> int:
    """Return the seed of sampled image ``index`` in a run seeded with ``seed``."""
    return seed * 1_000_003 + index


def sampled_codes(prior: str, n: int, latent_dim: int, seed: int, start: int = 0) -> torch.Tensor:
    """Draw codes start..start+n-1, each from its own seeded generator."""
    rows = [
        sample_prior(prior, 1, latent_dim, torch.Generator().manual_seed(image_seed(seed, i)))
        for i in range(start, start + n)
    ]
    return torch.cat(rows)


def paired_codes(paradigm: Paradigm, train_images: torch.Tensor, n: int) -> torch.Tensor:
    """Return the codes aligned with training images 0..n-1; raise for the GAN and the DDPM."""
    if isinstance(paradigm, NeuroSQL):
        return paradigm.paired_codes()[:n]
    if isinstance(paradigm, VAE):
        return paradigm.encode_mean(train_images[:n])
    raise ValueError(f"paired_z mode needs aligned codes; method {paradigm.name!r} has none (use sampled_z)")


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Quantise images in [0, 1] to uint8, the storage format of real and generated sets."""
    return (images.clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()


def generate(
    model_path: Path, data_path: Path, n: int, seed: int, mode: str, chunk_size: int = 500
) -> dict[str, np.ndarray]:
    """Generate ``n`` images in ``mode``; return arrays for the samples file.

    Images are generated ``chunk_size`` codes at a time. The DDPM's codes are
    its starting noise x_T (channels * height * width values per image): the
    samples file stores them as an empty (n, 0) array, because each is
    regenerated from its per-image seed.
    """
    if mode not in MODES:
        raise ValueError(f"unknown sampling mode {mode!r}; expected one of {MODES}")
    paradigm, _ = load_model(model_path)
    keep_codes = not isinstance(paradigm, DDPM)

    if mode == "sampled_z":
        pair_index = np.full(n, -1, dtype=np.int64)
        chunks = (
            sampled_codes(paradigm.latent_prior(), min(chunk_size, n - start), paradigm.latent_dim, seed, start=start)
            for start in range(0, n, chunk_size)
        )
    else:
        train_images = to_float(load_prepared(data_path)["train_images"])
        if n > len(train_images):
            raise ValueError(f"paired_z asks for {n} images but the training split has {len(train_images)}")
        codes = paired_codes(paradigm, train_images, n)
        pair_index = np.arange(n, dtype=np.int64)
        chunks = (codes[start : start + chunk_size] for start in range(0, n, chunk_size))

    images, stored_codes = [], []
    for codes in chunks:
        images.append(paradigm.generate(codes))
        stored_codes.append(codes if keep_codes else codes[:, :0])
    return {
        "images": to_uint8(torch.cat(images)),
        "codes": torch.cat(stored_codes).numpy().astype(np.float32),
        "pair_index": pair_index,
    }
