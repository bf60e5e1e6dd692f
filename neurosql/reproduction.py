"""Run records (Table 3) and the Markdown reproduction report against the NeuroSQL paper's numbers.

``run_records`` gathers, per trained cell, the metrics of its sampled-z
samples, its parameter count and the resources measured while training
(peak RSS, peak CUDA memory, mean epoch time, time per assignment call).
``reproduction_report`` puts those records and the classifier results beside
the paper's values (data/paper/paper_results.csv: one row per paper cell
with table, dataset, backbone, latent_dim, seed, method, metric, value) and
writes a Markdown page plus a CSV of the compared cells.

Matching: a paper row matches every produced cell that agrees on each key
the paper row fills in (dataset, backbone, latent dimension, seed; backbone
``all`` counts as blank), and the produced value is the mean over the
matched cells (``*_std`` metrics: their population standard deviation). So
averaged paper tables (Tables 1, 7, 12, 14, 16, 18) are compared with the
mean over the produced grid. Paper method ``neurosql`` matches the grid's
own NeuroSQL cells; ``neurosql-exact`` and ``neurosql-greedy`` match
NeuroSQL cells by solver. Rows whose dataset the paper does not name are
compared only for timing metrics.
"""

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from neurosql.figures import BACKBONE_LABELS, method_label, method_rank, parse_cell_dir
from neurosql.io import atomic_path, atomic_write_text
from neurosql.models import read_model_info

log = logging.getLogger(__name__)

KEYS = ("dataset", "backbone", "latent_dim", "seed")
IMAGE_METRICS = ("fid_proxy", "lpips", "ssim")
LOWER_IS_BETTER = {"fid_proxy": True, "kid": True, "lpips": True, "ssim": False}
# Produced measurements that differ between runs: comparison.csv leaves them out,
# and the resources CSVs keep them in the columns below.
TIMING_METRICS = (
    "peak_vram_mb", "ram_used_mb", "mean_epoch_seconds", "assign_ms_per_call", "assign_speedup",
    "mean_epoch_gpu_mb", "mean_epoch_delta_ram_mb",
)
# Columns of the resources CSVs (records and the Table 3 layout) that hold
# such measurements; every other column is a function of the seeds.
MEASURED_COLUMNS = (
    "peak_rss_mb", "peak_cuda_mb", "mean_epoch_seconds", "assign_ms_per_call", "cost_ms_per_call",
    "assign_total_ms_per_call", "Peak VRAM (MB)", "Peak RAM (MB)", "Mean epoch time (s)", "Solve ms per call",
    "Cost matrix ms per call",
)
# Paper metric name -> column of the run records.
RECORD_COLUMNS = {
    "fid_proxy": "fid_proxy",
    "lpips": "lpips",
    "ssim": "ssim",
    "params_m": "params_m",
    "peak_vram_mb": "peak_cuda_mb",
    "ram_used_mb": "peak_rss_mb",
    "mean_epoch_seconds": "mean_epoch_seconds",
    "assign_ms_per_call": "assign_ms_per_call",
}
CLASSIFIER_COLUMNS = {
    "classifier_accuracy": "accuracy",
    "classifier_precision": "macro_precision",
    "classifier_recall": "macro_recall",
}


def _mean_or_nan(values: pd.Series) -> float:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.mean()) if len(values) else float("nan")


def run_record(metrics_path: Path, model_path: Path, history_path: Path) -> dict[str, Any]:
    """Return one cell's keys, sampled-z metrics, parameter count and training resources."""
    metrics = json.loads(Path(metrics_path).read_text())
    info = read_model_info(Path(model_path))
    config = info["config"]
    method, latent, seed = parse_cell_dir(Path(model_path).parent.name)
    if (config["method"], int(config["latent_dim"]), int(config["seed"])) != (method.partition("-")[0], latent, seed):
        raise ValueError(
            f"{model_path} contains cell {config['method']} z{config['latent_dim']} s{config['seed']}, "
            f"but its folder name says {method} z{latent} s{seed}; keep model files in their cell folders"
        )
    if (metrics["method"], int(metrics["latent_dim"]), int(metrics["seed"])) != (config["method"], latent, seed):
        raise ValueError(f"{metrics_path} belongs to another cell than {model_path}; pass files in the same cell order")
    history = pd.read_csv(history_path)
    resources = info.get("resources") or {}

    def per_call_ms(key: str) -> float:
        # Per-call wall times are stored in the model file, because history.csv contains no timings.
        value = resources.get(key)
        return float("nan") if value is None else 1000.0 * value

    mean_assign = resources.get("mean_assign_seconds")
    return {
        "dataset": config["dataset"],
        "backbone": config["backbone"],
        "method": method,
        "solver": config["method_settings"].get("solver") or "",
        "latent_dim": latent,
        "seed": seed,
        "mode": metrics["mode"],
        "fid_proxy": float(metrics["fid_proxy"]),
        "kid": float(metrics["kid"]),
        "lpips": float("nan") if metrics.get("lpips") is None else float(metrics["lpips"]),
        "ssim": float(metrics["ssim"]),
        "params_m": info["n_parameters"]["total"] / 1e6,
        "epochs_run": int(info.get("epochs_run", len(history))),
        "peak_rss_mb": resources.get("peak_rss_mb"),
        "peak_cuda_mb": resources.get("peak_cuda_mb"),
        "mean_epoch_seconds": resources.get("mean_epoch_seconds"),
        "n_assign_calls": resources.get("n_assign_calls"),
        # Solve only (the LSAP), the cost matrix, and both: one call each.
        "assign_ms_per_call": per_call_ms("mean_solve_seconds"),
        "cost_ms_per_call": per_call_ms("mean_cost_seconds"),
        "assign_total_ms_per_call": float("nan") if mean_assign is None else 1000.0 * mean_assign,
    }


def run_records(metrics_paths: Sequence[Path], model_paths: Sequence[Path], history_paths: Sequence[Path]) -> pd.DataFrame:
    """Return the run records of cells given as three lists in the same cell order, in table order."""
    if not len(metrics_paths) == len(model_paths) == len(history_paths):
        raise ValueError(
            f"{len(metrics_paths)} metrics, {len(model_paths)} model and {len(history_paths)} history files; "
            "pass one of each per cell"
        )
    frame = pd.DataFrame([run_record(*paths) for paths in zip(metrics_paths, model_paths, history_paths)])
    frame["rank"] = frame["method"].map(method_rank)
    frame = frame.sort_values(["dataset", "backbone", "latent_dim", "seed", "rank"], kind="stable")
    return frame.drop(columns="rank").reset_index(drop=True)


def resources_table(records: pd.DataFrame) -> pd.DataFrame:
    """Lay out run records as Table 3: assignment solver, resources and metrics per cell."""
    return pd.DataFrame(
        {
            "Latent dimension": records["latent_dim"],
            "Seed": records["seed"],
            "Assign. method": records["solver"].where(records["method"].str.startswith("neurosql"), ""),
            "Method": records["method"].map(lambda m: method_label(m.partition("-")[0])),
            "Peak VRAM (MB)": records["peak_cuda_mb"],
            "Peak RAM (MB)": records["peak_rss_mb"],
            "Mean epoch time (s)": records["mean_epoch_seconds"],
            "Assignment calls": records["n_assign_calls"],
            "Solve ms per call": records["assign_ms_per_call"],
            "Cost matrix ms per call": records["cost_ms_per_call"],
            "FID (proxy)": records["fid_proxy"],
            "LPIPS": records["lpips"],
            "SSIM": records["ssim"],
            "KID": records["kid"],
        }
    )


def write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write a CSV with fixed float formatting, atomically, so equal inputs give equal bytes."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6f")


def _tidy_records(records: pd.DataFrame, classifier: pd.DataFrame | None) -> pd.DataFrame:
    """Melt run records (and classifier results) into rows of keys, method, solver, metric and value."""
    parts = []
    for metric, column in RECORD_COLUMNS.items():
        part = records[[*KEYS, "method", "solver"]].copy()
        part["metric"] = metric
        part["value"] = pd.to_numeric(records[column], errors="coerce")
        parts.append(part)
    if classifier is not None and len(classifier):
        # The caller passes the rows of one label scheme (the first of report.classifier.label_schemes).
        for metric, column in CLASSIFIER_COLUMNS.items():
            part = classifier[[*KEYS, "method"]].copy()
            part["solver"] = ""
            part["metric"] = metric
            part["value"] = pd.to_numeric(classifier[column], errors="coerce")
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _matching(tidy: pd.DataFrame, paper_row: pd.Series) -> pd.DataFrame:
    metric = paper_row["metric"]
    base_metric = metric[: -len("_std")] if metric.endswith("_std") else metric
    rows = tidy[tidy["metric"] == base_metric]
    for key in KEYS:
        value = paper_row[key]
        if pd.isna(value) or value == "" or value == "all":
            continue
        if key in ("latent_dim", "seed"):
            # Numeric keys compare as numbers: a CSV column with blanks reads as float (2.0).
            rows = rows[pd.to_numeric(rows[key], errors="coerce") == float(value)]
        else:
            rows = rows[rows[key].astype(str) == str(value)]
    method = paper_row["method"]
    if method.startswith("neurosql-"):
        rows = rows[rows["method"].str.startswith("neurosql") & (rows["solver"] == method.partition("-")[2])]
    else:
        rows = rows[rows["method"] == method]
    return rows.dropna(subset=["value"])


def compare(paper: pd.DataFrame, records: pd.DataFrame, classifier: pd.DataFrame | None, rel_tolerance: float) -> pd.DataFrame:
    """Return one row per paper cell that has produced counterparts: paper value, produced value, difference."""
    tidy = _tidy_records(records, classifier)
    rows = []
    for _, paper_row in paper.iterrows():
        metric = paper_row["metric"]
        if (pd.isna(paper_row["dataset"]) or paper_row["dataset"] == "") and metric not in TIMING_METRICS:
            continue
        matched = _matching(tidy, paper_row)
        if matched.empty:
            continue
        values = matched["value"].astype(float)
        ours = float(values.std(ddof=0)) if metric.endswith("_std") else float(values.mean())
        paper_value = float(paper_row["value"])
        difference = ours - paper_value
        relative = difference / abs(paper_value) if paper_value != 0 else float("nan")
        rows.append(
            {
                **{key: paper_row[key] for key in ("table", *KEYS, "method", "metric")},
                "paper": paper_value,
                "ours": ours,
                "difference": difference,
                "relative_difference": relative,
                "within_tolerance": bool(abs(relative) <= rel_tolerance) if np.isfinite(relative) else False,
                "n_cells": int(len(values)),
            }
        )
    return pd.DataFrame(rows)


def speedup_rows(records: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Compare the exact-to-greedy ratio of solve time per call with the NeuroSQL paper's 6.54 (its Section 3.5)."""
    neurosql = records[records["method"].str.startswith("neurosql")]
    exact = _mean_or_nan(neurosql.loc[neurosql["solver"] == "exact", "assign_ms_per_call"])
    greedy = _mean_or_nan(neurosql.loc[neurosql["solver"] == "greedy", "assign_ms_per_call"])
    paper_rows = paper[paper["metric"] == "assign_speedup"]
    if not (np.isfinite(exact) and np.isfinite(greedy) and greedy > 0) or paper_rows.empty:
        return pd.DataFrame()
    row = paper_rows.iloc[0]
    ours = exact / greedy
    return pd.DataFrame(
        [
            {
                **{key: row[key] for key in ("table", *KEYS, "method", "metric")},
                "paper": float(row["value"]),
                "ours": ours,
                "difference": ours - float(row["value"]),
                "relative_difference": (ours - float(row["value"])) / float(row["value"]),
                "within_tolerance": None,
                "n_cells": int((neurosql["solver"].isin(["exact", "greedy"])).sum()),
            }
        ]
    )


def best_methods(comparison: pd.DataFrame) -> pd.DataFrame:
    """Return, per paper cell group and image metric, the best method by the paper's values and by the produced ones.

    Only groups in which the paper and the produced results both have at
    least two of NeuroSQL, VAE, GAN and DDPM are listed.
    """
    plain = comparison[comparison["metric"].isin(LOWER_IS_BETTER) & comparison["method"].isin(["neurosql", "vae", "gan", "ddpm"])]
    rows = []
    group_keys = ["table", *KEYS, "metric"]
    for keys, group in plain.fillna({"latent_dim": "", "seed": ""}).groupby(group_keys, sort=False, dropna=False):
        if len(group) < 2:
            continue
        pick = "idxmin" if LOWER_IS_BETTER[keys[-1]] else "idxmax"
        paper_best = group.loc[getattr(group["paper"], pick)(), "method"]
        ours_best = group.loc[getattr(group["ours"], pick)(), "method"]
        rows.append({**dict(zip(group_keys, keys)), "paper_best": paper_best, "ours_best": ours_best, "agree": paper_best == ours_best})
    return pd.DataFrame(rows)


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return f"{value:.4g}"
    return str(value)


def markdown_table(frame: pd.DataFrame) -> str:
    """Render a frame as a GitHub Markdown table, numbers to 4 significant digits."""
    if frame.empty:
        return "(no rows)\n"
    header = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    body = ["| " + " | ".join(_number(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"


def _cell_label(row: pd.Series) -> str:
    parts = [str(row["dataset"]) if isinstance(row["dataset"], str) and row["dataset"] else "dataset not named"]
    backbone = row["backbone"]
    if isinstance(backbone, str) and backbone and backbone != "all":
        parts.append(BACKBONE_LABELS.get(backbone, backbone))
    return ", ".join(parts)


def _relative(value: Any) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:+.0%}"


def _verdict(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "–"
    return "yes" if value else "no"


def _comparison_section(table: str, rows: pd.DataFrame) -> str:
    shown = pd.DataFrame(
        {
            "Latent": rows["latent_dim"].map(lambda v: "all" if pd.isna(v) or v == "" else int(float(v))),
            "Seed": rows["seed"].map(lambda v: "any" if pd.isna(v) or v == "" else int(float(v))),
            "Method": rows["method"].map(method_label),
            "Metric": rows["metric"],
            "Paper": rows["paper"],
            "Ours": rows["ours"],
            "Ours − paper": rows["difference"],
            "Relative": rows["relative_difference"].map(_relative),
            "Cells": rows["n_cells"],
            "Close": rows["within_tolerance"].map(_verdict),
        }
    )
    return f"### {table} ({_cell_label(rows.iloc[0])})\n\n" + markdown_table(shown) + "\n"


def reproduction_report(
    paper: pd.DataFrame,
    records: pd.DataFrame,
    classifier: pd.DataFrame | None,
    extra_sections: dict[str, pd.DataFrame],
    rel_tolerance: float,
    out_md: Path,
    out_csv: Path | None,
) -> pd.DataFrame:
    """Write the Markdown reproduction page and, optionally, the CSV of compared cells; return the comparison.

    ``extra_sections`` are produced tables with no paper counterpart
    (paired-z metrics, latent-space numbers, the classifier by label
    scheme), printed after the comparison under their keys. The CSV leaves
    out run-time measurements so that reruns give identical bytes.
    """
    comparison = pd.concat([compare(paper, records, classifier, rel_tolerance), speedup_rows(records, paper)], ignore_index=True)
    tables_in_order = list(dict.fromkeys(paper["table"]))
    compared = [t for t in tables_in_order if len(comparison) and (comparison["table"] == t).any()]
    missing = [t for t in tables_in_order if t not in compared]
    best = best_methods(comparison) if len(comparison) else pd.DataFrame()

    present = ", ".join(f"{d} ({', '.join(BACKBONE_LABELS.get(b, b) for b in sorted(g['backbone'].unique()))})" for d, g in records.groupby("dataset"))
    solvers = ", ".join(sorted(records.loc[records["method"] == "neurosql", "solver"].unique())) or "–"
    lines = [
        "# Reproduction report",
        "",
        "Produced values beside the NeuroSQL paper's, cell by cell. Paper values come from",
        "`data/paper/paper_results.csv`; produced values from this run's metrics, model and history files.",
        "",
        f"- Datasets and backbones present: {present}.",
        f"- Solver of the grid's NeuroSQL cells: {solvers} (the paper's main tables use the exact Hungarian solver).",
        f"- A produced value is *close* when it is within {rel_tolerance:.0%} of the paper's value.",
        "- Where the paper averages (Tables 1, 7, 12, 14, 16, 18, or a blank seed), the produced value is the mean",
        "  over the matching produced cells (column Cells). Averages run over this grid's latent dimensions and seeds,",
        "  which can differ from the paper's.",
        "- Resource numbers (peak memory, times) are measurements of this machine and run; they differ between runs.",
        "",
        "## At a glance",
        "",
    ]
    glance = []
    for table in compared:
        rows = comparison[comparison["table"] == table]
        verdicts = rows["within_tolerance"].dropna()
        agree = best[best["table"] == table]["agree"] if len(best) else pd.Series(dtype=bool)
        glance.append(
            {
                "Paper table": table,
                "Cells": _cell_label(rows.iloc[0]),
                "Values compared": len(rows),
                "Close": f"{int(verdicts.sum())}/{len(verdicts)}" if len(verdicts) else "–",
                "Best method agrees": f"{int(agree.sum())}/{len(agree)}" if len(agree) else "–",
            }
        )
    lines.append(markdown_table(pd.DataFrame(glance)))
    if missing:
        lines.append(f"Paper tables with no produced counterpart in this run: {', '.join(missing)}.")
        lines.append("")

    lines += ["## Cell by cell", ""]
    for table in compared:
        lines.append(_comparison_section(table, comparison[comparison["table"] == table]))
    if len(best):
        lines += ["## Best method per cell", "", "Lower is better for FID (proxy) and LPIPS, higher for SSIM.", ""]
        shown = best.assign(
            latent_dim=best["latent_dim"].map(lambda v: "all" if v == "" or pd.isna(v) else int(float(v))),
            paper_best=best["paper_best"].map(method_label),
            ours_best=best["ours_best"].map(method_label),
        ).drop(columns=["seed"])
        lines.append(markdown_table(shown))

    lines += ["## Beyond the paper's tables", ""]
    for title, frame in extra_sections.items():
        lines += [f"### {title}", "", markdown_table(frame)]
    atomic_write_text(out_md, "\n".join(lines).rstrip() + "\n")
    log.info("wrote %s: %d paper values compared", out_md, len(comparison))

    if out_csv is not None:
        stable = comparison[~comparison["metric"].isin(TIMING_METRICS)] if len(comparison) else comparison
        write_table(stable, out_csv)
    return comparison
