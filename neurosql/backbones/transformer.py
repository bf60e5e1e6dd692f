"""Transformer decoder over patch tokens embedded from z, with an MLP head back to pixels.

The NeuroSQL paper calls this backbone its "U-Net decoder". Its Appendix M
describes it as a small transformer decoder on patchified embeddings of z
followed by an MLP head back to pixels. The result tables keep the label.
"""

import torch
import torch.nn.functional as F
from torch import nn

from neurosql.backbones.convnet import SUPPORTED_RESOLUTIONS

DEPTH = 4
HEADS = 4
MLP_RATIO = 4
PATCH_SIZES = {28: 4, 32: 4, 64: 8, 128: 16}


class SelfAttention(nn.Module):
    """Multi-head self-attention over a token sequence (B, N, D)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class TransformerBlock(nn.Module):
    """Pre-norm block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, MLP_RATIO * dim), nn.GELU(), nn.Linear(MLP_RATIO * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TransformerDecoder(nn.Module):
    """z -> (resolution / patch)^2 tokens of size ``width`` -> 4 blocks -> per-patch pixels.

    Patches are 4 px at 28 and 32 px, 8 px at 64 px and 16 px at 128 px, so
    the sequence has 49 or 64 tokens. ``width`` is the token dimension and
    must be divisible by the 4 attention heads.
    """

    def __init__(self, latent_dim: int, channels: int, resolution: int, width: int = 128):
        super().__init__()
        if resolution not in PATCH_SIZES:
            raise ValueError(f"unsupported resolution {resolution}; expected one of {SUPPORTED_RESOLUTIONS}")
        if width % HEADS:
            raise ValueError(f"transformer width {width} must be divisible by {HEADS} attention heads")
        self.latent_dim = latent_dim
        self.channels = channels
        self.resolution = resolution
        self.patch = PATCH_SIZES[resolution]
        self.side = resolution // self.patch
        n_tokens = self.side**2

        self.embed = nn.Linear(latent_dim, n_tokens * width)
        self.position = nn.Parameter(torch.randn(1, n_tokens, width) * 0.02)
        self.blocks = nn.Sequential(*[TransformerBlock(width, HEADS) for _ in range(DEPTH)])
        self.norm = nn.LayerNorm(width)
        self.head = nn.Sequential(
            nn.Linear(width, 2 * width), nn.GELU(), nn.Linear(2 * width, channels * self.patch**2)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        b = len(z)
        tokens = self.embed(z).view(b, self.side**2, -1) + self.position
        pixels = self.head(self.norm(self.blocks(tokens)))

        # (B, side*side, C*p*p) -> (B, C, side*p, side*p), patches in row-major order.
        pixels = pixels.view(b, self.side, self.side, self.channels, self.patch, self.patch)
        image = pixels.permute(0, 3, 1, 4, 2, 5).reshape(b, self.channels, self.resolution, self.resolution)
        return torch.sigmoid(image)
