"""Result tables in the NeuroSQL paper's layouts, and sample-grid figures.

- ``cell_table``: one row per cell of a dataset x backbone (Tables 4-17).
- ``summary_table``: per-method averages of one such table (Tables 7, 12, 14, 16, 18).
- ``overview_table``: per dataset and method, mean and std over backbones and
  latent dimensions, with parameter counts (Table 1).
- ``solver_ablation_table``: NeuroSQL with different assignment solvers (Table 2).

Backbones print under the NeuroSQL paper's labels (``BACKBONE_LABELS``: the
transformer decoder is "U-Net").
"""

import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from neurosql.backbones import BACKBONE_LABELS  # noqa: E402
from neurosql.io import atomic_path  # noqa: E402
from neurosql.models import read_model_info  # noqa: E402

log = logging.getLogger(__name__)

METHOD_LABELS = {"neurosql": "NeuroSQL", "vae": "VAE", "gan": "GAN", "ddpm": "Diffusion"}
METHOD_ORDER = list(METHOD_LABELS)
TABLE_COLUMNS = ["Latent dimension", "Seed", "Method", "FID (proxy)", "LPIPS", "SSIM"]
METRIC_COLUMNS = ["FID (proxy)", "LPIPS", "SSIM"]
CELL_KEYS = ("dataset", "backbone", "method", "latent_dim", "seed")


def read_metrics(paths: list[Path]) -> pd.DataFrame:
    """Read metrics JSON files into one frame, one row per file."""
    rows = []
    for path in paths:
        with open(path) as handle:
            rows.append(json.load(handle))
    if not rows:
        raise ValueError("no metrics files given; the grid for this table is empty")
    return pd.DataFrame(rows)


def read_models(paths: list[Path]) -> pd.DataFrame:
    """Read the config and parameter counts of model files, one row per file."""
    rows = []
    for path in paths:
        info = read_model_info(path)
        config = info["config"]
        rows.append(
            {
                **{key: config[key] for key in CELL_KEYS},
                "resolution": config["resolution"],
                "solver": config["method_settings"].get("solver"),
                "params_total": info["n_parameters"]["total"],
                "params_decoder": info["n_parameters"]["decoder"],
                "mean_assign_seconds": (info.get("resources") or {}).get("mean_assign_seconds"),
            }
        )
    return pd.DataFrame(rows)


def join_models(metrics: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """Attach model columns to metrics rows given in the same cell order; raise on a mismatch."""
    if len(metrics) != len(models):
        raise ValueError(f"{len(metrics)} metrics files but {len(models)} model files; pass one model per metrics file")
    for i, (a, b) in enumerate(zip(metrics[list(CELL_KEYS)].itertuples(index=False), models[list(CELL_KEYS)].itertuples(index=False))):
        if tuple(a) != tuple(b):
            raise ValueError(f"metrics file {i} belongs to cell {tuple(a)} but model file {i} to {tuple(b)}")
    extra = [c for c in models.columns if c not in CELL_KEYS]
    return pd.concat([metrics.reset_index(drop=True), models[extra].reset_index(drop=True)], axis=1)


def cell_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Lay out per-cell metrics as the NeuroSQL paper's appendix tables (Table 17 columns).

    LPIPS is left empty where the VGG16 weights were unavailable; the
    ``LPIPS available`` column flags those rows. DDPM rows have no latent
    dimension (an empty cell) and come last. ``Params (M)`` (trainable
    parameters of the whole method, in millions) appears when the frame
    carries model columns (``join_models``).
    """
    frame = metrics.copy()
    frame["method_rank"] = frame["method"].map(METHOD_ORDER.index)
    frame["latent"] = frame["latent_dim"].astype(int).where(frame["method"] != "ddpm").astype("Int64")
    frame = frame.sort_values(["latent", "seed", "method_rank"], kind="stable", na_position="last")
    table = pd.DataFrame(
        {
            "Latent dimension": frame["latent"],
            "Seed": frame["seed"].astype(int),
            "Method": frame["method"].map(METHOD_LABELS),
            "FID (proxy)": frame["fid_proxy"].astype(float),
            "LPIPS": pd.to_numeric(frame["lpips"], errors="coerce"),
            "SSIM": frame["ssim"].astype(float),
            "KID": frame["kid"].astype(float),
            "Mode": frame["mode"],
            "LPIPS available": frame["lpips_available"].astype(bool),
            "n (FID)": frame["n_fake"].astype(int),
        }
    )
    if "params_total" in frame:
        table["Params (M)"] = frame["params_total"].astype(float) / 1e6
    return table.reset_index(drop=True)


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Average each method over latent dimensions and seeds (Tables 7, 12, 14, 16 and 18).

    Standard deviations are population ones (ddof = 0).
    """
    grouped = table.groupby("Method", sort=False)[METRIC_COLUMNS]
    summary = grouped.mean().join(grouped.std(ddof=0).add_suffix(" std"))
    summary["cells"] = grouped.size()
    if "Params (M)" in table:
        summary["Params (M)"] = table.groupby("Method", sort=False)["Params (M)"].mean()
    order = [METHOD_LABELS[m] for m in METHOD_ORDER if METHOD_LABELS[m] in summary.index]
    return summary.loc[order].reset_index()


def overview_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Summarise each dataset and method over backbones, latent dimensions and seeds (Table 1 layout).

    ``frame`` is metrics joined with model columns. Metrics get their mean
    and population standard deviation; ``Params (M)`` is the mean trainable
    parameter count of the method's cells, in millions.
    """
    frame = frame.assign(
        **{
            "FID (proxy)": frame["fid_proxy"].astype(float),
            "LPIPS": pd.to_numeric(frame["lpips"], errors="coerce"),
            "SSIM": frame["ssim"].astype(float),
            "Params (M)": frame["params_total"].astype(float) / 1e6,
            "method_rank": frame["method"].map(METHOD_ORDER.index),
        }
    )
    rows = []
    for (dataset, rank), group in frame.groupby(["dataset", "method_rank"], sort=True):
        row = {
            "Dataset": dataset,
            "Resolution": f"{int(group['resolution'].iloc[0])}x{int(group['resolution'].iloc[0])}",
            "Method": METHOD_LABELS[METHOD_ORDER[rank]],
        }
        for column in METRIC_COLUMNS:
            row[column] = group[column].mean()
            row[f"{column} std"] = group[column].std(ddof=0)
        row["Params (M)"] = group["Params (M)"].mean()
        row["Backbones"] = " ".join(BACKBONE_LABELS.get(b, b) for b in dict.fromkeys(group["backbone"]))
        row["cells"] = len(group)
        rows.append(row)
    return pd.DataFrame(rows)


def solver_ablation_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Lay out NeuroSQL runs that differ only in the assignment solver (Table 2 layout).

    ``frame`` is metrics joined with model columns. Wall times of the
    assignment step are left to the resources table, so that this table is
    byte-identical across reruns.
    """
    frame = frame.sort_values(["backbone", "latent_dim", "seed", "solver"], kind="stable")
    table = pd.DataFrame(
        {
            "Backbone": frame["backbone"].map(lambda b: BACKBONE_LABELS.get(b, b)),
            "Latent dimension": frame["latent_dim"].astype(int),
            "Seed": frame["seed"].astype(int),
            "Method": "NeuroSQL-" + frame["solver"].astype(str),
            "FID (proxy)": frame["fid_proxy"].astype(float),
            "LPIPS": pd.to_numeric(frame["lpips"], errors="coerce"),
            "SSIM": frame["ssim"].astype(float),
            "KID": frame["kid"].astype(float),
            "LPIPS available": frame["lpips_available"].astype(bool),
            "n (FID)": frame["n_fake"].astype(int),
        }
    )
    return table.reset_index(drop=True)


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a table with fixed float formatting, atomically, so reruns are byte-identical."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6f")


def sample_grid_figure(sample_paths: list[Path], out_path: Path, n_images: int = 36) -> None:
    """Draw the first ``n_images`` samples of each file as a square grid, one panel per file.

    Panels are laid out with one row per latent dimension and one column per
    method, in table order.
    """
    panels = []
    for path in sample_paths:
        with np.load(path, allow_pickle=False) as samples:
            if len(samples["images"]) < n_images:
                raise ValueError(f"{path} has {len(samples['images'])} images; the figure needs {n_images}")
            panels.append(
                {
                    "images": samples["images"][:n_images],
                    "method": str(samples["method"]),
                    "latent_dim": int(samples["latent_dim"]),
                }
            )
    # DDPM panels (latent 0, no latent code) form the last row.
    latents = sorted({p["latent_dim"] for p in panels}, key=lambda d: (d == 0, d))
    methods = [m for m in METHOD_ORDER if any(p["method"] == m for p in panels)]

    side = int(np.ceil(np.sqrt(n_images)))
    fig, axes = plt.subplots(
        len(latents), len(methods), figsize=(2.6 * len(methods), 2.8 * len(latents)), squeeze=False
    )
    for panel in panels:
        ax = axes[latents.index(panel["latent_dim"])][methods.index(panel["method"])]
        ax.imshow(_tile(panel["images"], side), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        label = METHOD_LABELS[panel["method"]]
        ax.set_title(label if panel["method"] == "ddpm" else f"{label}, d={panel['latent_dim']}", fontsize=10)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.tight_layout()

    # Fixed metadata keeps reruns byte-identical (matplotlib stamps its version otherwise).
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format=out_path.suffix.lstrip("."), dpi=120, metadata=_fixed_metadata(out_path.suffix))
    plt.close(fig)


def _fixed_metadata(suffix: str) -> dict:
    """Return savefig metadata without version or date stamps, for byte-identical reruns."""
    if suffix == ".pdf":
        return {"Creator": None, "Producer": None, "CreationDate": None}
    return {"Software": None}


def _tile(images: np.ndarray, side: int) -> np.ndarray:
    """Tile (N, C, H, W) uint8 images into one (side*H, side*W[, 3]) mosaic."""
    n, channels, height, width = images.shape
    canvas = np.zeros((side * height, side * width, channels), dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, side)
        canvas[r * height : (r + 1) * height, c * width : (c + 1) * width] = images[i].transpose(1, 2, 0)
    return canvas[..., 0] if channels == 1 else canvas
