"""Linear sum assignment solvers for the NeuroSQL assignment step.

Every solver takes a square cost matrix C (n, n) and returns ``perm`` with
perm[i] = the column (lattice code) assigned to row i (data image), a
permutation of 0..n-1.

Methods (timings on NeuroSQL's own cost matrices are in docs/benchmarks.md):
    "exact": the fastest optimal solver for the size, chosen by
        ``benchmarks/bench_lsap.py`` on cost matrices saved from NeuroSQL
        training runs: "scipy" below n = 2000 and "certified" from there.
    "scipy": ``scipy.optimize.linear_sum_assignment``, optimal. The tests
        use it as the reference solver.
    "lapjv": the Jonker-Volgenant solver of the ``lap`` package, optimal.
        Fast on well-separated costs (3-4x scipy on point distances) but
        several times slower than scipy on NeuroSQL costs, whose rows hold
        many near ties.
    "certified": exact solves on a sparse candidate graph, grown until
        dual feasibility on the full matrix proves the matching optimal
        (``neurosql.sparse_lsap``).
    "pruned": the same loop stopped as soon as the matching is proven
        within ``rel_gap`` (0.1 % by default) of the optimal cost.
    "greedy": Algorithm 3 of the NeuroSQL paper (appendix G): rows in order
        0..n-1, each takes its cheapest column not yet taken, ties going to
        the lowest column index. O(n^2), not optimal.
    "sinkhorn": entropic optimal transport by log-domain Sinkhorn
        iterations on the cost scaled to [0, 1], with the regularisation
        halved from 1 down to 1e-3. The plan is rounded to a permutation by
        the greedy rule on the reduced costs C[i, j] - g[j], where g is the
        column potential. Not optimal.
"""

import logging

import lap
import numpy as np
import scipy.optimize
import torch

from neurosql.sparse_lsap import DEFAULT_K, solve_certified

log = logging.getLogger(__name__)

METHODS = ("exact", "scipy", "lapjv", "certified", "greedy", "pruned", "sinkhorn")
CERTIFIED_MIN_N = 2000  # "exact" switches from scipy to certified here (bench_lsap.py)
DEFAULT_PRUNED_GAP = 1e-3
SINKHORN_FINAL_EPSILON = 1e-3
SINKHORN_ITERATIONS_PER_EPSILON = 10


def _as_cost_array(cost: np.ndarray | torch.Tensor) -> np.ndarray:
    """Convert the cost to a float64 array and reject non-square or non-finite input."""
    if isinstance(cost, torch.Tensor):
        cost = cost.detach().cpu().double().numpy()
    # Contiguous rows: the blocked dense passes assume them, and torch cannot
    # wrap a view with negative strides.
    cost = np.ascontiguousarray(cost, dtype=np.float64)
    if cost.ndim != 2 or cost.shape[0] != cost.shape[1]:
        raise ValueError(
            f"the cost matrix must be square (n, n), got shape {cost.shape}. "
            "NeuroSQL assigns n images to n lattice codes, so pass equal counts"
        )

    # One sum finds the common all-finite case without an n x n mask; a sum
    # that overflows falls through to the element-wise check.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(cost.sum()):
            return cost
    bad = ~np.isfinite(cost)
    if bad.any():
        rows, cols = np.nonzero(bad)
        raise ValueError(
            f"the cost matrix contains {int(bad.sum())} NaN or infinite entries, "
            f"the first at (row {rows[0]}, col {cols[0]}) = {cost[rows[0], cols[0]]}; "
            "check the generator output and the loss for NaN"
        )
    return cost


def solve_assignment(
    cost: np.ndarray | torch.Tensor, method: str = "exact", k: int = DEFAULT_K, rel_gap: float = DEFAULT_PRUNED_GAP
) -> np.ndarray:
    """Solve the assignment problem on a square cost matrix.

    Args:
        cost: (n, n) finite costs, a numpy array or a torch tensor on any device.
        method: one of METHODS (see the module docstring).
        k: cheapest columns per row (and rows per column) in the first
            candidate graph of "certified" and "pruned".
        rel_gap: proven relative gap at which "pruned" stops.

    Returns:
        int64 array perm of shape (n,), perm[i] = column assigned to row i.

    Raises:
        ValueError: for a non-square or non-finite cost matrix or an unknown method.
    """
    if method not in METHODS:
        raise ValueError(f"unknown assignment method {method!r}; expected one of {METHODS}")
    cost = _as_cost_array(cost)
    if cost.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)

    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive whole number of candidate columns per row, got {k!r}")
    if not np.isfinite(rel_gap) or rel_gap < 0:
        raise ValueError(f"rel_gap must be a finite fraction of at least 0, got {rel_gap!r}")
    if method == "exact":
        method = "certified" if cost.shape[0] >= CERTIFIED_MIN_N else "scipy"

    if method == "scipy":
        _, perm = scipy.optimize.linear_sum_assignment(cost)
    elif method == "lapjv":
        _, perm, _ = lap.lapjv(cost, extend_cost=False)
    elif method == "certified":
        perm = solve_certified(cost, k, _greedy(cost)).perm
    elif method == "pruned":
        perm = solve_certified(cost, k, _greedy(cost), rel_gap=rel_gap).perm
    elif method == "greedy":
        perm = _greedy(cost)
    else:
        perm = _sinkhorn(cost)
    return np.asarray(perm, dtype=np.int64)


def _greedy(cost: np.ndarray) -> np.ndarray:
    """Assign rows in order, each to its cheapest free column (NeuroSQL Algorithm 3)."""
    n = cost.shape[0]
    penalty = np.zeros(n)
    perm = np.empty(n, dtype=np.int64)

    # Taken columns get +inf. argmin returns the first minimum, which matches
    # the strict "<" scan of Algorithm 3 (ties go to the lowest column).
    for i in range(n):
        j = int(np.argmin(cost[i] + penalty))
        perm[i] = j
        penalty[j] = np.inf
    return perm


def _sinkhorn(cost: np.ndarray) -> np.ndarray:
    """Round an entropic optimal transport plan to a permutation."""
    # Scale to [0, 1] in float64 before the float32 cast: costs beyond the
    # float32 range would become inf. Halving keeps max - min finite.
    half = cost * 0.5
    low, high = half.min(), half.max()
    if high == low:
        return np.arange(cost.shape[0])
    scaled = torch.from_numpy((half - low) / (high - low)).float()
    f = torch.zeros(cost.shape[0])
    g = torch.zeros(cost.shape[0])

    # With uniform marginals the log(1/n) terms only shift f and g by a
    # constant, so they are dropped. Halving epsilon keeps early iterations stable.
    epsilon = 1.0
    while True:
        for _ in range(SINKHORN_ITERATIONS_PER_EPSILON):
            f = -epsilon * torch.logsumexp((g[None, :] - scaled) / epsilon, dim=1)
            g = -epsilon * torch.logsumexp((f[:, None] - scaled) / epsilon, dim=0)
        if epsilon <= SINKHORN_FINAL_EPSILON:
            break
        epsilon = max(epsilon / 2, SINKHORN_FINAL_EPSILON)

    # The row potential f is constant along a row, so only g changes the
    # greedy choice.
    reduced = (scaled - g[None, :]).double().numpy()
    return _greedy(reduced)


def assignment_cost(cost: np.ndarray | torch.Tensor, perm: np.ndarray) -> float:
    """Return the mean matched cost (1/n) sum_i cost[i, perm[i]]."""
    cost = _as_cost_array(cost)
    perm = np.asarray(perm)
    n = cost.shape[0]
    if perm.shape != (n,) or not np.array_equal(np.sort(perm), np.arange(n)):
        raise ValueError(f"perm must be a permutation of 0..{n - 1}, got shape {perm.shape}")
    return float(cost[np.arange(n), perm].mean()) if n else 0.0
