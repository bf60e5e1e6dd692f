"""ResNet decoder: four pre-activation residual blocks with nearest-neighbour upsampling."""

import torch
import torch.nn.functional as F
from torch import nn

from neurosql.backbones.convnet import SUPPORTED_RESOLUTIONS

N_BLOCKS = 4


def block_layout(resolution: int) -> tuple[int, int]:
    """Return (start side, number of the four blocks that double the side).

    The last blocks upsample: 28 px starts from 7 x 7 and doubles twice; 32,
    64 and 128 px start from resolution / 16 and double in every block.
    """
    if resolution == 28:
        return 7, 2
    if resolution in (32, 64, 128):
        return resolution // 2**N_BLOCKS, N_BLOCKS
    raise ValueError(f"unsupported resolution {resolution}; expected one of {SUPPORTED_RESOLUTIONS}")


class ResidualUpBlock(nn.Module):
    """BN-ReLU-conv3x3 twice, after an optional 2x nearest upsampling, plus a shortcut."""

    def __init__(self, c_in: int, c_out: int, upsample: bool):
        super().__init__()
        self.upsample = upsample
        self.norm1 = nn.BatchNorm2d(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        h = self.conv1(F.relu(self.norm1(x)))
        h = self.conv2(F.relu(self.norm2(h)))
        return h + self.shortcut(x)


class ResNetDecoder(nn.Module):
    """Linear stem to 8*width channels, four residual up blocks, 3x3 head with sigmoid.

    The blocks output 8, 4, 2 and 1 times ``width`` channels, so width 64 is
    the 512 -> 256 -> 128 -> 64 decoder of the NeuroSQL paper (Appendix M).
    """

    def __init__(self, latent_dim: int, channels: int, resolution: int, width: int = 64):
        super().__init__()
        start, n_up = block_layout(resolution)
        widths = [8 * width, 8 * width, 4 * width, 2 * width, width]

        self.latent_dim = latent_dim
        self.channels = channels
        self.resolution = resolution
        self.stem = nn.Sequential(
            nn.Linear(latent_dim, widths[0] * start * start),
            nn.Unflatten(1, (widths[0], start, start)),
        )
        self.blocks = nn.Sequential(
            *[
                ResidualUpBlock(widths[i], widths[i + 1], upsample=i >= N_BLOCKS - n_up)
                for i in range(N_BLOCKS)
            ]
        )
        self.head = nn.Sequential(
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, channels, 3, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.head(self.blocks(self.stem(z))))
