"""Build a paradigm from a resolved cell config, and save/load trained models."""

from pathlib import Path
from typing import Any

import torch

from neurosql.backbones import backbone_parameters, build_backbone, count_parameters
from neurosql.backbones.unet import UNet, match_width
from neurosql.io import atomic_torch_save
from neurosql.paradigms import DDPM, GAN, VAE, NeuroSQL, Paradigm

MODEL_FORMAT = "neurosql-model-v1"


def build_paradigm(config: dict[str, Any], n_train: int) -> Paradigm:
    """Construct the cell's paradigm around a decoder initialised from the cell seed.

    Every method calls ``build_backbone`` with the same seed first, so
    NeuroSQL, the VAE and the GAN of one cell start from identical decoder
    weights; method-specific networks are seeded separately. The DDPM has no
    latent code and trains its own U-Net instead (see ``build_ddpm``).
    """
    seed = config["seed"]
    latent_dim = config["latent_dim"]
    channels = config["channels"]
    resolution = config["resolution"]
    settings = config["method_settings"]
    method = config["method"]
    if method == "ddpm":
        return build_ddpm(config)
    decoder = build_backbone(
        config["backbone"], latent_dim, channels, resolution, config["backbone_settings"]["width"], seed
    )

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


def ddpm_unet_width(config: dict[str, Any]) -> int:
    """Return the U-Net width whose parameter count matches the cell's shared decoder.

    The reference decoder is the cell's backbone at the smallest latent
    dimension of the dataset's grid (``method_settings.match_latent_dim``).
    """
    settings = config["method_settings"]
    target = backbone_parameters(
        config["backbone"],
        settings["match_latent_dim"],
        config["channels"],
        config["resolution"],
        config["backbone_settings"]["width"],
    )
    return match_width(target, config["channels"], config["resolution"], settings["param_tolerance"])


def build_ddpm(config: dict[str, Any]) -> DDPM:
    """Construct the DDPM baseline of a cell, its U-Net initialised from the cell seed."""
    settings = config["method_settings"]
    width = ddpm_unet_width(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config["seed"])
        unet = UNet(config["channels"], config["resolution"], width)
    return DDPM(
        unet,
        timesteps=settings["timesteps"],
        beta_start=settings["beta_start"],
        beta_end=settings["beta_end"],
        sample_steps=settings["sample_steps"],
        val_steps=settings["val_steps"],
    )


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


def read_model_info(path: Path) -> dict[str, Any]:
    """Return a model file's config, parameter counts and training summary, without its weights.

    The file is memory-mapped, so reading the summary of a large model stays cheap.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}; run the train stage first")
    payload = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    if payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not a NeuroSQL model file (format {payload.get('format')!r})")
    return {key: value for key, value in payload.items() if key != "state_dict"}


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
