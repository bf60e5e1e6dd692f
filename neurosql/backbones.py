"""Generator backbones shared by NeuroSQL, the VAE and the GAN.

Each backbone maps a latent batch (B, d) to images (B, C, H, W) in [0, 1]
through a sigmoid head. ``BACKBONES`` maps a name to its constructor; every
constructor takes (latent_dim, channels, resolution, width).
"""

import math

import torch
from torch import nn

SUPPORTED_RESOLUTIONS = (28, 32, 64, 128)


def _start_size(resolution: int) -> tuple[int, int]:
    """Return (start side, number of stride-2 upsamplings) for a resolution."""
    if resolution == 28:
        return 7, 2
    if resolution in (32, 64, 128):
        return 4, int(math.log2(resolution // 4))
    raise ValueError(
        f"unsupported resolution {resolution}; expected one of {SUPPORTED_RESOLUTIONS}"
    )


class ConvNetDecoder(nn.Module):
    """Transposed-convolution decoder: a linear stem, stride-2 upsampling, sigmoid head.

    ``width`` is the channel count of the last upsampling block; each block
    towards the stem doubles it, capped at 8 * width.
    """

    def __init__(self, latent_dim: int, channels: int, resolution: int, width: int = 64):
        super().__init__()
        start, n_up = _start_size(resolution)
        widths = [min(width * 2**i, width * 8) for i in reversed(range(n_up + 1))]

        self.latent_dim = latent_dim
        self.channels = channels
        self.resolution = resolution
        self.stem = nn.Sequential(
            nn.Linear(latent_dim, widths[0] * start * start),
            nn.ReLU(inplace=True),
            nn.Unflatten(1, (widths[0], start, start)),
        )

        blocks = []
        for c_in, c_out in zip(widths[:-1], widths[1:]):
            blocks += [
                nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]
        self.up = nn.Sequential(*blocks)
        self.head = nn.Conv2d(widths[-1], channels, kernel_size=3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.up(self.stem(z))))


BACKBONES = {
    "convnet": ConvNetDecoder,
}


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


def count_parameters(module: nn.Module) -> int:
    """Return the number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
