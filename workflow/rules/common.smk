# Shared helpers: config validation, the grid, and output paths.

import json
import sys

from snakemake.utils import validate

from neurosql.config import cell_config, cell_name, dataset_config, iter_cells, validate_params

validate(config, "../schemas/params.schema.yaml")
validate_params(config, source="the Snakemake config")

# The interpreter running Snakemake also runs the stages, so a virtual
# environment never has to be activated for the jobs.
NEUROSQL = f"{sys.executable} -m neurosql"


wildcard_constraints:
    dataset="[a-z0-9]+",
    backbone="[a-z0-9]+",
    method="neurosql|vae|gan|ddpm",
    latent=r"\d+",
    seed=r"\d+",
    mode="sampled_z|paired_z",


def cell_dir(cell):
    """Folder of one cell's files below a results/<kind>/ folder."""
    return f"{cell['dataset']}_{cell['backbone']}/{cell_name(cell['method'], cell['latent_dim'], cell['seed'])}"


def cells(dataset, backbone):
    return list(iter_cells(config, dataset, backbone))


def table_mode():
    return config["sample"]["modes"][0]


def metrics_files(dataset, backbone):
    return [f"results/metrics/{cell_dir(c)}/{table_mode()}.json" for c in cells(dataset, backbone)]


def samples_files(dataset, backbone):
    return [f"results/samples/{cell_dir(c)}/{table_mode()}.npz" for c in cells(dataset, backbone)]


def all_tables_and_figures():
    targets = []
    for dataset, grid in config["grid"].items():
        for backbone in grid["backbones"]:
            targets += [
                f"results/tables/{dataset}_{backbone}.csv",
                f"results/figures/{dataset}_{backbone}_samples.png",
            ]
    return targets


def wildcard_cell(wildcards):
    return cell_config(
        config, wildcards.dataset, wildcards.backbone, wildcards.method, int(wildcards.latent), int(wildcards.seed)
    )


def as_json(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
