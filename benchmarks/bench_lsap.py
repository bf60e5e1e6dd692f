"""Benchmark the assignment solvers against scipy on structured and NeuroSQL cost matrices.

Usage: python benchmarks/bench_lsap.py [--sizes 2000 8000] [--costs results/benchmarks/costs/*.npy]
           [--slow-max-n 2000]

Cases:
- squared Euclidean distances between two sets of n standard normal points
  in 16 dimensions (float64), a structured cost without near ties;
- each --costs file: an SSIM+L1 cost matrix saved from a NeuroSQL training
  run by benchmarks/save_costs.py (rows: training digits, columns: the
  generator's images of the lattice codes).

Every solver runs once per case, in the same process, right after scipy's
linear_sum_assignment, the baseline of the speed ratio. The cost ratio is
the mean matched cost over scipy's optimum. lapjv and Sinkhorn are skipped
on NeuroSQL costs above --slow-max-n (lapjv ran for over 10 minutes on the
n = 8000 matrix before it was stopped; Sinkhorn is slow on CPU).
"""

import argparse
import time
from pathlib import Path

import numpy as np

from bench_cost import machine_line
from neurosql.assignment import _greedy, assignment_cost, solve_assignment
from neurosql.sparse_lsap import solve_certified

SOLVERS = (
    ("scipy linear_sum_assignment", "scipy"),
    ("exact (the default)", "exact"),
    ("lap.lapjv", "lapjv"),
    ("certified sparse", "certified"),
    ("pruned, gap <= 0.1 %", "pruned"),
    ("greedy (Algorithm 3)", "greedy"),
    ("sinkhorn + greedy rounding", "sinkhorn"),
)
SLOW = ("lapjv", "sinkhorn")


def point_costs(n: int, dim: int, seed: int) -> np.ndarray:
    """Return squared distances between two sets of n Gaussian points."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, dim))
    b = rng.standard_normal((n, dim))
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(sq, 0.0)


def run_case(name: str, cost: np.ndarray, skip: tuple[str, ...]) -> None:
    """Time every solver on one cost matrix and print a markdown table."""
    n = cost.shape[0]
    results = []
    for label, method in SOLVERS:
        if method in skip or (method == "sinkhorn" and n > 2000):
            continue
        start = time.perf_counter()
        perm = solve_assignment(cost, method)
        seconds = time.perf_counter() - start
        results.append((label, seconds, assignment_cost(cost, perm)))

    # Rounds of the certificate loop, timed apart so they do not slow the table's runs.
    rounds = solve_certified(cost, seed_perm=_greedy(cost)).rounds
    scipy_s, optimum = results[0][1], results[0][2]
    print(f"\n{name} (certified: {rounds} rounds)\n")
    print("| solver | time (s) | speed vs scipy | mean cost / optimum |")
    print("|---|---:|---:|---:|")
    for label, seconds, value in results:
        print(f"| {label} | {seconds:.3f} | {scipy_s / seconds:.1f}x | {value / optimum:.6f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[2000, 8000])
    parser.add_argument("--dim", type=int, default=16, help="dimension of the points")
    parser.add_argument("--costs", type=Path, nargs="*", default=[], help=".npy cost matrices from save_costs.py")
    parser.add_argument("--slow-max-n", type=int, default=2000, help="skip lapjv and sinkhorn on saved costs above this n")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    print(machine_line())
    for n in args.sizes:
        run_case(f"n = {n}, squared distances of {args.dim}-d Gaussian points", point_costs(n, args.dim, args.seed), ())
    for path in args.costs:
        cost = np.load(path)
        skip = SLOW if cost.shape[0] > args.slow_max_n else ()
        run_case(f"n = {cost.shape[0]}, NeuroSQL SSIM+L1 costs from training ({path.name})", cost, skip)


if __name__ == "__main__":
    main()
