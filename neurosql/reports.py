"""Result tables (the paper's appendix layout) and sample-grid figures."""

import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from neurosql.io import atomic_path  # noqa: E402

log = logging.getLogger(__name__)

METHOD_LABELS = {"neurosql": "NeuroSQL", "vae": "VAE", "gan": "GAN", "ddpm": "Diffusion"}
METHOD_ORDER = list(METHOD_LABELS)
TABLE_COLUMNS = ["Latent dimension", "Seed", "Method", "FID (proxy)", "LPIPS", "SSIM"]


def read_metrics(paths: list[Path]) -> pd.DataFrame:
    """Read metrics JSON files into one frame, one row per file."""
    rows = []
    for path in paths:
        with open(path) as handle:
            rows.append(json.load(handle))
    if not rows:
        raise ValueError("no metrics files given; the grid for this table is empty")
    return pd.DataFrame(rows)


def cell_table(metrics: pd.DataFrame) -> pd.DataFrame:
    """Lay out per-cell metrics as the paper's appendix tables (Table 17 columns).

    LPIPS is left empty where the VGG16 weights were unavailable; the
    ``LPIPS available`` column flags those rows.
    """
    frame = metrics.copy()
    frame["method_rank"] = frame["method"].map(METHOD_ORDER.index)
    frame = frame.sort_values(["latent_dim", "seed", "method_rank"], kind="stable")
    table = pd.DataFrame(
        {
            "Latent dimension": frame["latent_dim"].astype(int),
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
    return table.reset_index(drop=True)


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Average each method over latent dimensions and seeds (Table 18 layout)."""
    metrics = ["FID (proxy)", "LPIPS", "SSIM"]
    grouped = table.groupby("Method", sort=False)[metrics]
    summary = grouped.mean().join(grouped.std(ddof=0).add_suffix(" std"))
    summary["cells"] = grouped.size()
    order = [METHOD_LABELS[m] for m in METHOD_ORDER if METHOD_LABELS[m] in summary.index]
    return summary.loc[order].reset_index()


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
    latents = sorted({p["latent_dim"] for p in panels})
    methods = [m for m in METHOD_ORDER if any(p["method"] == m for p in panels)]

    side = int(np.ceil(np.sqrt(n_images)))
    fig, axes = plt.subplots(
        len(latents), len(methods), figsize=(2.6 * len(methods), 2.8 * len(latents)), squeeze=False
    )
    for panel in panels:
        ax = axes[latents.index(panel["latent_dim"])][methods.index(panel["method"])]
        ax.imshow(_tile(panel["images"], side), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(f"{METHOD_LABELS[panel['method']]}, d={panel['latent_dim']}", fontsize=10)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.tight_layout()

    # Fixed metadata keeps reruns byte-identical (matplotlib stamps its version otherwise).
    with atomic_path(out_path) as tmp:
        fig.savefig(tmp, format=out_path.suffix.lstrip("."), dpi=120, metadata={"Software": None})
    plt.close(fig)


def _tile(images: np.ndarray, side: int) -> np.ndarray:
    """Tile (N, C, H, W) uint8 images into one (side*H, side*W[, 3]) mosaic."""
    n, channels, height, width = images.shape
    canvas = np.zeros((side * height, side * width, channels), dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, side)
        canvas[r * height : (r + 1) * height, c * width : (c + 1) * width] = images[i].transpose(1, 2, 0)
    return canvas[..., 0] if channels == 1 else canvas
