"""DDPM baseline: a compact U-Net trained to predict noise, sampled with 100 DDIM steps.

Training follows Ho et al. (2020): images are mapped from [0, 1] to [-1, 1],
a timestep t is drawn uniformly from 0..T-1 with T = 1000 and a linear beta
schedule from 1e-4 to 0.02, and the U-Net regresses the added Gaussian noise
with a mean squared error. Sampling runs deterministic DDIM updates (eta = 0)
on ``sample_steps`` evenly spaced timesteps, so each image is a fixed
function of its starting noise x_T, and x_T plays the part of the latent code:
``latent_dim`` is channels * height * width and ``generate(z)`` reshapes z
into x_T.
"""

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from neurosql.backbones.unet import UNet
from neurosql.paradigms.base import Paradigm, optimizer_step


def linear_betas(timesteps: int, beta_start: float, beta_end: float) -> torch.Tensor:
    """Return the linear beta schedule of length ``timesteps`` in float64."""
    return torch.linspace(beta_start, beta_end, timesteps, dtype=torch.float64)


def ddim_timesteps(timesteps: int, steps: int) -> list[int]:
    """Return ``steps`` evenly spaced timesteps from T-1 down to 0."""
    if not 1 <= steps <= timesteps:
        raise ValueError(f"DDIM steps must be in [1, {timesteps}], got {steps}")
    return sorted({int(t) for t in np.linspace(0, timesteps - 1, steps).round()}, reverse=True)


class DDPM(Paradigm):
    name = "ddpm"

    def __init__(
        self,
        unet: UNet,
        timesteps: int,
        beta_start: float,
        beta_end: float,
        sample_steps: int,
        val_steps: int,
    ):
        super().__init__(unet, latent_dim=unet.channels * unet.resolution**2)
        self.timesteps = timesteps
        self.sample_steps = sample_steps
        self.val_steps = val_steps
        ddim_timesteps(timesteps, sample_steps)
        ddim_timesteps(timesteps, val_steps)
        alpha_bar = torch.cumprod(1.0 - linear_betas(timesteps, beta_start, beta_end), dim=0)
        self.register_buffer("alpha_bar", alpha_bar.float(), persistent=False)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"generator": list(self.decoder.parameters())}

    def train_step(self, x, index, optimizers, rng, grad_clip):
        x0 = x * 2.0 - 1.0
        t = torch.randint(0, self.timesteps, (len(x),), generator=rng).to(x.device)
        noise = torch.randn(x.shape, generator=rng).to(x.device)
        a = self.alpha_bar[t][:, None, None, None]
        x_t = a.sqrt() * x0 + (1.0 - a).sqrt() * noise

        loss = F.mse_loss(self.decoder(x_t, t), noise)
        optimizer_step(loss, optimizers["generator"], list(self.decoder.parameters()), grad_clip)
        return {"loss": loss.item()}

    @torch.no_grad()
    def sample(self, noise: torch.Tensor, steps: int) -> torch.Tensor:
        """Run ``steps`` DDIM updates (eta = 0) from x_T = ``noise``; return images in [0, 1]."""
        x = noise
        schedule = ddim_timesteps(self.timesteps, steps)
        for i, t in enumerate(schedule):
            a_t = self.alpha_bar[t]
            a_prev = self.alpha_bar[schedule[i + 1]] if i + 1 < len(schedule) else torch.ones_like(a_t)
            eps = self.decoder(x, torch.full((len(x),), t, device=x.device))

            # Predict x_0, clip it to the data range, and step along the implied noise.
            x0 = ((x - (1.0 - a_t).sqrt() * eps) / a_t.sqrt()).clamp(-1.0, 1.0)
            eps = (x - a_t.sqrt() * x0) / (1.0 - a_t).sqrt()
            x = a_prev.sqrt() * x0 + (1.0 - a_prev).sqrt() * eps
        return ((x + 1.0) / 2.0).clamp(0.0, 1.0)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, batch_size: int = 500, steps: int | None = None) -> torch.Tensor:
        """Sample images from flattened starting noise ``z`` (N, C*H*W), in batches."""
        was_training = self.decoder.training
        self.decoder.eval()
        device = next(self.decoder.parameters()).device
        shape = (self.decoder.channels, self.decoder.resolution, self.decoder.resolution)
        out = [
            self.sample(z[i : i + batch_size].to(device).view(-1, *shape), steps or self.sample_steps).cpu()
            for i in range(0, len(z), batch_size)
        ]
        self.decoder.train(was_training)
        return torch.cat(out)

    @torch.no_grad()
    def validation_samples(self, z: torch.Tensor) -> torch.Tensor:
        # Fewer DDIM steps than sampling keep the per-epoch validation cheap.
        return self.generate(z, steps=self.val_steps)
