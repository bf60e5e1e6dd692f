"""VAE baseline: an MLP encoder on flattened pixels and the shared decoder.

The objective is the SSIM+L1 reconstruction loss plus beta times the KL
divergence of the diagonal Gaussian posterior from N(0, I), summed over
latent dimensions and averaged over the batch.
"""

import torch
from torch import nn

from neurosql.losses import ssim_l1_loss
from neurosql.paradigms.base import Paradigm, optimizer_step


class MLPEncoder(nn.Module):
    """Two hidden ReLU layers from flattened pixels to the posterior mean and log-variance."""

    def __init__(self, n_pixels: int, latent_dim: int, hidden: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(n_pixels, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, hidden),
            nn.ReLU(inplace=True),
        )
        self.mean = nn.Linear(hidden, latent_dim)
        self.log_var = nn.Linear(hidden, latent_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.mean(h), self.log_var(h).clamp(-20.0, 20.0)


class VAE(Paradigm):
    name = "vae"

    def __init__(self, decoder: nn.Module, latent_dim: int, n_pixels: int, hidden: int, beta: float):
        super().__init__(decoder, latent_dim)
        self.encoder = MLPEncoder(n_pixels, latent_dim, hidden)
        self.beta = beta

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"generator": list(self.decoder.parameters()) + list(self.encoder.parameters())}

    def train_step(self, x, index, optimizers, rng, grad_clip):
        mean, log_var = self.encoder(x)
        noise = torch.randn(mean.shape, generator=rng).to(mean.device)
        z = mean + noise * torch.exp(0.5 * log_var)
        recon = ssim_l1_loss(self.decoder(z), x)
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1.0 - log_var).sum(1).mean()
        loss = recon + self.beta * kl
        optimizer_step(loss, optimizers["generator"], optimizers["generator"].param_groups[0]["params"], grad_clip)
        return {"loss": loss.item(), "recon": recon.item(), "kl": kl.item()}

    @torch.no_grad()
    def encode_mean(self, x: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Return posterior means for images ``x``: the VAE's paired-z codes."""
        self.encoder.eval()
        device = next(self.encoder.parameters()).device
        out = [self.encoder(x[i : i + batch_size].to(device))[0].cpu() for i in range(0, len(x), batch_size)]
        self.encoder.train()
        return torch.cat(out)
