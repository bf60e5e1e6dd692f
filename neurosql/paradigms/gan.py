"""GAN baseline: the shared decoder as generator and a four-layer CNN discriminator.

Training uses the non-saturating objective with BCE on logits: the
discriminator minimises BCE(D(x), 1) + BCE(D(G(z)), 0) and the generator
minimises BCE(D(G(z)), 1), one discriminator step per generator step.
"""

import torch
import torch.nn.functional as F
from torch import nn

from neurosql.paradigms.base import Paradigm, optimizer_step


class Discriminator(nn.Module):
    """Three stride-2 convolutions and a 3x3 convolution to one logit map, averaged."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, stride=2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1),
            nn.BatchNorm2d(4 * width),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * width, 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).mean(dim=(1, 2, 3))


class GAN(Paradigm):
    name = "gan"

    def __init__(self, decoder: nn.Module, latent_dim: int, channels: int, disc_width: int, disc_seed: int):
        super().__init__(decoder, latent_dim)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(disc_seed)
            self.discriminator = Discriminator(channels, disc_width)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {
            "generator": list(self.decoder.parameters()),
            "discriminator": list(self.discriminator.parameters()),
        }

    def train_step(self, x, index, optimizers, rng, grad_clip):
        z = torch.randn(len(x), self.latent_dim, generator=rng).to(x.device)
        fake = self.decoder(z)

        # Discriminator step on a detached fake so the generator is untouched.
        real_logits = self.discriminator(x)
        fake_logits = self.discriminator(fake.detach())
        d_loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)) + (
            F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        )
        optimizer_step(d_loss, optimizers["discriminator"], list(self.discriminator.parameters()), grad_clip)

        # Non-saturating generator step: maximise log D(G(z)).
        gen_logits = self.discriminator(fake)
        g_loss = F.binary_cross_entropy_with_logits(gen_logits, torch.ones_like(gen_logits))
        optimizer_step(g_loss, optimizers["generator"], list(self.decoder.parameters()), grad_clip)
        return {"loss": g_loss.item(), "d_loss": d_loss.item()}
