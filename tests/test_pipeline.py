"""End-to-end runs of the workflow on configs/tiny.yaml, through both front doors."""

import copy
import re
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, _merge
from tests.workflow import BIN, copy_checkout, run_tool

pytestmark = pytest.mark.slow

def _result_files(root: Path) -> set[str]:
    kinds = ("checkpoints", "samples", "metrics", "features", "tables", "figures")
    return {
        str(p.relative_to(root))
        for kind in kinds
        for p in (root / "results" / kind).rglob("*")
        if p.is_file() and not p.name.endswith(".resume.pt") and p.name != "resume.pt"
    }


def _tiny_params() -> dict:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    _merge(params, yaml.safe_load((ROOT / "configs" / "tiny.yaml").read_text()))
    return params


def _planned_train_cells(output: str) -> set[str]:
    """Parse the wildcards of the train jobs in a `snakemake -n` listing."""
    cells = set()
    for block in re.split(r"\n(?=rule |localrule )", output):
        if block.startswith(("rule train:", "localrule train:")):
            match = re.search(r"wildcards: (.*)", block)
            cells.add(match.group(1).strip())
    return cells


def test_snakemake_tiny_run_writes_table_and_figure(tmp_path):
    work = copy_checkout(tmp_path / "repo")
    start = time.perf_counter()
    run_tool([str(BIN / "snakemake"), "--cores", "1", "--configfile", "configs/tiny.yaml"], work)
    elapsed = time.perf_counter() - start

    table = pd.read_csv(work / "results/tables/mnist_convnet.csv")
    assert list(table["Method"]) == ["NeuroSQL", "VAE", "GAN"]
    assert list(table.columns[:6]) == ["Latent dimension", "Seed", "Method", "FID (proxy)", "LPIPS", "SSIM"]
    assert table["FID (proxy)"].notna().all()
    assert (table["FID (proxy)"] > 0).all()
    assert table["SSIM"].between(-1, 1).all()
    assert (work / "results/figures/mnist_convnet_samples.png").stat().st_size > 1000
    assert (work / "results/logs/train/mnist_convnet/neurosql_z2_s11.log").read_text().count("epoch ") >= 4
    assert elapsed < 180, f"tiny pipeline took {elapsed:.0f} s"


def test_dvc_repro_matches_snakemake_and_tracks_params(tmp_path):
    params = _tiny_params()
    dvc_repo = copy_checkout(tmp_path / "dvc", params, git=True)
    smk_repo = copy_checkout(tmp_path / "smk", copy.deepcopy(params), git=True)

    run_tool([str(BIN / "dvc"), "repro", "-q"], dvc_repo)
    run_tool([str(BIN / "snakemake"), "--cores", "1", "-q"], smk_repo)
    # dvc repro also runs the report stages, which bare snakemake leaves out.
    built = _result_files(dvc_repo)
    assert _result_files(smk_repo) <= built
    for name in (
        "results/tables/mnist_convnet.csv",
        "results/tables/mnist_convnet_classifier.csv",
        "results/figures/mnist_convnet_latent.png",
        "results/figures/mnist_backbones.png",
    ):
        assert name in built, f"{name} missing after dvc repro"
    assert (dvc_repo / "results/reproduction/report.md").stat().st_size > 0

    # A second repro has nothing to do.
    status = run_tool([str(BIN / "dvc"), "status", "-q"], dvc_repo)
    assert status.strip() == ""

    # Changing only the NeuroSQL momentum touches only NeuroSQL cells.
    params["neurosql"]["momentum"] = 0.5
    (dvc_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = run_tool([str(BIN / "dvc"), "status"], dvc_repo)
    stages = set(re.findall(r"^(\S+):\s*$", changed, flags=re.M))
    assert stages == {"train_mnist@convnet-neurosql-2-11"}, changed

    planned = _planned_train_cells(run_tool([str(BIN / "snakemake"), "-n", "--cores", "1"], dvc_repo))
    assert planned == {"dataset=mnist, backbone=convnet, method=neurosql, latent=2, seed=11"}, planned
