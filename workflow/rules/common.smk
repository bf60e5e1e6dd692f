# Shared helpers: config validation, the grid, and output paths.

import json
import sys
from pathlib import Path

from snakemake.utils import validate

from neurosql.config import (
    build_pairs,
    cell_config,
    cell_name,
    dataset_config,
    grid_pairs,
    iter_cells,
    iter_solver_ablation_cells,
    solver_ablation_datasets,
    validate_params,
)

validate(config, "../schemas/params.schema.yaml")
validate_params(config, source="the Snakemake config")

# The interpreter running Snakemake also runs the stages, so a virtual
# environment never has to be activated for the jobs.
NEUROSQL = f"{sys.executable} -m neurosql"


wildcard_constraints:
    dataset="[a-z0-9]+",
    backbone="[a-z0-9]+",
    method="neurosql(-[a-z]+)?|vae|gan|ddpm",
    latent=r"\d+",
    seed=r"\d+",
    mode="sampled_z|paired_z",


def cell_dir(cell):
    """Folder of one cell's files below a results/<kind>/ folder."""
    return f"{cell['dataset']}_{cell['backbone']}/{cell_name(cell['method'], cell['latent_dim'], cell['seed'])}"


def cells(dataset, backbone):
    """The grid cells of one dataset x backbone table; raise for a pair outside the grid."""
    if (dataset, backbone) not in grid_pairs(config):
        if backbone not in config["backbones"]:
            raise ValueError(
                f"unknown backbone {backbone!r} in the target; expected one of {sorted(config['backbones'])}"
                " (the paper's U-Net decoder is 'transformer')"
            )
        if dataset not in config["grid"]:
            raise ValueError(
                f"{dataset} has no grid.{dataset} section: add one to params.yaml or a --configfile, with"
                " backbones, latent_dims, seeds and methods as in grid.mnist"
            )
        raise ValueError(
            f"{dataset} x {backbone} is not in the grid: add {backbone!r} to grid.{dataset}.backbones in "
            f"params.yaml or pass a --configfile that has it (configs/paper-gpu.yaml has every backbone)"
        )
    return list(iter_cells(config, dataset, backbone))


def grid_cells():
    return [cell for dataset, backbone in grid_pairs(config) for cell in cells(dataset, backbone)]


def table_mode():
    return config["sample"]["modes"][0]


def metrics_of(cell_list):
    return [f"results/metrics/{cell_dir(c)}/{table_mode()}.json" for c in cell_list]


def models_of(cell_list):
    return [f"results/checkpoints/{cell_dir(c)}/model.pt" for c in cell_list]


def metrics_files(dataset, backbone):
    return metrics_of(cells(dataset, backbone))


def samples_files(dataset, backbone):
    return [f"results/samples/{cell_dir(c)}/{table_mode()}.npz" for c in cells(dataset, backbone)]


def solver_ablation_cells(dataset):
    return list(iter_solver_ablation_cells(config, dataset))


def dataset_available(dataset):
    """True when a dataset has data to prepare: an embedded sample or a non-empty raw folder."""
    cfg = dataset_config(config, dataset)
    if cfg.get("sample") and Path(cfg["sample"]).is_file():
        return True
    raw = Path(cfg["raw_dir"])
    return raw.is_dir() and any(p.name != "README.md" for p in raw.iterdir())


def available_pairs():
    """Pairs of build.backbones whose dataset is present: what `snakemake` with no target builds."""
    return [(dataset, backbone) for dataset, backbone in build_pairs(config) if dataset_available(dataset)]


def available_cells():
    return [cell for dataset, backbone in available_pairs() for cell in cells(dataset, backbone)]


def all_tables_and_figures():
    targets = []
    for dataset, backbone in available_pairs():
        targets += [
            f"results/tables/{dataset}_{backbone}.csv",
            f"results/figures/{dataset}_{backbone}_samples.png",
        ]
    targets.append("results/tables/overview.csv")
    targets += [
        f"results/tables/ablations/solver_{dataset}.csv"
        for dataset in solver_ablation_datasets(config)
        if dataset_available(dataset)
    ]
    return targets


def wildcard_cell(wildcards):
    return cell_config(
        config, wildcards.dataset, wildcards.backbone, wildcards.method, int(wildcards.latent), int(wildcards.seed)
    )


def as_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
