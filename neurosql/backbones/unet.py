"""The compact noise-prediction U-Net of the DDPM baseline, and its width matching.

The DDPM baseline has no latent code, so this network is not in the decoder
registry. Its base width is chosen per cell so that its trainable parameter
count lies within a tolerance (10 % by default) of the shared decoder's at the
same resolution: ``match_width`` searches the width whose count is closest.
"""

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

from neurosql.backbones.convnet import SUPPORTED_RESOLUTIONS

# Channel multipliers per level; every level but the last halves the side.
LEVEL_MULTS = {28: (1, 2, 2), 32: (1, 2, 2), 64: (1, 2, 2, 2), 128: (1, 1, 2, 2, 2)}
MIN_WIDTH = 4
MAX_WIDTH = 1024


def _groups(channels: int) -> int:
    """Return the largest GroupNorm group count in (8, 4, 2, 1) that divides ``channels``."""
    return next(g for g in (8, 4, 2, 1) if channels % g == 0)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Return sinusoidal embeddings (B, dim) of (possibly fractional) timesteps ``t``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / max(half, 1))
    angles = t.float()[:, None] * freqs[None]
    emb = torch.cat([angles.sin(), angles.cos()], dim=1)
    return F.pad(emb, (0, dim - emb.shape[1]))


class TimeResBlock(nn.Module):
    """GroupNorm-SiLU-conv3x3 twice, with the time embedding added in between, plus a shortcut."""

    def __init__(self, c_in: int, c_out: int, t_dim: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(t_dim, c_out)
        self.norm2 = nn.GroupNorm(_groups(c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(t_emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.shortcut(x)


class UNet(nn.Module):
    """A compact U-Net that predicts the noise of x_t at timestep t.

    One residual block per level on the way down and up, two at the
    bottleneck, stride-2 convolutions to downsample, nearest upsampling plus
    a 3x3 convolution to upsample, and skip connections by concatenation.
    """

    def __init__(self, channels: int, resolution: int, width: int):
        super().__init__()
        if resolution not in LEVEL_MULTS:
            raise ValueError(f"unsupported resolution {resolution}; expected one of {SUPPORTED_RESOLUTIONS}")
        if width < MIN_WIDTH:
            raise ValueError(f"U-Net width {width} is below the minimum {MIN_WIDTH}")
        self.channels = channels
        self.resolution = resolution
        self.width = width
        widths = [width * m for m in LEVEL_MULTS[resolution]]
        t_dim = 4 * width

        self.time_mlp = nn.Sequential(nn.Linear(width, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.stem = nn.Conv2d(channels, width, 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c = width
        for i, w in enumerate(widths):
            self.down.append(TimeResBlock(c, w, t_dim))
            c = w
            if i < len(widths) - 1:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.middle = nn.ModuleList([TimeResBlock(c, c, t_dim), TimeResBlock(c, c, t_dim)])
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i, w in reversed(list(enumerate(widths))):
            self.up.append(TimeResBlock(c + w, w, t_dim))
            c = w
            if i > 0:
                self.upsample.append(nn.Conv2d(c, c, 3, padding=1))
        self.head = nn.Sequential(nn.GroupNorm(_groups(c), c), nn.SiLU(), nn.Conv2d(c, channels, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t_emb = self.time_mlp(timestep_embedding(t, self.width))
        h = self.stem(x)

        skips = []
        for i, block in enumerate(self.down):
            h = block(h, t_emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        for block in self.middle:
            h = block(h, t_emb)

        for i, block in enumerate(self.up):
            skip = skips.pop()
            # 28 px halves 28 -> 14 -> 7, so sides always match; the crop guards odd sides.
            h = block(torch.cat([h[..., : skip.shape[-2], : skip.shape[-1]], skip], dim=1), t_emb)
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.head(h)


@functools.lru_cache(maxsize=None)
def unet_parameters(channels: int, resolution: int, width: int) -> int:
    """Return the trainable parameter count of a U-Net without allocating its weights."""
    with torch.device("meta"):
        return sum(p.numel() for p in UNet(channels, resolution, width).parameters())


def match_width(target: int, channels: int, resolution: int, tolerance: float = 0.1) -> int:
    """Return the U-Net width whose parameter count is closest to ``target``.

    Raises ValueError when even that count is more than ``tolerance``
    (relative) away from the target.
    """
    # The count grows monotonically with the width, so bisect for the first
    # width at or above the target and compare it with its neighbour below.
    lo, hi = MIN_WIDTH, MAX_WIDTH
    while lo < hi:
        mid = (lo + hi) // 2
        if unet_parameters(channels, resolution, mid) < target:
            lo = mid + 1
        else:
            hi = mid
    candidates = [w for w in (lo - 1, lo) if MIN_WIDTH <= w <= MAX_WIDTH]
    best = min(candidates, key=lambda w: abs(unet_parameters(channels, resolution, w) - target))
    count = unet_parameters(channels, resolution, best)
    if abs(count - target) > tolerance * target:
        raise ValueError(
            f"no U-Net width in [{MIN_WIDTH}, {MAX_WIDTH}] has a parameter count within "
            f"{tolerance:.0%} of {target:,} at {resolution} px (closest: width {best}, {count:,}); "
            "change the decoder width in params.yaml"
        )
    return best
