"""The experiment grid: cell expansion, Snakemake listings, NeuroSQL options, report tables."""

import copy
import itertools
import re
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from neurosql.assignment import METHODS as ASSIGNMENT_METHODS
from neurosql.config import (
    SOLVERS,
    ConfigError,
    build_pairs,
    cell_config,
    dataset_config,
    grid_pairs,
    iter_cells,
    iter_solver_ablation_cells,
    load_params,
    split_method,
    validate_params,
)
from neurosql.lattice import make_lattice
from neurosql.losses import l2_per_image
from neurosql.models import build_paradigm
from neurosql.reports import cell_table, overview_table, solver_ablation_table
from tests.conftest import ROOT, _merge, train_straight_and_resumed
from tests.workflow import BIN, copy_checkout, snakemake, tool_env



def _overlay(base_params: dict, name: str) -> dict:
    params = copy.deepcopy(base_params)
    _merge(params, yaml.safe_load((ROOT / "configs" / name).read_text()))
    return params


def _cell_label(cell: dict) -> str:
    return (
        f"dataset={cell['dataset']}, backbone={cell['backbone']}, method={cell['method']}, "
        f"latent={cell['latent_dim']}, seed={cell['seed']}"
    )


# --- grid expansion -------------------------------------------------------------


def test_ddpm_cells_once_per_seed(base_params):
    params = _overlay(base_params, "tiny-grid.yaml")
    cells = list(iter_cells(params, "mnist", "resnet"))
    ddpm = [c for c in cells if c["method"] == "ddpm"]
    assert [c["latent_dim"] for c in ddpm] == [0]
    assert len(cells) == 2 * 3 + 1


def test_ddpm_config_matches_smallest_latent(base_params):
    params = _overlay(base_params, "tiny-grid.yaml")
    params["grid"]["mnist"]["latent_dims"] = [8, 3, 5]
    cfg = cell_config(params, "mnist", "convnet", "ddpm", 0, 11)
    assert cfg["method_settings"]["match_latent_dim"] == 3
    assert cfg["latent_dim"] == 0


def test_ddpm_nonzero_latent_rejected(base_params):
    with pytest.raises(ConfigError, match="latent 0"):
        cell_config(base_params, "mnist", "convnet", "ddpm", 2, 11)


def test_paper_grid_covers_every_backbone(base_params):
    params = _overlay(base_params, "paper-gpu.yaml")
    for dataset, grid in params["grid"].items():
        assert grid["backbones"] == ["convnet", "resnet", "transformer"], dataset
        assert grid["methods"] == ["neurosql", "vae", "gan", "ddpm"], dataset
        assert min(grid["latent_dims"]) == 2, dataset
        assert max(grid["latent_dims"]) == 128, dataset


def test_default_grid_has_every_backbone_and_builds_convnet(base_params):
    assert [pair for pair in grid_pairs(base_params) if pair[0] == "mnist"] == [
        ("mnist", "convnet"), ("mnist", "resnet"), ("mnist", "transformer"),
    ]
    assert [pair for pair in build_pairs(base_params) if pair[0] == "mnist"] == [("mnist", "convnet")]
    methods = {(c["method"], c["latent_dim"]) for c in iter_cells(base_params, "mnist", "convnet")}
    assert methods == {(m, d) for m in ("neurosql", "vae", "gan") for d in (2, 3)}


def test_build_backbone_without_section_rejected(base_params):
    params = copy.deepcopy(base_params)
    params["build"] = {"backbones": ["convnet", "vit"]}
    with pytest.raises(ConfigError, match=r"build.backbones names 'vit'"):
        validate_params(params)


def test_dataset_train_overrides_merge(base_params):
    params = copy.deepcopy(base_params)
    params["datasets"]["mnist"]["train"] = {"epochs": 7, "batch_size": 16}
    cfg = cell_config(params, "mnist", "convnet", "vae", 2, 11)
    assert cfg["train"]["epochs"] == 7
    assert cfg["train"]["batch_size"] == 16
    assert cfg["train"]["lr"] == base_params["train"]["lr"]
    assert "train" not in dataset_config(params, "mnist")


def test_unknown_train_override_rejected(base_params):
    params = copy.deepcopy(base_params)
    params["datasets"]["mnist"]["train"] = {"epoch": 7}
    with pytest.raises(ConfigError, match="unknown settings"):
        validate_params(params)


def test_solvers_match_assignment_methods():
    assert SOLVERS == ASSIGNMENT_METHODS


def test_split_method_variants():
    assert split_method("neurosql-greedy") == ("neurosql", "greedy")
    assert split_method("gan") == ("gan", None)
    with pytest.raises(ConfigError):
        split_method("vae-greedy")
    with pytest.raises(ConfigError):
        split_method("neurosql-fast")


def test_ablation_reuses_grid_solver(base_params):
    params = _overlay(base_params, "tiny-grid.yaml")
    methods = [c["method"] for c in iter_solver_ablation_cells(params, "mnist")]
    assert methods == ["neurosql", "neurosql-greedy"]
    cfg = cell_config(params, "mnist", "convnet", "neurosql-greedy", 2, 11)
    assert cfg["method"] == "neurosql"
    assert cfg["method_settings"]["solver"] == "greedy"


def test_load_params_merges_overlays_in_order(tmp_path):
    second = tmp_path / "second.yaml"
    second.write_text("train:\n  epochs: 2\n")
    params = load_params(ROOT / "params.yaml", [ROOT / "configs" / "tiny.yaml", second])
    assert params["train"]["epochs"] == 2
    assert params["train"]["batch_size"] == 32
    assert params["datasets"]["mnist"]["n_train_max"] == 96
    assert params["datasets"]["mnist"]["kind"] == "mnist"
    with pytest.raises(ConfigError, match="params file not found: .*missing.yaml"):
        load_params(ROOT / "params.yaml", [tmp_path / "missing.yaml"])


def test_unknown_neurosql_solver_rejected(base_params):
    params = copy.deepcopy(base_params)
    params["neurosql"]["solver"] = "hungarian"
    with pytest.raises(ConfigError, match="neurosql.solver has unknown solver 'hungarian'"):
        validate_params(params)


def test_ablation_unknown_solver_rejected(base_params):
    params = _overlay(base_params, "tiny-grid.yaml")
    params["ablations"]["solver"]["mnist"]["solvers"] = ["exact", "fast"]
    with pytest.raises(ConfigError, match="unknown solver 'fast'"):
        validate_params(params)


# --- Snakemake listings ----------------------------------------------------------


def _planned(output: str, rule: str) -> list[str]:
    """Return the wildcards of each job of ``rule`` in a `snakemake -n` listing."""
    found = []
    for block in re.split(r"\n(?=rule |localrule )", output):
        if block.startswith((f"rule {rule}:", f"localrule {rule}:")):
            found.append(re.search(r"wildcards: (.*)", block).group(1).strip())
    return found


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    return copy_checkout(tmp_path_factory.mktemp("repo"))


@pytest.mark.parametrize("backbone", ["convnet", "resnet", "transformer"])
def test_dry_run_lists_table_cells(checkout, base_params, backbone):
    params = _overlay(base_params, "tiny-grid.yaml")
    out = snakemake(checkout, "-n", f"results/tables/mnist_{backbone}.csv", "--configfile", "configs/tiny-grid.yaml")
    planned = _planned(out, "train")
    assert sorted(planned) == sorted(_cell_label(c) for c in iter_cells(params, "mnist", backbone))
    assert len(planned) == len(set(planned))


def test_dry_run_lists_ablation_cells(checkout, base_params):
    params = _overlay(base_params, "tiny-grid.yaml")
    out = snakemake(checkout, "-n", "results/tables/ablations/solver_mnist.csv", "--configfile", "configs/tiny-grid.yaml")
    assert sorted(_planned(out, "train")) == sorted(_cell_label(c) for c in iter_solver_ablation_cells(params, "mnist"))


def _default_pairs() -> list[tuple[str, str]]:
    return grid_pairs(yaml.safe_load((ROOT / "params.yaml").read_text()))


@pytest.mark.parametrize("dataset,backbone", _default_pairs())
def test_default_dry_run_lists_table_cells(checkout, base_params, dataset, backbone):
    # The literal command of the grid's acceptance, with params.yaml as it ships.
    out = snakemake(checkout, "-n", f"results/tables/{dataset}_{backbone}.csv")
    planned = _planned(out, "train")
    assert sorted(planned) == sorted(_cell_label(c) for c in iter_cells(base_params, dataset, backbone))
    assert len(planned) == len(set(planned))


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("results/tables/fashionmnist_convnet.csv", "fashionmnist has no grid.fashionmnist section"),
        ("results/tables/mnist_unet.csv", "unknown backbone 'unet' in the target"),
        ("results/tables/mnist_resnet.csv --configfile configs/tiny.yaml", "mnist x resnet is not in the grid"),
        ("results/tables/oasis_resnet.csv", None),
    ],
)
def test_dry_run_target_outside_grid(checkout, target, message):
    result = subprocess.run(
        [str(BIN / "snakemake"), "-n", "--cores", "1", *target.split()],
        cwd=checkout, env=tool_env(), capture_output=True, text=True,
    )
    output = result.stdout + result.stderr
    if message is None:
        # A pair inside the grid plans its jobs.
        assert result.returncode == 0, output[-2000:]
    else:
        assert result.returncode != 0
        assert message in output


@pytest.mark.parametrize("overlay", [
    "trian:\n  epochs: 1\n",
    "datasets:\n  mnist:\n    n_trian_max: 10\n",
    "vae:\n  hiden: 256\n",
    "report:\n  classifier:\n    epoch: 2\n",
    "grid:\n  mnist:\n    seed: [1]\n",
])
def test_dry_run_misspelt_setting_rejected(checkout, tmp_path, overlay):
    (tmp_path / "typo.yaml").write_text(overlay)
    result = subprocess.run(
        [str(BIN / "snakemake"), "-n", "--cores", "1", "--configfile", str(tmp_path / "typo.yaml")],
        cwd=checkout, env=tool_env(), capture_output=True, text=True,
    )
    assert result.returncode != 0
    assert "Additional properties are not allowed" in result.stdout + result.stderr


# --- NeuroSQL options from params ---------------------------------------------------


def _neurosql(params: dict, n: int, **settings):
    params["neurosql"].update(settings)
    return build_paradigm(cell_config(params, "mnist", "convnet", "neurosql", 2, 11), n)


@pytest.mark.parametrize("lattice", ["sobol_gaussian", "uniform_grid", "unit_ball"])
def test_lattice_from_params(tiny_params, lattice):
    model = _neurosql(tiny_params, 12, lattice=lattice)
    assert torch.equal(model.lattice, make_lattice(lattice, 12, 2, 11))
    assert model.latent_prior() == lattice


def test_k_and_rho_from_params(tiny_params):
    model = _neurosql(tiny_params, 12, assign_every=5, momentum=0.4)
    assert model.assign_every == 5
    assert model.momentum == 0.4


def test_l2_cost_assignment_brute_force(tiny_params):
    n = 6
    model = _neurosql(tiny_params, n, cost="l2")
    images = torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    model.initialise(images)
    model.assign(images)

    generated = model.generate(model.lattice)
    cost = np.array([[float(l2_per_image(images[i : i + 1], generated[k : k + 1])) for k in range(n)] for i in range(n)])
    best = min(itertools.permutations(range(n)), key=lambda p: cost[np.arange(n), list(p)].sum())
    got = model.assignment.numpy()
    assert cost[np.arange(n), got].sum() == pytest.approx(cost[np.arange(n), list(best)].sum(), abs=1e-7)


def test_greedy_solver_from_params(tiny_params):
    model = _neurosql(tiny_params, 6, solver="greedy")
    assert model.solver == "greedy"


def test_minibatch_resume_matches_uninterrupted(tiny_params, tiny_data, tmp_path, monkeypatch):
    # The memory bank and assignment live in the resume state, so a resumed
    # mini-batch run (Algorithm 2) ends with the same codes and weights.
    tiny_params["neurosql"]["mode"] = "minibatch"
    tiny_params["backbones"]["transformer"] = {"width": 16}
    tiny_params["train"]["epochs"] = 3
    # One thread per job: two OpenMP threads on a busy 2-core machine run several times slower.
    tiny_params["runtime"]["threads"] = 1
    cfg = cell_config(tiny_params, "mnist", "transformer", "neurosql", 2, 11)

    reference, resumed = train_straight_and_resumed(cfg, tiny_data, tmp_path, monkeypatch)

    for key, tensor in reference["state_dict"].items():
        assert torch.equal(tensor, resumed["state_dict"][key]), key


# --- report tables ------------------------------------------------------------------


def _metrics_frame() -> pd.DataFrame:
    rows = []
    for backbone, latent, method, fid in [
        ("convnet", 2, "neurosql", 1.0), ("convnet", 2, "vae", 2.0), ("convnet", 0, "ddpm", 5.0),
        ("resnet", 3, "neurosql", 3.0), ("resnet", 3, "vae", 6.0), ("resnet", 0, "ddpm", 7.0),
    ]:
        rows.append({
            "dataset": "mnist", "backbone": backbone, "method": method, "latent_dim": latent, "seed": 11,
            "fid_proxy": fid, "lpips": None, "ssim": fid / 10, "kid": 0.0, "mode": "sampled_z",
            "lpips_available": False, "n_fake": 16, "resolution": 28, "params_total": 2_000_000 * fid,
            "params_decoder": 1_000_000, "solver": "exact", "mean_assign_seconds": None,
        })
    return pd.DataFrame(rows)


def test_cell_table_ddpm_row_last_without_latent():
    table = cell_table(_metrics_frame()[lambda f: f["backbone"] == "convnet"])
    assert list(table["Method"]) == ["NeuroSQL", "VAE", "Diffusion"]
    assert table["Latent dimension"].isna().tolist() == [False, False, True]
    assert table["Params (M)"].tolist() == [2.0, 4.0, 10.0]


def test_overview_mean_and_std():
    overview = overview_table(_metrics_frame()).set_index("Method")
    assert overview.loc["NeuroSQL", "FID (proxy)"] == pytest.approx(np.mean([1.0, 3.0]))
    assert overview.loc["NeuroSQL", "FID (proxy) std"] == pytest.approx(np.std([1.0, 3.0]))
    assert overview.loc["Diffusion", "Params (M)"] == pytest.approx(np.mean([10.0, 14.0]))
    assert overview.loc["VAE", "Backbones"] == "ConvNet ResNet"
    assert list(overview.index) == ["NeuroSQL", "VAE", "Diffusion"]


def test_solver_ablation_rows():
    frame = _metrics_frame()[lambda f: f["method"] == "neurosql"].copy()
    frame["solver"] = ["greedy", "exact"]
    frame["latent_dim"] = [8, 8]
    frame["backbone"] = "transformer"
    table = solver_ablation_table(frame)
    assert list(table["Method"]) == ["NeuroSQL-exact", "NeuroSQL-greedy"]
    assert list(table["FID (proxy)"]) == [3.0, 1.0]
    assert set(table["Backbone"]) == {"U-Net"}


# --- the whole tiny grid ------------------------------------------------------------


@pytest.mark.slow
def test_tiny_grid_end_to_end(tmp_path, base_params):
    params = _overlay(base_params, "tiny-grid.yaml")
    work = copy_checkout(tmp_path / "repo")
    start = time.perf_counter()
    snakemake(work, "--cores", "2", "--configfile", "configs/tiny-grid.yaml")
    elapsed = time.perf_counter() - start

    # Only MNIST has data in a fresh checkout; the real datasets' grid entries are skipped.
    for dataset, backbone in [pair for pair in grid_pairs(params) if pair[0] == "mnist"]:
        table = pd.read_csv(work / f"results/tables/{dataset}_{backbone}.csv")
        assert len(table) == len(list(iter_cells(params, dataset, backbone))), backbone
        assert list(table["Method"]).count("Diffusion") == 1, backbone
        assert table["FID (proxy)"].notna().all(), backbone
        assert (table["Params (M)"] > 0).all(), backbone
    overview = pd.read_csv(work / "results/tables/overview.csv")
    assert list(overview["Method"]) == ["NeuroSQL", "VAE", "GAN", "Diffusion"]
    assert (overview["cells"] == [6, 6, 6, 3]).all()
    ablation = pd.read_csv(work / "results/tables/ablations/solver_mnist.csv")
    assert list(ablation["Method"]) == ["NeuroSQL-exact", "NeuroSQL-greedy"]
    # About 4 minutes of wall time on an idle 2-core machine; the bound leaves room for a busy one.
    assert elapsed < 1200, f"tiny grid took {elapsed:.0f} s"
