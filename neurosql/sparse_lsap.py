"""Exact assignment by sparse solves on a candidate graph, certified on the full matrix.

NeuroSQL cost matrices are nearly degenerate: neighbouring lattice codes
give almost the same image, so a row's cheapest columns differ by less than
1 % of the cost range. Dense Jonker-Volgenant solvers spend most of their
time on those near ties (``docs/benchmarks.md``). This solver works on a
small candidate graph instead and proves the result optimal for the whole
matrix:

1. Candidates: the k cheapest columns of every row, up to k cheap rows of
   every column, and the greedy assignment's edges (so that a perfect
   matching exists).
2. Solve the assignment exactly on the candidate graph with OR-Tools'
   cost-scaling push-relabel solver, which needs integer costs: costs are
   mapped affinely onto integers below ``2**62 / (8 (n + 1)**2)``, the range
   in which the solver's price updates cannot overflow, and below 2**40, so
   that float64 still resolves one integer step.
3. Duals: with the optimal matching x, potentials p from Bellman-Ford on
   the row graph (edge i -> y[j] of weight Q[i, j] - Q[i, x[i]] for each
   candidate (i, j)) give u[i] = Q[i, x[i]] - p[i] and v[j] = p[y[j]],
   feasible on every candidate edge and tight on the matching.
4. Certificate: if Q[i, j] >= u[i] + v[j] on the full matrix, the duals are
   feasible for the dense problem and x is optimal (LP duality). Otherwise
   each violating row's and column's most negative reduced-cost edge joins
   the candidates and the loop repeats. The dense pass reads the float
   costs, not a quantised copy, and rechecks the rows and columns it flags
   on the integer grid (``_violations``).

The same pass gives a lower bound on the optimum for any v, the dual
objective sum_i min_j (Q[i, j] - v[j]) + sum_j v[j]. With ``rel_gap > 0``
the loop stops as soon as that bound proves the matching within this
fraction of the optimal cost: the "pruned" solver.

A matrix that has no certificate after ``MAX_ROUNDS`` rounds is solved
by scipy's dense solver instead, which is exact too.

The result is optimal for the integer costs Q, so its cost on the original
matrix is within n / scale (n rounding errors of half a unit, twice) of the
optimum: about 1e-10 of the cost range per row at n = 8000.

Memory: one block of at most ``CHECK_BLOCK_BYTES`` for the dense check and
the candidate edges, besides the float64 input.
"""

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch
from ortools.graph.python import linear_sum_assignment as ortools_lsa

log = logging.getLogger(__name__)

DEFAULT_K = 8
# The NeuroSQL and point costs of docs/benchmarks.md certify in at most 21
# rounds. Near-additive costs (C[i, j] = a[i] + b[j] plus rounding) took more
# than 200 at n >= 450, so past this cap the dense solver finishes the job.
MAX_ROUNDS = 50
CHECK_BLOCK_BYTES = 8 * 2**20
MAX_LEVELS = 2.0**40  # integer steps over the cost range: 2**12 float64 ulps of the range per step


@dataclass
class CertifiedResult:
    """The optimal permutation and what it took to certify it."""

    perm: np.ndarray
    rounds: int
    edges: int
    gap: float  # proven upper bound on (matched cost - optimal cost), in cost units


def integer_scale(cost: np.ndarray) -> tuple[float, float]:
    """Return (offset, scale) that map the costs onto non-negative integers safe for OR-Tools."""
    n = cost.shape[0]
    low, high = float(cost.min()), float(cost.max())
    # A constant matrix gets a span of one cost unit, so the float check's
    # error bound stays meaningful.
    return low, _levels(n) / (high - low if high > low else 1.0)


def _levels(n: int) -> float:
    """Return the number of integer steps over the cost range at size n."""
    return min(2.0**62 / (8.0 * (n + 1) ** 2), MAX_LEVELS)


def solve_certified(
    cost: np.ndarray, k: int = DEFAULT_K, seed_perm: np.ndarray | None = None, rel_gap: float = 0.0
) -> CertifiedResult:
    """Return an optimal permutation of a square finite cost matrix (float64), with its certificate stats.

    ``seed_perm`` is any permutation. Its edges seed the candidate graph, so
    the graph contains a perfect matching. The identity is used when it is
    omitted, and a greedy permutation starts closer to the optimum.
    ``rel_gap`` > 0 stops once the matched cost is proven within that
    fraction of the optimum.
    """
    n = cost.shape[0]
    if not np.isfinite(rel_gap) or rel_gap < 0:
        raise ValueError(f"rel_gap must be a finite fraction of at least 0, got {rel_gap!r}")
    if n <= 1:
        return CertifiedResult(np.arange(n), 0, n, 0.0)
    k = max(1, min(k, n))

    low, scale = integer_scale(cost)
    if not (np.isfinite(scale) and scale > 0):
        # A cost range below about 1e-296 or above float64's maximum has no
        # integer grid that float64 can hold, and the dense solver needs none.
        log.info("certified LSAP: cost range %g has no integer grid; solving with scipy", float(cost.max()) - low)
        return CertifiedResult(scipy.optimize.linear_sum_assignment(cost)[1], 0, n * n, 0.0)
    seed_perm = np.arange(n) if seed_perm is None else np.asarray(seed_perm)
    keys = _initial_candidates(cost, k, seed_perm)
    index = np.arange(n)

    for round_ in range(1, MAX_ROUNDS + 1):
        rows, cols = np.divmod(keys, n)
        edge_cost = _quantise(cost[rows, cols], low, scale)
        x = _solve_sparse(rows, cols, edge_cost, n)
        y = np.empty(n, dtype=np.int64)
        y[x] = index
        matched_q = _quantise(cost[index, x], low, scale)
        p = _potentials(rows, cols, edge_cost, x, y, matched_q)
        u = matched_q - p
        v = p[y]

        new, gap = _violations(cost, low, scale, u, v)
        matched = float(cost[index, x].sum())
        log.debug("certified LSAP round %d: %d candidate edges, %d violating edges, gap %.3g", round_, len(keys), len(new), gap)
        # matched - gap bounds the optimum from below, so the gap is measured against it.
        if len(new) == 0 or gap <= rel_gap * abs(matched - gap):
            return CertifiedResult(x, round_, len(keys), 0.0 if len(new) == 0 else gap)
        # Violating edges have negative reduced cost, so none is a candidate yet.
        keys = np.concatenate([keys, new])

    log.warning(
        "certified LSAP: no certificate after %d rounds at n = %d (%d candidate edges); solving with scipy instead",
        MAX_ROUNDS, n, len(keys),
    )
    _, perm = scipy.optimize.linear_sum_assignment(cost)
    return CertifiedResult(perm, MAX_ROUNDS, len(keys), 0.0)


def _as_tensor(cost: np.ndarray) -> torch.Tensor:
    """Wrap the costs without a copy; they are only read, so a read-only array is fine."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(cost)


def _quantise(values: np.ndarray, low: float, scale: float) -> np.ndarray:
    """Map costs onto the integer grid of ``integer_scale`` (float64 values that are integers)."""
    return np.rint((values - low) * scale)


def _initial_candidates(cost: np.ndarray, k: int, seed_perm: np.ndarray) -> np.ndarray:
    """Return sorted flat keys row * n + col of the first candidate graph.

    Rows get their k cheapest columns. Each column gets the k cheapest of
    its row-block minima. Both come from one pass over cache-sized row
    blocks, because a column-wise top-k over the whole matrix is a slow,
    strided pass.
    """
    n = cost.shape[0]
    index = np.arange(n)
    dense = _as_tensor(cost)
    block = max(1, CHECK_BLOCK_BYTES // (8 * n))
    by_row, block_min, block_arg = [], [], []
    for start in range(0, n, block):
        rows = dense[start:start + block]
        by_row.append(rows.topk(k, dim=1, largest=False, sorted=False).indices)
        low, arg = rows.min(dim=0)
        block_min.append(low)
        block_arg.append(arg + start)

    block_min, block_arg = torch.stack(block_min), torch.stack(block_arg)
    pick = block_min.topk(min(k, len(block_min)), dim=0, largest=False, sorted=False).indices
    by_col = block_arg.gather(0, pick).numpy().T
    return np.unique(np.concatenate([
        (index[:, None] * n + torch.cat(by_row).numpy()).ravel(),
        (by_col * n + index[:, None]).ravel(),
        index * n + seed_perm,
    ]))


def _solve_sparse(rows: np.ndarray, cols: np.ndarray, edge_cost: np.ndarray, n: int) -> np.ndarray:
    """Solve the assignment on the candidate edges exactly; return x[row] = column."""
    solver = ortools_lsa.SimpleLinearSumAssignment()
    solver.add_arcs_with_cost(rows, cols, edge_cost.astype(np.int64))
    status = solver.solve()
    if status != solver.OPTIMAL:
        # Cannot happen while the seed permutation's edges stay in the graph.
        raise RuntimeError(f"the sparse assignment on {len(rows)} candidate edges ended with status {status}")
    x = np.fromiter((solver.right_mate(i) for i in range(n)), dtype=np.int64, count=n)
    if not np.array_equal(np.sort(x), np.arange(n)):
        raise RuntimeError("the sparse assignment returned no permutation; its integer costs may have overflowed")
    return x


def _potentials(
    rows: np.ndarray, cols: np.ndarray, edge_cost: np.ndarray, x: np.ndarray, y: np.ndarray, matched: np.ndarray
) -> np.ndarray:
    """Return shortest-path potentials of the row graph by vectorised Bellman-Ford.

    The matching is optimal on the candidate graph, so the graph has no
    negative cycle and the loop ends within n passes.
    """
    n = len(x)
    other = cols != x[rows]
    if not other.any():
        # Only matching edges: zero potentials are tight and feasible.
        return np.zeros(n)
    src = rows[other]
    dst = y[cols[other]]
    weight = edge_cost[other] - matched[src]

    # Sorting by head lets one minimum.reduceat relax every edge per pass.
    order = np.argsort(dst, kind="stable")
    src, dst, weight = src[order], dst[order], weight[order]
    starts = np.flatnonzero(np.r_[True, dst[1:] != dst[:-1]])
    heads = dst[starts]

    p = np.zeros(n)
    for _ in range(n + 1):
        best = np.minimum.reduceat(p[src] + weight, starts)
        better = best < p[heads]
        if not better.any():
            return p
        p[heads[better]] = best[better]
    raise RuntimeError("negative cycle in the candidate graph: the sparse assignment was not optimal")


def _violations(cost: np.ndarray, low: float, scale: float, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, float]:
    """Return keys of each violating row's and column's most negative edge, and the duality gap in cost units.

    An edge violates the integer duals when Q[i, j] - u[i] - v[j] <= -1 for
    the quantised costs Q. The dense pass reads the float64 costs instead of
    a quantised copy, in cost units, where the quantised reduced cost is the
    float one within half a grid step. Rows and columns whose float minimum
    is below -1/2 step are rechecked on the integer grid, so the result is
    exact.

    With tight duals on the matching, the dual objective at v falls short of
    the matched cost by minus the sum of the row minima of the reduced costs.
    The gap comes from the float pass, rounded up by half a grid step per
    row, so that it stays an upper bound.
    """
    n = cost.shape[0]
    # Blocks of a few MiB keep the element-wise passes in cache.
    block = max(1, CHECK_BLOCK_BYTES // (8 * n))
    dense = _as_tensor(cost)
    # Q[i, j] = (cost[i, j] - low) * scale + d with |d| <= 1/2, so a violation
    # (integer reduced cost <= -1) has a float one <= -1/2 step and a tight
    # edge one >= -1/2 step. The margin bounds the float64 rounding of the
    # subtractions. Where it passes 1/2, more lines are rechecked.
    span = _levels(n) / scale  # the cost range, or 1 for a constant matrix
    duals = (np.abs(u).max() + np.abs(v).max()) / scale
    margin = 8 * np.finfo(np.float64).eps * (2 * abs(low) + span + duals) * scale
    # Costs far from zero relative to their range get shifted by low first,
    # one more pass, so the rounding is relative to the range.
    shift = margin > 1e-2
    if shift:
        margin = 8 * np.finfo(np.float64).eps * (span + duals) * scale
    flag = (-0.5 + max(margin, 1e-3)) / scale
    slack = (0.5 + margin) / scale
    row_dual = torch.from_numpy(u / scale + (0.0 if shift else low))
    col_dual = torch.from_numpy(v / scale)
    col_min = torch.full((n,), float("inf"), dtype=torch.float64)
    col_arg = torch.zeros(n, dtype=torch.long)
    # One reused buffer: fresh block tensors cost a page fault per 4 KiB.
    buffer = torch.empty((block, n), dtype=torch.float64)
    row_hits, row_args = [], []
    gap = 0.0

    for start in range(0, n, block):
        rows = dense[start:start + block]
        if shift:
            reduced = torch.sub(rows, low, out=buffer[:len(rows)])
            reduced -= col_dual[None, :]
        else:
            reduced = torch.sub(rows, col_dual[None, :], out=buffer[:len(rows)])
        reduced -= row_dual[start:start + block, None]
        low_row, arg = reduced.min(dim=1)
        # The integer row minimum may sit half a step (and the margin) lower.
        gap -= float((low_row - slack).clamp(max=0.0).sum())
        bad = torch.nonzero(low_row < flag).flatten()
        row_hits.append((start + bad).numpy())
        row_args.append(arg[bad].numpy())

        block_min, block_arg = reduced.min(dim=0)
        improved = block_min < col_min
        col_min[improved] = block_min[improved]
        col_arg[improved] = start + block_arg[improved]

    bad_cols = torch.nonzero(col_min < flag).flatten().numpy()
    found = [
        _exact_violations(cost, low, scale, u, v, np.concatenate(row_hits), np.concatenate(row_args), by_row=True),
        _exact_violations(cost, low, scale, u, v, bad_cols, col_arg.numpy()[bad_cols], by_row=False),
    ]
    return np.unique(np.concatenate(found)), gap


def _exact_violations(
    cost: np.ndarray, low: float, scale: float, u: np.ndarray, v: np.ndarray,
    lines: np.ndarray, args: np.ndarray, by_row: bool,
) -> np.ndarray:
    """Return keys of the most negative integer reduced cost in each flagged row (or column), where it violates."""
    n = cost.shape[0]
    rows, cols = (lines, args) if by_row else (args, lines)
    exact = _quantise(cost[rows, cols], low, scale) - u[rows] - v[cols]
    keys = [(rows * n + cols)[exact <= -1.0]]

    # The float argmin is within half a grid step of the integer one, so it
    # can miss, so such a line is rechecked on the integer grid.
    for line in lines[exact > -1.0]:
        if by_row:
            reduced = _quantise(cost[line], low, scale) - u[line] - v
        else:
            reduced = _quantise(cost[:, line], low, scale) - u - v[line]
        best = int(np.argmin(reduced))
        if reduced[best] <= -1.0:
            keys.append(np.array([line * n + best if by_row else best * n + line]))
    return np.concatenate(keys)
