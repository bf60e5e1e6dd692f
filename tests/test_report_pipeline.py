"""The report target on configs/tiny-report.yaml: it builds everything, and a rerun from clean results is identical.

Peak memory and wall times are measurements, not functions of the seeds:
they sit in the measured columns of results/resources/*.csv and in the
report's resource rows, and the comparison leaves exactly those out.
"""

import io
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from neurosql.reproduction import MEASURED_COLUMNS, TIMING_METRICS
from tests.workflow import ROOT, copy_checkout, snakemake

pytestmark = pytest.mark.slow

# Two jobs at a time: the overlay sets one torch thread per job, so results do not depend on it.
REPORT = ("--cores", "2", "report", "--configfile", "configs/tiny-report.yaml")


def _without_measurements(name: str, content: bytes) -> bytes:
    """Return ``content`` without its measured values: measured CSV columns, or report rows of resource metrics."""
    if name.startswith("results/resources/"):
        frame = pd.read_csv(io.BytesIO(content))
        return frame.drop(columns=[c for c in MEASURED_COLUMNS if c in frame.columns]).to_csv(index=False).encode()
    if not name.endswith("report.md"):
        return content
    paper = pd.read_csv(ROOT / "data/paper/paper_results.csv")
    measured_tables = set(paper.loc[paper["metric"].isin(TIMING_METRICS), "table"])
    stable_lines, in_resources = [], False
    for line in content.decode().splitlines():
        if line.startswith("#"):
            in_resources = line.startswith("### Resources per run")
        # At-a-glance rows of such tables count close values, which include the measured ones.
        at_a_glance = any(line.startswith(f"| {table} |") for table in measured_tables)
        if not (in_resources or at_a_glance or any(metric in line for metric in TIMING_METRICS)):
            stable_lines.append(line)
    return "\n".join(stable_lines).encode()


def _report_files(work: Path) -> tuple[dict[str, bytes], dict[str, np.ndarray]]:
    """Return the bytes of every CSV and Markdown file and the pixels of every PNG under results/."""
    texts, pixels = {}, {}
    for path in sorted((work / "results").rglob("*")):
        name = str(path.relative_to(work))
        if path.suffix in (".csv", ".md"):
            texts[name] = path.read_bytes()
        elif path.suffix == ".png":
            with Image.open(path) as image:
                pixels[name] = np.asarray(image.convert("RGBA"))
    return texts, pixels


def test_report_twice_from_clean_results_is_identical(tmp_path):
    work = copy_checkout(tmp_path / "repo")
    runs, seconds = [], []
    for _ in range(2):
        shutil.rmtree(work / "results", ignore_errors=True)
        shutil.rmtree(work / ".snakemake", ignore_errors=True)
        start = time.perf_counter()
        snakemake(work, *REPORT)
        seconds.append(time.perf_counter() - start)
        runs.append(_report_files(work))

    (texts, pixels), (texts_again, pixels_again) = runs
    assert sorted(texts) == sorted(texts_again)
    assert sorted(pixels) == sorted(pixels_again)
    differing = [name for name in texts if texts[name] != texts_again[name]]
    assert set(differing) <= {"results/reproduction/report.md", *(n for n in texts if n.startswith("results/resources/"))}
    unstable = [n for n in differing if _without_measurements(n, texts[n]) != _without_measurements(n, texts_again[n])]
    assert unstable == [], f"files differ between runs beyond their measured values: {unstable}"
    changed = [name for name in pixels if not np.array_equal(pixels[name], pixels_again[name])]
    assert changed == [], f"PNG pixels differ between runs: {changed}"

    # Every kind of output is there, so the comparison covered them.
    for name in (
        "results/tables/mnist_convnet.csv",
        "results/tables/mnist_convnet_classifier.csv",
        "results/tables/mnist_convnet_latent.csv",
        "results/tables/mnist_convnet_paired_z.csv",
        "results/resources/mnist_convnet.csv",
        "results/reproduction/comparison.csv",
        "results/reproduction/report.md",
    ):
        assert name in texts, f"{name} missing"
    for name in ("samples", "backbones", "classes", "latent", "metrics_vs_latent", "training"):
        figure = "results/figures/mnist_backbones.png" if name == "backbones" else f"results/figures/mnist_convnet_{name}.png"
        assert figure in pixels, f"{figure} missing"

    # Both label schemes give a row per method, after the teacher's reference row.
    classifier = pd.read_csv(work / "results/tables/mnist_convnet_classifier.csv")
    assert classifier["label_scheme"].iloc[0] == "true labels"
    for scheme in ("latent_knn", "per_class_generators"):
        rows = classifier[classifier["label_scheme"] == scheme]
        assert sorted(rows["method"]) == ["gan", "neurosql", "vae"], classifier
        assert rows["accuracy"].between(0, 1).all()
    assert max(seconds) < 900, f"report runs took {seconds} s"
