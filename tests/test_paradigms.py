import itertools

import numpy as np
import pytest
import torch

from neurosql.config import cell_config
from neurosql.losses import ssim_l1_per_image
from neurosql.models import build_paradigm
from neurosql.paradigms.neurosql import initial_assignment, momentum_update


def _neurosql(tiny_params, n, **overrides):
    tiny_params["neurosql"].update(overrides)
    cfg = cell_config(tiny_params, "mnist", "convnet", "neurosql", 2, 11)
    return build_paradigm(cfg, n)


def test_momentum_update_closed_form():
    z_hat = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    target = torch.tensor([[3.0, 2.0], [-1.0, 4.0]])
    out = momentum_update(z_hat, target, 0.7)
    expected = torch.tensor([[0.7 * 3 + 0.3 * 1, 0.7 * 2 - 0.3 * 2], [-0.7 + 0.15, 2.8]])
    assert torch.allclose(out, expected)


def test_assign_matches_brute_force_and_applies_momentum(tiny_params):
    n = 6
    model = _neurosql(tiny_params, n)
    images = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    model.initialise(images)
    before = model.z_hat.clone()

    model.assign(images)

    # Brute force over all 720 permutations with per-pair loss calls.
    generated = model.generate(model.lattice)
    cost = np.array([[float(ssim_l1_per_image(images[i : i + 1], generated[k : k + 1])) for k in range(n)] for i in range(n)])
    best = min(itertools.permutations(range(n)), key=lambda p: cost[np.arange(n), list(p)].sum())
    got = model.assignment.numpy()
    assert cost[np.arange(n), got].sum() == pytest.approx(cost[np.arange(n), list(best)].sum(), abs=1e-5)
    assert torch.allclose(model.z_hat, 0.7 * model.lattice[model.assignment] + 0.3 * before)


def test_initial_decoder_weights_identical_across_methods(tiny_params):
    states = []
    for method in ("neurosql", "vae", "gan"):
        cfg = cell_config(tiny_params, "mnist", "convnet", method, 3, 11)
        states.append(build_paradigm(cfg, 16).decoder.state_dict())
    for other in states[1:]:
        assert states[0].keys() == other.keys()
        for key in states[0]:
            assert torch.equal(states[0][key], other[key]), key


def test_decoder_weights_differ_across_seeds(tiny_params):
    a = build_paradigm(cell_config(tiny_params, "mnist", "convnet", "vae", 2, 11), 16)
    b = build_paradigm(cell_config(tiny_params, "mnist", "convnet", "vae", 2, 12), 16)
    assert not torch.equal(a.decoder.head.weight, b.decoder.head.weight)


def test_pca_init_pairs_ranks():
    # Images whose brightness grows with their index: the first principal
    # component orders them by brightness, so pi0 pairs brightness rank with
    # the rank of the lattice's first coordinate (up to the component's sign).
    n = 20
    levels = torch.linspace(0.05, 0.95, n)[torch.randperm(n, generator=torch.Generator().manual_seed(1))]
    images = levels[:, None, None, None].expand(n, 1, 8, 8).clone()
    lattice = torch.randn(n, 2, generator=torch.Generator().manual_seed(2))
    perm = initial_assignment("pca", images, lattice, seed=0)
    assert sorted(perm.tolist()) == list(range(n))
    first = lattice[perm, 0]
    rho = np.corrcoef(np.argsort(np.argsort(levels.numpy())), np.argsort(np.argsort(first.numpy())))[0, 1]
    assert abs(rho) == pytest.approx(1.0)


def test_random_init_is_seeded_permutation():
    lattice = torch.zeros(50, 2)
    a = initial_assignment("random", torch.zeros(50, 1, 4, 4), lattice, seed=3)
    b = initial_assignment("random", torch.zeros(50, 1, 4, 4), lattice, seed=3)
    assert torch.equal(a, b)
    assert sorted(a.tolist()) == list(range(50))


def test_minibatch_step_assigns_a_permutation_of_the_subset(tiny_params):
    n = 40
    model = _neurosql(tiny_params, n, mode="minibatch")
    images = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    model.initialise(images)
    before_z = model.z_hat.clone()
    optim = {"generator": torch.optim.AdamW(model.decoder.parameters(), lr=1e-3)}
    index = torch.arange(8, 24)

    model.train_step(images[index], index, optim, torch.Generator().manual_seed(5), grad_clip=1.0)

    # The step draws its lattice subset first from the generator it is given.
    subset = torch.randperm(n, generator=torch.Generator().manual_seed(5))[: len(index)]
    chosen = model.assignment[index]
    assert sorted(chosen.tolist()) == sorted(subset.tolist())
    assert torch.allclose(model.z_hat[index], 0.7 * model.lattice[chosen] + 0.3 * before_z[index])
    untouched = torch.ones(n, dtype=torch.bool)
    untouched[index] = False
    assert torch.equal(model.z_hat[untouched], before_z[untouched])
