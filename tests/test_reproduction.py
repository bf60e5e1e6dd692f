"""NeuroSQL paper values file, run records, matching produced cells to paper cells, and the Markdown report."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

import neurosql.training as training
from neurosql.config import cell_config
from neurosql.data.prepare import load_prepared, to_float
from neurosql.latent import aligned_codes
from neurosql.models import load_model
from neurosql.reproduction import compare, reproduction_report, run_records
from tests.conftest import ROOT

PAPER = ROOT / "data" / "paper" / "paper_results.csv"


@pytest.fixture(scope="module")
def paper():
    frame = pd.read_csv(PAPER, dtype={"latent_dim": "string", "seed": "string"}, keep_default_na=False)
    frame["value"] = frame["value"].astype(float)
    return frame


def _value(paper, table, method, metric, latent=""):
    rows = paper[(paper["table"] == table) & (paper["method"] == method) & (paper["metric"] == metric) & (paper["latent_dim"] == latent)]
    assert len(rows) == 1, (table, method, metric, latent)
    return float(rows["value"].iloc[0])


@pytest.mark.parametrize(
    "averaged, cells, decimals",
    [("Table 7", "Table 6", 6), ("Table 12", "Table 11", 2), ("Table 14", "Table 13", 2), ("Table 16", "Table 15", 6),
     ("Table 18", "Table 17", 6)],
)
def test_paper_averages_match_cells(paper, averaged, cells, decimals):
    # Each averaged table is the mean of its per-latent table, printed to ``decimals`` places.
    for method in ("neurosql", "vae", "gan"):
        for metric in ("fid_proxy", "lpips", "ssim"):
            rows = paper[(paper["table"] == cells) & (paper["method"] == method) & (paper["metric"] == metric)]
            assert _value(paper, averaged, method, metric) == pytest.approx(rows["value"].mean(), abs=0.6 * 10**-decimals)


def test_paper_table3_complete(paper):
    table3 = paper[paper["table"] == "Table 3"]
    assert len(table3) == 2 * 4 * 8
    assert set(table3["method"]) == {"neurosql-greedy", "neurosql-exact", "vae", "gan"}
    assert _value(paper, "Table 3", "gan", "fid_proxy", "3") == 5.443


def test_paper_cell_tables_have_three_methods(paper):
    cell_tables = paper[paper["table"].isin([f"Table {n}" for n in (4, 5, 6, 8, 9, 10, 11, 13, 15, 17)])]
    counts = cell_tables.groupby(["table", "latent_dim", "metric"]).size()
    assert (counts == 3).all()


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    """NeuroSQL (exact and greedy) and VAE cells trained on the tiny split, with hand-written metrics files."""
    import yaml

    from tests.conftest import SAMPLE, _merge

    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    _merge(params, yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text()))
    params["datasets"]["mnist"]["sample"] = str(SAMPLE)
    # Two epochs with an assignment after the first keep the fixture short but give one solve time.
    params["train"]["epochs"] = 2
    params["neurosql"]["assign_every"] = 1
    root = tmp_path_factory.mktemp("cells")
    paths = []
    for i, method in enumerate(("neurosql", "vae", "neurosql-greedy")):
        folder = root / f"{method}_z2_s11"
        config = cell_config(params, "mnist", "convnet", method, 2, 11)
        training.train_cell(config, tiny_data, folder / "model.pt", folder / "history.csv", folder / "resume.pt")
        metrics = {
            "dataset": "mnist", "backbone": "convnet", "method": method.partition("-")[0], "latent_dim": 2,
            "seed": 11, "mode": "sampled_z", "fid_proxy": 1.0 + i, "kid": 0.1, "lpips": None, "ssim": 0.5 - 0.1 * i,
        }
        (folder / "sampled_z.json").write_text(json.dumps(metrics))
        paths.append(folder)
    return paths


def test_aligned_codes_neurosql(trained, tiny_data):
    cell = aligned_codes(trained[0] / "model.pt", tiny_data)
    paradigm, _ = load_model(trained[0] / "model.pt")
    np.testing.assert_allclose(cell["codes"], paradigm.z_hat.numpy())
    np.testing.assert_array_equal(cell["labels"], load_prepared(tiny_data)["train_labels"])
    assert cell["method"] == "neurosql"


def test_aligned_codes_vae(trained, tiny_data):
    cell = aligned_codes(trained[1] / "model.pt", tiny_data)
    paradigm, _ = load_model(trained[1] / "model.pt")
    expected = paradigm.encoder(to_float(load_prepared(tiny_data)["train_images"]))[0].detach().numpy()
    np.testing.assert_allclose(cell["codes"], expected, rtol=1e-5, atol=1e-6)


def test_run_records(trained):
    records = run_records(
        [p / "sampled_z.json" for p in trained], [p / "model.pt" for p in trained], [p / "history.csv" for p in trained]
    )
    assert list(records["method"]) == ["neurosql", "neurosql-greedy", "vae"]
    assert list(records["solver"]) == ["exact", "greedy", ""]
    # The resume state keeps each epoch's wall times; the model file their means.
    history = torch.load(trained[2] / "resume.pt", weights_only=True)["history"]
    solves = [row["solve_seconds"] for row in history if "solve_seconds" in row]
    greedy = records[records["method"] == "neurosql-greedy"].iloc[0]
    assert greedy["assign_ms_per_call"] == pytest.approx(1000 * np.mean(solves))
    assert greedy["n_assign_calls"] == len(solves)
    assert records["peak_rss_mb"].gt(0).all()


def test_run_records_reject_mixed_order(trained):
    with pytest.raises(ValueError, match="another cell"):
        run_records([trained[1] / "sampled_z.json"], [trained[0] / "model.pt"], [trained[0] / "history.csv"])


def _records() -> pd.DataFrame:
    rows = []
    for latent, seed, method, solver, fid in [
        (2, 11, "neurosql", "exact", 0.5), (2, 12, "neurosql", "exact", 0.7), (3, 11, "neurosql", "exact", 0.9),
        (2, 11, "neurosql-greedy", "greedy", 0.6), (2, 11, "vae", "", 1.5),
    ]:
        rows.append({"dataset": "mnist", "backbone": "convnet", "latent_dim": latent, "seed": seed, "method": method,
                     "solver": solver, "fid_proxy": fid, "lpips": np.nan, "ssim": 0.5, "params_m": 1.0,
                     "peak_cuda_mb": np.nan, "peak_rss_mb": 900.0, "mean_epoch_seconds": 1.0, "assign_ms_per_call": 5.0})
    return pd.DataFrame(rows)


def _paper_rows(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["table", "dataset", "backbone", "latent_dim", "seed", "method", "metric", "value"])
    frame["value"] = frame["value"].astype(float)
    return frame


def test_compare_means_over_matching_cells():
    paper = _paper_rows([
        ("T17", "mnist", "convnet", "2", "11", "neurosql", "fid_proxy", 0.35),
        ("T18", "mnist", "convnet", "", "", "neurosql", "fid_proxy", 0.6),
        ("T1", "mnist", "all", "", "", "neurosql", "fid_proxy_std", 0.1),
        ("T3", "mnist", "convnet", "2", "11", "neurosql-greedy", "fid_proxy", 0.3),
        ("T2", "", "convnet", "2", "", "neurosql-greedy", "fid_proxy", 0.3),
        ("T4", "oasis", "convnet", "2", "", "neurosql", "fid_proxy", 8.0),
    ])
    result = compare(paper, _records(), None, rel_tolerance=0.25).set_index("table")
    assert result.loc["T17", "ours"] == pytest.approx(0.5)
    assert result.loc["T17", "difference"] == pytest.approx(0.15)
    assert bool(result.loc["T17", "within_tolerance"]) is False
    assert result.loc["T18", "ours"] == pytest.approx(0.7)
    assert result.loc["T18", "n_cells"] == 3
    assert result.loc["T1", "ours"] == pytest.approx(np.std([0.5, 0.7, 0.9]))
    assert result.loc["T3", "ours"] == pytest.approx(0.6)
    # T2 names no dataset and T4 has no produced cells, so neither is compared.
    assert set(result.index) == {"T17", "T18", "T1", "T3"}


def test_report_and_csv(tmp_path, paper):
    records = _records()
    comparison = reproduction_report(
        paper, records, None, {"Latent space": pd.DataFrame({"a": [1.5]})}, 0.25, tmp_path / "r.md", tmp_path / "c.csv"
    )
    text = (tmp_path / "r.md").read_text()
    assert "### Table 17 (mnist, ConvNet)" in text
    assert "### Latent space" in text
    assert "Table 4" in text.split("no produced counterpart")[1]
    saved = pd.read_csv(tmp_path / "c.csv")
    assert "ram_used_mb" in set(comparison["metric"])
    assert "ram_used_mb" not in set(saved["metric"])
    assert len(saved) == (~comparison["metric"].isin(["ram_used_mb", "mean_epoch_seconds", "assign_ms_per_call", "assign_speedup"])).sum()


def test_classifier_stage_latent_knn(trained, tiny_data, tmp_path):
    from neurosql.classifier import knn_labels, run_classifier, train_teacher
    from neurosql.sampling import sampled_codes

    train_teacher(tiny_data, tmp_path / "teacher.pt", tmp_path / "teacher.json", epochs=1)
    result = run_classifier(
        [trained[0] / "model.pt"], tiny_data, tmp_path / "teacher.pt", tmp_path / "c.json", tmp_path / "x.npz",
        n_synthetic=120, sample_seed=3, knn_k=3, epochs=1,
    )
    assert result["label_scheme_used"] == "latent_knn"
    assert result["n_synthetic"] == 120
    assert 0.0 <= result["accuracy"] <= 1.0

    # The synthetic labels are the 3-NN vote of each sampled code among the aligned codes.
    cell = aligned_codes(trained[0] / "model.pt", tiny_data)
    labels = knn_labels(sampled_codes("sobol_gaussian", 120, 2, 3).numpy(), cell["codes"], cell["labels"], 3)
    assert result["synthetic_class_counts"] == np.bincount(labels, minlength=10).tolist()
    with np.load(tmp_path / "x.npz") as exemplars:
        assert exemplars["images"].shape == (10, 8, 1, 28, 28)


def test_compare_classifier_float_keys():
    # A classifier CSV with a blank (teacher) row reads latent and seed as floats.
    classifier = pd.DataFrame(
        {"dataset": ["mnist"], "backbone": ["convnet"], "latent_dim": [2.0], "seed": [11.0], "method": ["neurosql"],
         "accuracy": [0.8], "macro_precision": [0.7], "macro_recall": [0.6]}
    )
    paper = _paper_rows([
        ("T17", "mnist", "convnet", "2", "11", "neurosql", "fid_proxy", 0.35),
        ("H", "mnist", "", "", "", "neurosql", "classifier_accuracy", 0.9),
    ])
    result = compare(paper, _records(), classifier, rel_tolerance=0.25).set_index("table")
    assert result.loc["T17", "ours"] == pytest.approx(0.5)
    assert result.loc["H", "ours"] == pytest.approx(0.8)
