"""Benchmark the assignment solvers on structured n x n costs.

Usage: python benchmarks/bench_lsap.py [--sizes 2000 8000] [--images] [--threads 1]

Costs are squared Euclidean distances between two sets of n standard normal
points in 16 dimensions (float64), a stand-in for image-to-code costs that
has structure, unlike i.i.d. uniform costs. With --images, two extra cases
at the first size use the SSIM+L1 cost of MNIST digits (data/mnist-sample)
against other digits and against 5x5 box-blurred digits. Each solver runs once per case; the cost ratio is the
mean matched cost divided by the optimum (lap.lapjv). Sinkhorn runs only
up to --sinkhorn-max-n because it is slow on CPU.
"""

import argparse
import time

import numpy as np
import torch

from bench_cost import load_images, machine_line
from neurosql.assignment import assignment_cost, solve_assignment
from neurosql.cost import pairwise_cost

SOLVERS = (
    ("scipy linear_sum_assignment", "scipy"),
    ("lap.lapjv (exact)", "exact"),
    ("greedy (Algorithm 3)", "greedy"),
    ("pruned, k=32", "pruned"),
    ("sinkhorn + greedy rounding", "sinkhorn"),
)


def point_costs(n: int, dim: int, seed: int) -> np.ndarray:
    """Return squared distances between two sets of n Gaussian points."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, dim))
    b = rng.standard_normal((n, dim))
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(sq, 0.0)


def run_case(name: str, cost: np.ndarray, sinkhorn_max_n: int) -> None:
    """Time every solver on one cost matrix and print a markdown table."""
    results = []
    for label, method in SOLVERS:
        if method == "sinkhorn" and cost.shape[0] > sinkhorn_max_n:
            continue
        start = time.perf_counter()
        perm = solve_assignment(cost, method)
        seconds = time.perf_counter() - start
        results.append((label, seconds, assignment_cost(cost, perm)))

    optimum = dict((label, value) for label, _, value in results)["lap.lapjv (exact)"]
    scipy_s = results[0][1]
    print(f"\n{name}\n")
    print("| solver | time (s) | speed vs scipy | mean cost / optimum |")
    print("|---|---:|---:|---:|")
    for label, seconds, value in results:
        print(f"| {label} | {seconds:.3f} | {scipy_s / seconds:.1f}x | {value / optimum:.4f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--dim", type=int, default=16, help="dimension of the points")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for the image cost")
    parser.add_argument("--images", action="store_true", help="add an SSIM+L1 MNIST case")
    parser.add_argument("--sinkhorn-max-n", type=int, default=2000, help="skip sinkhorn above this n")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(machine_line())
    for n in args.sizes:
        cost = point_costs(n, args.dim, args.seed)
        run_case(f"n = {n}, squared distances of {args.dim}-d Gaussian points", cost, args.sinkhorn_max_n)
    if args.images:
        n = args.sizes[0]
        x, y, source = load_images(n, args.seed)
        cost = pairwise_cost(x, y).double().numpy()
        run_case(f"n = {n}, SSIM+L1 costs of {source}", cost, args.sinkhorn_max_n)

        # Box-blurred digits stand in for the smooth output of a generator
        # early in training.
        blurred = torch.nn.functional.avg_pool2d(y, 5, stride=1, padding=2)
        cost = pairwise_cost(x, blurred).double().numpy()
        run_case(f"n = {n}, SSIM+L1 costs of {source} against 5x5 box-blurred digits", cost, args.sinkhorn_max_n)


if __name__ == "__main__":
    main()
