"""Settings: read params.yaml, validate it, and resolve the config of one grid cell.

A cell is one (dataset, backbone, method, latent dimension, seed) training
run. Its resolved config contains exactly the settings that the run depends on,
so Snakemake's params trigger and DVC's params dependencies rerun a cell only
when one of its own settings changes (a NeuroSQL momentum change touches no
VAE cell).

Two kinds of cell go beyond (method, latent dimension):

- The DDPM baseline has no latent code. It has one cell per (dataset,
  backbone, seed), named with the placeholder latent dimension 0
  (``ddpm_z0_s11``), and its U-Net width is matched to the parameter count
  of that backbone at the smallest latent dimension of the dataset's grid.
- The solver ablation trains NeuroSQL with other assignment solvers. Its
  cells are named ``neurosql-<solver>`` (``neurosql-greedy_z8_s11``); the
  solver that ``neurosql.solver`` already selects reuses the plain
  ``neurosql`` cell.
"""

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Iterator, Sequence

import yaml

METHODS = ("neurosql", "vae", "gan", "ddpm")
LATENT_METHODS = ("neurosql", "vae", "gan")
# The assignment solvers of neurosql.assignment.METHODS (a test keeps the two equal).
SOLVERS = ("exact", "scipy", "lapjv", "certified", "greedy", "pruned", "sinkhorn")
DDPM_LATENT = 0
REQUIRED_SECTIONS = (
    "runtime", "datasets", "grid", "backbones", "train", "neurosql", "vae", "gan", "ddpm", "sample", "evaluate",
)
TRAIN_KEYS = (
    "epochs", "batch_size", "lr", "weight_decay", "betas", "grad_clip", "restart_epochs", "restart_mult", "min_lr",
    "patience",
)


class ConfigError(ValueError):
    """Raised when params.yaml (or a --configfile overlay) is invalid."""


def load_params(path: str | Path, overlays: Sequence[str | Path] = ()) -> dict[str, Any]:
    """Read a params file, merge each overlay into it section by section (as --configfile does), and validate."""
    sources = [Path(path), *map(Path, overlays)]
    params: dict[str, Any] = {}
    for source in sources:
        if not source.is_file():
            raise ConfigError(f"params file not found: {source}")
        with source.open() as handle:
            merge_overlay(params, yaml.safe_load(handle) or {})
    validate_params(params, source=" + ".join(map(str, sources)))
    return params


def merge_overlay(base: dict, overlay: dict) -> None:
    """Merge ``overlay`` into ``base`` in place: nested sections key by key, other values replaced."""
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge_overlay(base[key], value)
        else:
            base[key] = value


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

    for backbone in build_backbones(params):
        if backbone not in params["backbones"]:
            raise ConfigError(f"{source}: build.backbones names {backbone!r}, which has no backbones.{backbone} section")

    train = params["train"]
    for key in ("epochs", "batch_size", "lr", "weight_decay", "grad_clip", "patience"):
        _require(train, key, "train")
    if train["epochs"] < 1 or train["batch_size"] < 1:
        raise ConfigError(f"{source}: train.epochs and train.batch_size must be at least 1")
    for dataset, settings in params["datasets"].items():
        unknown = sorted(set(settings.get("train") or {}) - set(TRAIN_KEYS))
        if unknown:
            raise ConfigError(f"{source}: datasets.{dataset}.train has unknown settings {unknown}; expected {TRAIN_KEYS}")
    solver = params["neurosql"].get("solver")
    if solver not in SOLVERS:
        raise ConfigError(f"{source}: neurosql.solver has unknown solver {solver!r}; expected one of {SOLVERS}")
    if not 0.0 <= params["neurosql"]["momentum"] <= 1.0:
        raise ConfigError(f"{source}: neurosql.momentum must be in [0, 1], got {params['neurosql']['momentum']}")
    _validate_solver_ablation(params, source)


def _validate_solver_ablation(params: dict, source: str) -> None:
    study = (params.get("ablations") or {}).get("solver") or {}
    for dataset, spec in study.items():
        where = f"ablations.solver.{dataset}"
        if dataset not in params["datasets"]:
            raise ConfigError(f"{source}: {where} has no matching datasets.{dataset} section")
        for key in ("backbones", "latent_dims", "seeds", "solvers"):
            values = _require(spec, key, where)
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{source}: {where}.{key} must be a non-empty list, got {values!r}")
        for backbone in spec["backbones"]:
            if backbone not in params["backbones"]:
                raise ConfigError(f"{source}: {where} uses backbone {backbone!r} with no backbones.{backbone} section")
        for solver in spec["solvers"]:
            if solver not in SOLVERS:
                raise ConfigError(f"{source}: {where}.solvers has unknown solver {solver!r}; expected {SOLVERS}")


def cell_name(method: str, latent_dim: int, seed: int) -> str:
    """Return the file stem of a cell inside its dataset_backbone folder."""
    return f"{method}_z{latent_dim}_s{seed}"


def split_method(name: str) -> tuple[str, str | None]:
    """Split a cell's method name into (method, solver): ``neurosql-greedy`` -> (neurosql, greedy)."""
    method, _, solver = name.partition("-")
    if method not in METHODS or (solver and (method != "neurosql" or solver not in SOLVERS)):
        raise ConfigError(
            f"unknown method {name!r}; expected one of {METHODS} or neurosql-<solver> with a solver in {SOLVERS}"
        )
    return method, solver or None


def iter_cells(params: dict, dataset: str, backbone: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield the grid cells of ``dataset`` (optionally one backbone) in table order.

    Per backbone: every (latent dimension, seed, method) of the latent-code
    methods, then one DDPM cell per seed with the placeholder latent 0.
    """
    grid = params["grid"][dataset]
    latent_methods = [m for m in grid["methods"] if m != "ddpm"]
    for bb in grid["backbones"]:
        if backbone is not None and bb != backbone:
            continue
        for latent in grid["latent_dims"]:
            for seed in grid["seeds"]:
                for method in latent_methods:
                    yield {"dataset": dataset, "backbone": bb, "method": method, "latent_dim": latent, "seed": seed}
        if "ddpm" in grid["methods"]:
            for seed in grid["seeds"]:
                yield {"dataset": dataset, "backbone": bb, "method": "ddpm", "latent_dim": DDPM_LATENT, "seed": seed}


def grid_pairs(params: dict) -> list[tuple[str, str]]:
    """Return every (dataset, backbone) pair of the grid, one result table each."""
    return [(dataset, bb) for dataset, grid in params["grid"].items() for bb in grid["backbones"]]


def build_backbones(params: dict) -> list[str]:
    """Backbones whose tables a bare `snakemake`, the report target and `dvc repro` build."""
    return list((params.get("build") or {}).get("backbones") or [])


def build_pairs(params: dict) -> list[tuple[str, str]]:
    """Grid pairs of the backbones in ``build``; any other grid pair builds when named as a target."""
    chosen = build_backbones(params)
    return [(dataset, bb) for dataset, bb in grid_pairs(params) if bb in chosen]


def solver_ablation_datasets(params: dict) -> list[str]:
    """Return the datasets that have a solver ablation table."""
    return list(((params.get("ablations") or {}).get("solver") or {}))


def iter_solver_ablation_cells(params: dict, dataset: str) -> Iterator[dict[str, Any]]:
    """Yield the NeuroSQL cells of the solver ablation of ``dataset``, one per solver."""
    study = ((params.get("ablations") or {}).get("solver") or {}).get(dataset)
    if study is None:
        raise ConfigError(f"no solver ablation for dataset {dataset!r}; params.yaml has ablations.solver for "
                          f"{solver_ablation_datasets(params)}")
    for bb in study["backbones"]:
        for latent in study["latent_dims"]:
            for seed in study["seeds"]:
                for solver in study["solvers"]:
                    method = "neurosql" if solver == params["neurosql"]["solver"] else f"neurosql-{solver}"
                    yield {"dataset": dataset, "backbone": bb, "method": method, "latent_dim": latent, "seed": seed}


def dataset_config(params: dict, dataset: str) -> dict[str, Any]:
    """Return the data settings of ``dataset`` (what the prepare stage depends on).

    The dataset's ``train`` overrides belong to the training cells, not to
    data preparation, so they are left out.
    """
    if dataset not in params["datasets"]:
        raise ConfigError(f"unknown dataset {dataset!r}; params.yaml defines {sorted(params['datasets'])}")
    settings = {key: value for key, value in params["datasets"][dataset].items() if key != "train"}
    return dict(settings, name=dataset)


def train_config(params: dict, dataset: str) -> dict[str, Any]:
    """Return the shared training settings with the dataset's ``train`` overrides merged in."""
    return {**params["train"], **(params["datasets"][dataset].get("train") or {})}


def cell_config(params: dict, dataset: str, backbone: str, method: str, latent_dim: int, seed: int) -> dict[str, Any]:
    """Resolve everything one training run depends on, and nothing more."""
    base_method, solver = split_method(method)
    if backbone not in params["backbones"]:
        raise ConfigError(f"unknown backbone {backbone!r}; params.yaml defines {sorted(params['backbones'])}")
    data = dataset_config(params, dataset)

    settings = copy.deepcopy(params[base_method])
    if solver is not None:
        settings["solver"] = solver
    if base_method == "ddpm":
        if int(latent_dim) != DDPM_LATENT:
            raise ConfigError(f"DDPM cells have no latent code and use latent {DDPM_LATENT}, got {latent_dim}")
        if dataset not in params["grid"]:
            raise ConfigError(f"DDPM cells match the decoder of grid.{dataset}, which params.yaml does not define")
        settings["match_latent_dim"] = min(params["grid"][dataset]["latent_dims"])

    return {
        "dataset": dataset,
        "resolution": data["resolution"],
        "channels": data["channels"],
        "backbone": backbone,
        "backbone_settings": params["backbones"][backbone],
        "method": base_method,
        "method_settings": settings,
        "latent_dim": int(latent_dim),
        "seed": int(seed),
        "train": train_config(params, dataset),
        "runtime": params["runtime"],
    }


def config_hash(config: dict[str, Any]) -> str:
    """Return a short stable hash of a JSON-serialisable config."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
