"""Generator backbones shared by NeuroSQL, the VAE and the GAN.

Each backbone maps a latent batch (B, d) to images (B, C, H, W) in [0, 1]
through a sigmoid head, for 28, 32, 64 and 128 px and 1 or 3 channels.
``BACKBONES`` maps a name to its constructor; every constructor takes
(latent_dim, channels, resolution, width). ``BACKBONE_LABELS`` maps each
name to the label that the result tables print.
"""

import torch
from torch import nn

from neurosql.backbones.convnet import SUPPORTED_RESOLUTIONS, ConvNetDecoder
from neurosql.backbones.resnet import ResNetDecoder
from neurosql.backbones.transformer import TransformerDecoder

BACKBONES: dict[str, type[nn.Module]] = {
    "convnet": ConvNetDecoder,
    "resnet": ResNetDecoder,
    "transformer": TransformerDecoder,
}

# The NeuroSQL paper's tables call the transformer decoder "U-Net".
BACKBONE_LABELS = {"convnet": "ConvNet", "resnet": "ResNet", "transformer": "U-Net"}


def build_backbone(
    name: str, latent_dim: int, channels: int, resolution: int, width: int, seed: int
) -> nn.Module:
    """Build backbone ``name`` with weights initialised from ``seed``.

    The same (name, shape, width, seed) gives bit-identical initial weights,
    which is how NeuroSQL, the VAE and the GAN start from one decoder.
    """
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return BACKBONES[name](latent_dim, channels, resolution, width)


def backbone_parameters(name: str, latent_dim: int, channels: int, resolution: int, width: int) -> int:
    """Return the trainable parameter count of a backbone without allocating its weights."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; expected one of {', '.join(BACKBONES)}")
    with torch.device("meta"):
        return count_parameters(BACKBONES[name](latent_dim, channels, resolution, width))


def count_parameters(module: nn.Module) -> int:
    """Return the number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


__all__ = [
    "BACKBONES",
    "BACKBONE_LABELS",
    "SUPPORTED_RESOLUTIONS",
    "ConvNetDecoder",
    "ResNetDecoder",
    "TransformerDecoder",
    "backbone_parameters",
    "build_backbone",
    "count_parameters",
]
