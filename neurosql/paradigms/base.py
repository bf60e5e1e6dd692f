"""The interface every training paradigm implements, and shared step helpers."""

import torch
from torch import nn


def optimizer_step(
    loss: torch.Tensor, optimizer: torch.optim.Optimizer, params: list[nn.Parameter], grad_clip: float
) -> None:
    """Backpropagate ``loss``, clip the gradient norm of ``params``, and step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip > 0:
        nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()


class Paradigm(nn.Module):
    """A learning paradigm around a shared decoder ``self.decoder``.

    Subclasses set ``name`` and implement ``parameter_groups``,
    ``train_step`` and ``latent_prior``. ``begin_epoch`` is a hook for work
    done once per epoch (NeuroSQL's assignment step). ``validation_samples``
    lets a paradigm make its validation images more cheaply than
    ``generate``, as the DDPM does with fewer sampling steps.
    """

    name = "base"

    def __init__(self, decoder: nn.Module, latent_dim: int):
        super().__init__()
        self.decoder = decoder
        self.latent_dim = latent_dim

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """Return the parameters of each optimizer, keyed by optimizer name."""
        raise NotImplementedError

    def begin_epoch(self, epoch: int, images: torch.Tensor, rng: torch.Generator) -> dict[str, float]:
        """Run once-per-epoch work before the epoch's batches; return timings."""
        return {}

    def train_step(
        self,
        x: torch.Tensor,
        index: torch.Tensor,
        optimizers: dict[str, torch.optim.Optimizer],
        rng: torch.Generator,
        grad_clip: float,
    ) -> dict[str, float]:
        """Run one optimisation step on batch ``x`` (dataset rows ``index``)."""
        raise NotImplementedError

    def latent_prior(self) -> str:
        """Name the lattice/prior kind that sampled-z generation draws from."""
        return "sobol_gaussian"

    @torch.no_grad()
    def generate(self, z: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Decode latent codes ``z`` to images in eval mode, in batches."""
        was_training = self.decoder.training
        self.decoder.eval()
        device = next(self.decoder.parameters()).device
        out = [self.decoder(z[i : i + batch_size].to(device)).cpu() for i in range(0, len(z), batch_size)]
        self.decoder.train(was_training)
        return torch.cat(out)

    @torch.no_grad()
    def validation_samples(self, z: torch.Tensor) -> torch.Tensor:
        """Return the images that the per-epoch validation loss compares with real ones."""
        return self.generate(z)
