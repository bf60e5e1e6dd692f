"""NeuroSQL: generator regression on latent codes learned by quantile assignment.

A fixed lattice Q (n codes) is matched one-to-one to the n training images by
solving a linear sum assignment problem on C[i, k] = loss(X_i, G(Q_k)), the
same loss that trains G. The generator regresses on the momentum-smoothed
codes Zhat_i <- rho * Q_pi(i) + (1 - rho) * Zhat_i (NeuroSQL paper,
Algorithm 1). In ``minibatch`` mode each step instead matches its batch of m
images to a random size-m subset of the lattice and updates only those rows
of the memory bank Zhat (Algorithm 2).
"""

import logging
import time

import torch
from torch import nn

from neurosql.assignment import solve_assignment
from neurosql.cost import pairwise_cost
from neurosql.lattice import make_lattice
from neurosql.losses import IMAGE_LOSSES
from neurosql.paradigms.base import Paradigm, optimizer_step

log = logging.getLogger(__name__)


def initial_assignment(kind: str, images: torch.Tensor, lattice: torch.Tensor, seed: int) -> torch.Tensor:
    """Return the initial permutation pi0 (image i gets lattice row pi0[i]).

    ``random`` draws a seeded permutation. ``pca`` sorts the images by their
    first principal component score and the lattice by its first coordinate,
    then pairs them rank by rank.
    """
    n = len(images)
    if kind == "random":
        return torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    if kind == "pca":
        flat = images.flatten(1).double()
        centred = flat - flat.mean(0, keepdim=True)
        _, _, v = torch.linalg.svd(centred, full_matrices=False)
        # Fix the sign of the component so the order does not depend on the SVD routine.
        component = v[0] * torch.sign(v[0][v[0].abs().argmax()])
        image_rank = torch.argsort(centred @ component, stable=True)
        lattice_rank = torch.argsort(lattice[:, 0], stable=True)
        perm = torch.empty(n, dtype=torch.long)
        perm[image_rank] = lattice_rank
        return perm
    raise ValueError(f"unknown initial assignment {kind!r}; expected 'random' or 'pca'")


def momentum_update(z_hat: torch.Tensor, target: torch.Tensor, rho: float) -> torch.Tensor:
    """Return rho * target + (1 - rho) * z_hat, the latent momentum step."""
    return rho * target + (1.0 - rho) * z_hat


class NeuroSQL(Paradigm):
    name = "neurosql"

    def __init__(
        self,
        decoder: nn.Module,
        latent_dim: int,
        n_images: int,
        lattice: str,
        assign_every: int,
        momentum: float,
        solver: str,
        cost: str,
        init: str,
        mode: str,
        seed: int,
    ):
        super().__init__(decoder, latent_dim)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"neurosql.momentum must be in [0, 1], got {momentum}")
        if assign_every < 1:
            raise ValueError(f"neurosql.assign_every must be a positive number of epochs, got {assign_every}")
        if mode not in ("full", "minibatch"):
            raise ValueError(f"neurosql.mode must be 'full' or 'minibatch', got {mode!r}")
        if cost not in IMAGE_LOSSES:
            raise ValueError(f"neurosql.cost must be one of {sorted(IMAGE_LOSSES)}, got {cost!r}")
        self.lattice_kind = lattice
        self.assign_every = assign_every
        self.momentum = momentum
        self.solver = solver
        self.cost = cost
        self.init = init
        self.mode = mode
        self.seed = seed

        # Buffers travel with state_dict, so checkpoints hold the lattice,
        # the current assignment and the memory bank of codes.
        self.register_buffer("lattice", make_lattice(lattice, n_images, latent_dim, seed))
        self.register_buffer("assignment", torch.arange(n_images))
        self.register_buffer("z_hat", self.lattice.clone())
        self.initialised = False

    def latent_prior(self) -> str:
        return self.lattice_kind

    def initialise(self, images: torch.Tensor) -> None:
        """Set pi0 and Zhat = Q[pi0] from the training images."""
        perm = initial_assignment(self.init, images, self.lattice.cpu(), self.seed)
        self.assignment.copy_(perm)
        self.z_hat.copy_(self.lattice[perm.to(self.lattice.device)])
        self.initialised = True

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        return {"generator": list(self.decoder.parameters())}

    def assign(self, images: torch.Tensor) -> dict[str, float]:
        """Solve the full n x n assignment on the current generator and apply momentum."""
        start = time.perf_counter()
        generated = self.generate(self.lattice)
        decode_seconds = time.perf_counter() - start
        device = self.lattice.device
        cost = pairwise_cost(images.to(device), generated.to(device), loss=self.cost)
        cost_seconds = time.perf_counter() - start

        start = time.perf_counter()
        perm = torch.as_tensor(solve_assignment(cost.cpu().numpy(), method=self.solver), dtype=torch.long)
        solve_seconds = time.perf_counter() - start

        changed = int((perm != self.assignment.cpu()).sum())
        matched_cost = float(cost.cpu()[torch.arange(len(perm)), perm].mean())
        self.assignment.copy_(perm)
        self.z_hat.copy_(momentum_update(self.z_hat, self.lattice[perm.to(device)], self.momentum))
        return {
            "decode_seconds": decode_seconds,  # part of cost_seconds
            "cost_seconds": cost_seconds,
            "solve_seconds": solve_seconds,
            "assign_seconds": cost_seconds + solve_seconds,
            "assign_changed": changed,
            "assign_cost": matched_cost,
        }

    def begin_epoch(self, epoch, images, rng):
        if not self.initialised:
            raise RuntimeError("NeuroSQL.initialise(images) must run before training")
        # Algorithm 1 runs the decoder step first and reassigns after every
        # K epochs of regression, so epoch 0 trains on the initial codes.
        if self.mode == "full" and epoch > 0 and epoch % self.assign_every == 0:
            stats = self.assign(images)
            log.info(
                "assignment at epoch %d: %d of %d codes moved, mean matched cost %.4f, "
                "cost matrix %.2f s, %s solve %.2f s",
                epoch, stats["assign_changed"], len(images), stats["assign_cost"],
                stats["cost_seconds"], self.solver, stats["solve_seconds"],
            )
            return stats
        return {}

    def train_step(self, x, index, optimizers, rng, grad_clip):
        index = index.to(self.z_hat.device)
        loss = IMAGE_LOSSES[self.cost](self.decoder(self.z_hat[index]), x).mean()
        optimizer_step(loss, optimizers["generator"], list(self.decoder.parameters()), grad_clip)
        stats = {"loss": loss.item()}

        if self.mode == "minibatch":
            stats.update(self._minibatch_assign(x, index, rng))
        return stats

    def _minibatch_assign(self, x: torch.Tensor, index: torch.Tensor, rng: torch.Generator) -> dict[str, float]:
        # Algorithm 2: match the batch to a random lattice subset of the same
        # size and update only the batch rows of the memory bank.
        start = time.perf_counter()
        subset = torch.randperm(len(self.lattice), generator=rng)[: len(index)].to(self.lattice.device)
        generated = self.generate(self.lattice[subset], batch_size=len(subset))
        cost = pairwise_cost(x, generated.to(x.device), loss=self.cost)
        perm = torch.as_tensor(solve_assignment(cost.cpu().numpy(), method=self.solver), dtype=torch.long)
        chosen = subset[perm.to(subset.device)]
        self.assignment[index] = chosen
        self.z_hat[index] = momentum_update(self.z_hat[index], self.lattice[chosen], self.momentum)
        return {"assign_seconds": time.perf_counter() - start}

    def paired_codes(self) -> torch.Tensor:
        """Return the aligned codes Zhat, row i for training image i."""
        return self.z_hat.detach().cpu().clone()

