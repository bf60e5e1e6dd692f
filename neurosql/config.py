"""Settings: read params.yaml, validate it, and resolve the config of one grid cell.

A cell is one (dataset, backbone, method, latent dimension, seed) training
run. Its resolved config holds exactly the settings that the run depends on,
so Snakemake's params trigger and DVC's params dependencies rerun a cell only
when one of its own settings changes (a NeuroSQL momentum change touches no
VAE cell).
"""

import hashlib
import json
from pathlib import Path
from typing import Any, Iterator

import yaml

METHODS = ("neurosql", "vae", "gan")
REQUIRED_SECTIONS = ("runtime", "datasets", "grid", "backbones", "train", "neurosql", "vae", "gan", "sample", "evaluate")


class ConfigError(ValueError):
    """Raised when params.yaml (or a --configfile overlay) is invalid."""


def load_params(path: str | Path) -> dict[str, Any]:
    """Read and validate a params file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"params file not found: {path}")
    with path.open() as handle:
        params = yaml.safe_load(handle)
    validate_params(params, source=str(path))
    return params


def _require(mapping: dict, key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise ConfigError(f"missing setting {where}.{key}" if where else f"missing section {key!r}")
    return mapping[key]


def validate_params(params: Any, source: str = "params") -> None:
    """Check the sections and the grid that every stage relies on; raise ConfigError."""
    if not isinstance(params, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    for section in REQUIRED_SECTIONS:
        _require(params, section, "")

    for dataset, grid in params["grid"].items():
        if dataset not in params["datasets"]:
            raise ConfigError(f"{source}: grid.{dataset} has no matching datasets.{dataset} section")
        for key in ("backbones", "latent_dims", "seeds", "methods"):
            values = _require(grid, key, f"grid.{dataset}")
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{source}: grid.{dataset}.{key} must be a non-empty list, got {values!r}")
        for backbone in grid["backbones"]:
            if backbone not in params["backbones"]:
                raise ConfigError(f"{source}: grid.{dataset} uses backbone {backbone!r} with no backbones.{backbone} section")
        for method in grid["methods"]:
            if method not in METHODS:
                raise ConfigError(f"{source}: grid.{dataset}.methods has unknown method {method!r}; expected {METHODS}")
        for latent in grid["latent_dims"]:
            if not isinstance(latent, int) or latent < 1:
                raise ConfigError(f"{source}: grid.{dataset}.latent_dims must hold positive integers, got {latent!r}")

    train = params["train"]
    for key in ("epochs", "batch_size", "lr", "weight_decay", "grad_clip", "patience"):
        _require(train, key, "train")
    if train["epochs"] < 1 or train["batch_size"] < 1:
        raise ConfigError(f"{source}: train.epochs and train.batch_size must be at least 1")
    if not 0.0 <= params["neurosql"]["momentum"] <= 1.0:
        raise ConfigError(f"{source}: neurosql.momentum must be in [0, 1], got {params['neurosql']['momentum']}")


def cell_name(method: str, latent_dim: int, seed: int) -> str:
    """Return the file stem of a cell inside its dataset_backbone folder."""
    return f"{method}_z{latent_dim}_s{seed}"


def iter_cells(params: dict, dataset: str, backbone: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield the cells of ``dataset`` (optionally one backbone) in table order."""
    grid = params["grid"][dataset]
    for bb in grid["backbones"]:
        if backbone is not None and bb != backbone:
            continue
        for latent in grid["latent_dims"]:
            for seed in grid["seeds"]:
                for method in grid["methods"]:
                    yield {"dataset": dataset, "backbone": bb, "method": method, "latent_dim": latent, "seed": seed}


def dataset_config(params: dict, dataset: str) -> dict[str, Any]:
    """Return the data settings of ``dataset`` (what the prepare stage depends on)."""
    if dataset not in params["datasets"]:
        raise ConfigError(f"unknown dataset {dataset!r}; params.yaml defines {sorted(params['datasets'])}")
    return dict(params["datasets"][dataset], name=dataset)


def cell_config(params: dict, dataset: str, backbone: str, method: str, latent_dim: int, seed: int) -> dict[str, Any]:
    """Resolve everything one training run depends on, and nothing more."""
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; expected one of {METHODS}")
    if backbone not in params["backbones"]:
        raise ConfigError(f"unknown backbone {backbone!r}; params.yaml defines {sorted(params['backbones'])}")
    data = dataset_config(params, dataset)
    return {
        "dataset": dataset,
        "resolution": data["resolution"],
        "channels": data["channels"],
        "backbone": backbone,
        "backbone_settings": params["backbones"][backbone],
        "method": method,
        "method_settings": params[method],
        "latent_dim": int(latent_dim),
        "seed": int(seed),
        "train": params["train"],
        "runtime": params["runtime"],
    }


def config_hash(config: dict[str, Any]) -> str:
    """Return a short stable hash of a JSON-serialisable config."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
