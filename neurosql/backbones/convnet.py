"""ConvNet decoder: a linear stem and a stack of stride-2 transposed convolutions."""

import math

import torch
from torch import nn

SUPPORTED_RESOLUTIONS = (28, 32, 64, 128)


def start_size(resolution: int) -> tuple[int, int]:
    """Return (start side, number of stride-2 upsamplings) that reach ``resolution``.

    28 px starts from 7 x 7 (two doublings); 32, 64 and 128 px start from 4 x 4.
    """
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
        start, n_up = start_size(resolution)
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
