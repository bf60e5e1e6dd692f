import csv

import pytest
import torch

import neurosql.training as training
from neurosql.config import cell_config
from neurosql.models import load_model
from tests.conftest import train_straight_and_resumed


def _train(tiny_params, tiny_data, out, method="neurosql", **kwargs):
    cfg = cell_config(tiny_params, "mnist", "convnet", method, 2, 11)
    training.train_cell(cfg, tiny_data, out / "model.pt", out / "history.csv", out / "resume.pt", **kwargs)
    return load_model(out / "model.pt")


@pytest.mark.parametrize("method", ["neurosql", "vae", "gan"])
def test_train_writes_model_and_history(tiny_params, tiny_data, tmp_path, method):
    paradigm, payload = _train(tiny_params, tiny_data, tmp_path, method)
    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    assert len(rows) == tiny_params["train"]["epochs"]
    assert payload["epochs_run"] == len(rows)
    assert payload["config"]["method"] == method
    assert 0 <= payload["best_epoch"] < len(rows)
    assert payload["best_val_loss"] == pytest.approx(min(float(r["val_loss"]) for r in rows))
    images = paradigm.generate(torch.zeros(3, 2))
    assert images.shape == (3, 1, 28, 28)
    assert images.min() >= 0
    assert images.max() <= 1


def test_neurosql_logs_assignment_time(tiny_params, tiny_data, tmp_path):
    _, payload = _train(tiny_params, tiny_data, tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "history.csv")))
    k = tiny_params["neurosql"]["assign_every"]
    assigned = [int(r["epoch"]) for r in rows if r.get("assign_cost")]
    assert assigned == [e for e in range(len(rows)) if e > 0 and e % k == 0]
    assert payload["resources"]["n_assign_calls"] == len(assigned)


def test_resume_after_interrupt_matches_uninterrupted_run(tiny_params, tiny_data, tmp_path, monkeypatch):
    cfg = cell_config(tiny_params, "mnist", "convnet", "neurosql", 2, 11)
    reference, resumed = train_straight_and_resumed(cfg, tiny_data, tmp_path, monkeypatch)

    assert resumed["best_epoch"] == reference["best_epoch"]
    for key, tensor in reference["state_dict"].items():
        assert torch.equal(tensor, resumed["state_dict"][key]), key


def test_resume_state_of_other_config_is_ignored(tiny_params, tiny_data, tmp_path):
    _train(tiny_params, tiny_data, tmp_path)
    tiny_params["neurosql"]["momentum"] = 0.5
    _, payload = _train(tiny_params, tiny_data, tmp_path)
    assert payload["config"]["method_settings"]["momentum"] == 0.5
    assert payload["epochs_run"] == tiny_params["train"]["epochs"]


def test_device_errors_name_the_setting(monkeypatch):
    from neurosql.runtime import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="evaluate.device is 'tpu'; expected 'cpu'"):
        resolve_device("tpu", "evaluate.device")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="set evaluate.device to 'cpu' or 'auto'"):
        resolve_device("cuda", "evaluate.device")
    assert resolve_device("auto") == torch.device("cpu")
