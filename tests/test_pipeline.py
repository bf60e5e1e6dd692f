"""End-to-end runs of the workflow on configs/tiny.yaml, through both front doors."""

import copy
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.conftest import ROOT, _merge

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent


def _copy_checkout(dest: Path, params: dict | None = None) -> Path:
    """Copy the tracked files of this checkout into ``dest`` as a fresh git repo."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in files.decode().split("\0"):
        if name and (ROOT / name).is_file():
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target)
    if params is not None:
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "copy"]):
        subprocess.run(command, cwd=dest, check=True, env=_env())
    return dest


def _env() -> dict:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = str(ROOT)
    env.setdefault("GIT_AUTHOR_NAME", "test")
    env.setdefault("GIT_AUTHOR_EMAIL", "test@localhost")
    env.setdefault("GIT_COMMITTER_NAME", "test")
    env.setdefault("GIT_COMMITTER_EMAIL", "test@localhost")
    return env


def _run(command: list[str], cwd: Path) -> str:
    result = subprocess.run(command, cwd=cwd, env=_env(), capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout + result.stderr


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
    work = _copy_checkout(tmp_path / "repo")
    start = time.perf_counter()
    _run([str(BIN / "snakemake"), "--cores", "1", "--configfile", "configs/tiny.yaml"], work)
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
    dvc_repo = _copy_checkout(tmp_path / "dvc", params)
    smk_repo = _copy_checkout(tmp_path / "smk", copy.deepcopy(params))

    _run([str(BIN / "dvc"), "repro", "-q"], dvc_repo)
    _run([str(BIN / "snakemake"), "--cores", "1", "-q"], smk_repo)
    assert _result_files(dvc_repo) == _result_files(smk_repo)
    assert "results/tables/mnist_convnet.csv" in _result_files(dvc_repo)

    # A second repro has nothing to do.
    status = _run([str(BIN / "dvc"), "status", "-q"], dvc_repo)
    assert status.strip() == ""

    # Changing only the NeuroSQL momentum touches only NeuroSQL cells.
    params["neurosql"]["momentum"] = 0.5
    (dvc_repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = _run([str(BIN / "dvc"), "status"], dvc_repo)
    stages = set(re.findall(r"^(\S+):\s*$", changed, flags=re.M))
    assert stages == {"train_mnist@convnet-neurosql-2-11"}, changed

    planned = _planned_train_cells(_run([str(BIN / "snakemake"), "-n", "--cores", "1"], dvc_repo))
    assert planned == {"dataset=mnist, backbone=convnet, method=neurosql, latent=2, seed=11"}, planned
