"""Build a paradigm from a resolved cell config, and save/load trained models."""

from pathlib import Path
from typing import Any

import torch

from neurosql.backbones import build_backbone, count_parameters
from neurosql.io import atomic_torch_save
from neurosql.paradigms import GAN, VAE, NeuroSQL, Paradigm

MODEL_FORMAT = "neurosql-model-v1"


def build_paradigm(config: dict[str, Any], n_train: int) -> Paradigm:
    """Construct the cell's paradigm around a decoder initialised from the cell seed.

    Every method calls ``build_backbone`` with the same seed first, so
    NeuroSQL, the VAE and the GAN of one cell start from identical decoder
    weights; method-specific networks are seeded separately.
    """
    seed = config["seed"]
    latent_dim = config["latent_dim"]
    channels = config["channels"]
    resolution = config["resolution"]
    settings = config["method_settings"]
    decoder = build_backbone(
        config["backbone"], latent_dim, channels, resolution, config["backbone_settings"]["width"], seed
    )

    method = config["method"]
    if method == "neurosql":
        return NeuroSQL(
            decoder,
            latent_dim,
            n_images=n_train,
            lattice=settings["lattice"],
            assign_every=settings["assign_every"],
            momentum=settings["momentum"],
            solver=settings["solver"],
            cost=settings["cost"],
            init=settings["init"],
            mode=settings["mode"],
            seed=seed,
        )
    if method == "vae":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            return VAE(decoder, latent_dim, channels * resolution**2, settings["hidden"], settings["beta"])
    if method == "gan":
        return GAN(decoder, latent_dim, channels, settings["disc_width"], disc_seed=seed + 2)
    raise ValueError(f"unknown method {method!r}")


def save_model(path: Path, paradigm: Paradigm, config: dict[str, Any], n_train: int, info: dict[str, Any]) -> None:
    """Write the trained model file atomically; it loads with weights_only=True."""
    payload = {
        "format": MODEL_FORMAT,
        "config": config,
        "n_train": n_train,
        "state_dict": paradigm.state_dict(),
        "n_parameters": {
            "decoder": count_parameters(paradigm.decoder),
            "total": count_parameters(paradigm),
        },
        **info,
    }
    atomic_torch_save(payload, path)


def load_model(path: Path, device: str | torch.device = "cpu") -> tuple[Paradigm, dict[str, Any]]:
    """Load a model file written by ``save_model``; return (paradigm in eval mode, payload)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}; run the train stage first")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not a NeuroSQL model file (format {payload.get('format')!r})")
    paradigm = build_paradigm(payload["config"], payload["n_train"])
    paradigm.load_state_dict(payload["state_dict"])
    paradigm.to(device).eval()
    return paradigm, payload
