"""Result figures: sample grids per method and backbone, per-class grids, latent spaces, metric curves.

Every function draws one figure, writes it to each path it is given (PNG
and/or PDF) and returns the number of panels drawn. Output is byte-stable
for equal inputs: matplotlib's Agg backend, a fixed dpi, and metadata with
the version and date stamps removed. Each PNG also carries a ``Panels`` text
chunk with the panel count, so a test can check a figure without parsing
its pixels.
"""

import logging
import re
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from neurosql.io import atomic_path  # noqa: E402

log = logging.getLogger(__name__)

DPI = 120
METHOD_LABELS = {"neurosql": "NeuroSQL", "vae": "VAE", "gan": "GAN", "ddpm": "Diffusion"}
METHOD_ORDER = tuple(METHOD_LABELS)
BACKBONE_LABELS = {"convnet": "ConvNet", "resnet": "ResNet", "transformer": "U-Net"}
METRIC_LABELS = {"fid_proxy": "FID (proxy)", "kid": "KID", "lpips": "LPIPS", "ssim": "SSIM"}
CELL_DIR = re.compile(r"^(?P<method>[a-z]+(?:-[a-z]+)?)_z(?P<latent>\d+)_s(?P<seed>\d+)$")


def method_label(method: str) -> str:
    """Return the printed name of a method id (``neurosql-greedy`` -> ``NeuroSQL-greedy``)."""
    base, _, solver = method.partition("-")
    label = METHOD_LABELS.get(base, base)
    return f"{label}-{solver}" if solver else label


def method_rank(method: str) -> tuple[int, str]:
    """Return a sort key that puts methods in table order, unknown ones last."""
    base = method.partition("-")[0]
    return (METHOD_ORDER.index(base) if base in METHOD_ORDER else len(METHOD_ORDER), method)


def save_figure(fig: plt.Figure, out_paths: Sequence[Path], panels: int) -> None:
    """Write ``fig`` atomically to each path (format from the suffix) and close it."""
    for path in map(Path, out_paths):
        fmt = path.suffix.lstrip(".").lower()
        if fmt == "png":
            metadata = {"Software": None, "Panels": str(panels)}
        elif fmt == "pdf":
            metadata = {"Creator": None, "Producer": None, "CreationDate": None}
        else:
            raise ValueError(f"unsupported figure format {path.suffix!r} for {path}; use .png or .pdf")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=DPI, metadata=metadata)
        log.info("wrote %s (%d panels)", path, panels)
    plt.close(fig)


def tile_images(images: np.ndarray, columns: int) -> np.ndarray:
    """Tile (N, C, H, W) uint8 images row by row into one (rows*H, columns*W[, 3]) mosaic."""
    n, channels, height, width = images.shape
    rows = max(1, -(-n // columns))
    canvas = np.zeros((rows * height, columns * width, channels), dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        canvas[r * height : (r + 1) * height, c * width : (c + 1) * width] = images[i].transpose(1, 2, 0)
    return canvas[..., 0] if channels == 1 else canvas


def _show(ax: plt.Axes, mosaic: np.ndarray, title: str) -> None:
    ax.imshow(mosaic, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_axis_off()


def read_samples(path: Path, n_images: int) -> dict:
    """Read the first ``n_images`` images and the cell keys of a samples file."""
    with np.load(path, allow_pickle=False) as samples:
        if len(samples["images"]) < n_images:
            raise ValueError(f"{path} has {len(samples['images'])} images; the figure needs {n_images}")
        return {
            "images": samples["images"][:n_images],
            "method": str(samples["method"]),
            "backbone": str(samples["backbone"]),
            "dataset": str(samples["dataset"]),
            "latent_dim": int(samples["latent_dim"]),
        }


def method_backbone_grid(sample_paths: Sequence[Path], out_paths: Sequence[Path], n_images: int = 16) -> int:
    """Draw one panel per (method, backbone): rows are methods, columns backbones (Figures 4, 5 and 7).

    Each panel tiles the first ``n_images`` sampled-z images of one cell in a
    square-ish block. Missing (method, backbone) pairs stay blank.
    """
    panels = [read_samples(Path(p), n_images) for p in sample_paths]
    if not panels:
        raise ValueError("method_backbone_grid needs at least one samples file")
    methods = sorted({p["method"] for p in panels}, key=method_rank)
    backbones = sorted({p["backbone"] for p in panels})
    columns = int(np.ceil(np.sqrt(n_images)))

    fig, axes = plt.subplots(len(methods), len(backbones), figsize=(2.4 * len(backbones), 2.5 * len(methods)), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for panel in panels:
        ax = axes[methods.index(panel["method"])][backbones.index(panel["backbone"])]
        latent = "" if panel["method"] == "ddpm" else f", d={panel['latent_dim']}"
        title = f"{method_label(panel['method'])}, {BACKBONE_LABELS.get(panel['backbone'], panel['backbone'])}{latent}"
        _show(ax, tile_images(panel["images"], columns), title)
    fig.suptitle(f"{panels[0]['dataset']}: samples per method and backbone", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out_paths, len(panels))
    return len(panels)


def class_grid(exemplar_paths: Sequence[Path], out_paths: Sequence[Path]) -> int:
    """Draw one panel per method with one row per class (Figure 6).

    Each exemplar file (written by the classifier stage) contains ``images``
    of shape (classes, per_class, C, H, W) and ``counts``, the number of
    exemplars found per class. A class with fewer exemplars than columns
    shows black tiles in the remaining places.
    """
    panels = []
    for path in exemplar_paths:
        with np.load(path, allow_pickle=False) as data:
            panels.append(
                {
                    "images": data["images"],
                    "counts": data["counts"],
                    "method": str(data["method"]),
                    "latent_dim": int(data["latent_dim"]),
                    "scheme": str(data["label_scheme"]),
                }
            )
    if not panels:
        raise ValueError("class_grid needs at least one exemplar file")
    panels.sort(key=lambda p: (method_rank(p["method"]), p["latent_dim"]))

    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        classes, per_class = panel["images"].shape[:2]
        flat = panel["images"].reshape(classes * per_class, *panel["images"].shape[2:])
        latent = "" if panel["method"] == "ddpm" else f", d={panel['latent_dim']}"
        _show(ax, tile_images(flat, per_class), f"{method_label(panel['method'])}{latent}\nlabels: {panel['scheme']}")

        # Class names down the left edge: one row of exemplars per class.
        height = panel["images"].shape[3]
        ax.set_axis_on()
        ax.set_xticks([])
        ax.set_yticks([(c + 0.5) * height for c in range(classes)], [str(c) for c in range(classes)], fontsize=7)
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        short = [c for c in range(classes) if panel["counts"][c] < per_class]
        if short:
            log.warning("%s: classes %s have fewer than %d exemplars", panel["method"], short, per_class)
    fig.tight_layout()
    save_figure(fig, out_paths, len(panels))
    return len(panels)


def latent_figure(code_paths: Sequence[Path], out_paths: Sequence[Path], max_points: int = 2000) -> int:
    """Scatter aligned codes coloured by class: rows are latent dimensions 2 and 3, columns methods (Figure 2).

    Codes files come from ``neurosql.latent.write_codes``. Only 2-D and 3-D
    codes are drawn, 3-D ones in a 3-D projection. Each panel shows the
    first ``max_points`` codes, so the figure is deterministic.
    """
    cells = []
    for path in code_paths:
        with np.load(path, allow_pickle=False) as data:
            latent = int(data["latent_dim"])
            if latent not in (2, 3):
                log.info("skipping %s: latent dimension %d is not drawn", path, latent)
                continue
            cells.append(
                {
                    "codes": data["codes"][:max_points],
                    "labels": data["labels"][:max_points],
                    "method": str(data["method"]),
                    "latent_dim": latent,
                }
            )
    if not cells:
        raise ValueError("latent_figure needs codes of latent dimension 2 or 3")
    latents = sorted({c["latent_dim"] for c in cells})
    methods = sorted({c["method"] for c in cells}, key=method_rank)
    classes = sorted({int(label) for c in cells for label in c["labels"]})
    colours = plt.get_cmap("tab10")

    fig = plt.figure(figsize=(3.6 * len(methods) + 0.9, 3.4 * len(latents)))
    for cell in cells:
        index = latents.index(cell["latent_dim"]) * len(methods) + methods.index(cell["method"]) + 1
        projection = "3d" if cell["latent_dim"] == 3 else None
        ax = fig.add_subplot(len(latents), len(methods), index, projection=projection)
        for label in classes:
            points = cell["codes"][cell["labels"] == label]
            coords = [points[:, j] for j in range(cell["latent_dim"])]
            ax.scatter(*coords, s=3, color=colours(label % 10), label=str(label), linewidths=0, rasterized=False)
        if projection:
            ax.view_init(elev=20, azim=-60)
        ax.set_title(f"{method_label(cell['method'])}, d={cell['latent_dim']}", fontsize=9)
        ax.tick_params(labelsize=6)
    handles = [plt.Line2D([], [], marker="o", linestyle="", color=colours(c % 10), label=str(c)) for c in classes]
    fig.legend(handles=handles, loc="center right", fontsize=7, title="class", title_fontsize=7)
    fig.tight_layout(rect=(0, 0, 1 - 0.9 / fig.get_figwidth(), 1))
    save_figure(fig, out_paths, len(cells))
    return len(cells)


def read_metric_files(paths: Sequence[Path]) -> pd.DataFrame:
    """Read metrics JSON files into one frame, one row per file."""
    frames = [pd.read_json(Path(p), typ="series") for p in paths]
    if not frames:
        raise ValueError("no metrics files given")
    return pd.DataFrame(frames).reset_index(drop=True)


def metric_plot(
    metric_paths: Sequence[Path], out_paths: Sequence[Path], metrics: Sequence[str] = ("fid_proxy", "kid", "lpips", "ssim")
) -> int:
    """Plot each metric against the latent dimension, one line per method and one panel per metric.

    Points are means over seeds with min-max bars. DDPM cells (no latent
    code) are drawn as a horizontal dashed line. Metrics that are missing in
    every file (LPIPS without the VGG16 weights) leave an empty panel with a
    note.
    """
    frame = read_metric_files(metric_paths)
    frame["latent_dim"] = frame["latent_dim"].astype(int)
    methods = sorted(frame["method"].unique(), key=method_rank)
    log_x = frame.loc[frame["method"] != "ddpm", "latent_dim"].max() / max(
        1, frame.loc[frame["method"] != "ddpm", "latent_dim"].min()
    ) >= 8

    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.0), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        values = pd.to_numeric(frame.get(metric), errors="coerce") if metric in frame else None
        ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=9)
        ax.set_xlabel("latent dimension", fontsize=8)
        ax.tick_params(labelsize=7)
        if values is None or values.isna().all():
            ax.text(0.5, 0.5, "not available", ha="center", va="center", transform=ax.transAxes, fontsize=8)
            continue
        data = frame.assign(value=values)
        for i, method in enumerate(methods):
            rows = data[data["method"] == method].dropna(subset=["value"])
            if rows.empty:
                continue
            colour = plt.get_cmap("tab10")(i)
            if method == "ddpm":
                ax.axhline(rows["value"].mean(), color=colour, linestyle="--", label=method_label(method))
                continue
            stats = rows.groupby("latent_dim")["value"].agg(["mean", "min", "max"]).sort_index()
            ax.errorbar(
                stats.index, stats["mean"], yerr=[stats["mean"] - stats["min"], stats["max"] - stats["mean"]],
                marker="o", markersize=3, capsize=2, color=colour, label=method_label(method),
            )
        if log_x:
            ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(frame.loc[frame["method"] != "ddpm", "latent_dim"].unique()))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axes[0][0].legend(fontsize=7)
    first = frame.iloc[0]
    fig.suptitle(f"{first['dataset']} / {BACKBONE_LABELS.get(first['backbone'], first['backbone'])}: metrics vs latent dimension", fontsize=10)
    fig.tight_layout()
    save_figure(fig, out_paths, len(metrics))
    return len(metrics)


def parse_cell_dir(name: str) -> tuple[str, int, int]:
    """Split a cell folder name ``<method>_z<latent>_s<seed>`` into (method, latent, seed)."""
    match = CELL_DIR.match(name)
    if not match:
        raise ValueError(f"folder name {name!r} is not of the form <method>_z<latent>_s<seed>")
    return match["method"], int(match["latent"]), int(match["seed"])


def training_curves(history_paths: Sequence[Path], out_paths: Sequence[Path], column: str = "val_loss") -> int:
    """Plot ``column`` of each run's history.csv against the epoch, one panel per latent dimension.

    The cell is read from the name of the folder that contains history.csv.
    DDPM runs (latent 0) get their own panel.
    """
    runs = []
    for path in map(Path, history_paths):
        method, latent, seed = parse_cell_dir(path.parent.name)
        history = pd.read_csv(path)
        if column not in history:
            raise ValueError(f"{path} has no column {column!r}; its columns are {list(history.columns)}")
        runs.append({"method": method, "latent_dim": latent, "seed": seed, "history": history})
    if not runs:
        raise ValueError("training_curves needs at least one history file")
    latents = sorted({r["latent_dim"] for r in runs}, key=lambda d: (d == 0, d))
    methods = sorted({r["method"] for r in runs}, key=method_rank)

    fig, axes = plt.subplots(1, len(latents), figsize=(3.4 * len(latents), 3.0), squeeze=False)
    for ax, latent in zip(axes[0], latents):
        for run in sorted((r for r in runs if r["latent_dim"] == latent), key=lambda r: (method_rank(r["method"]), r["seed"])):
            colour = plt.get_cmap("tab10")(methods.index(run["method"]) % 10)
            ax.plot(run["history"]["epoch"], run["history"][column], color=colour, label=f"{method_label(run['method'])} s{run['seed']}")
        ax.set_title("Diffusion" if latent == 0 else f"d={latent}", fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel(column, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6)
    fig.tight_layout()
    save_figure(fig, out_paths, len(latents))
    return len(latents)
