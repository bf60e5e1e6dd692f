"""Snakemake runs on fixture trees: each dataset's prepare target, and the tiny OASIS pipeline on real MRI."""

import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from neurosql.data.prepare import load_prepared, to_float
from tests.fixtures import write_afhq, write_celeba, write_mnist, write_oasis, write_oasis_mri
from tests.workflow import copy_checkout, snakemake

pytestmark = pytest.mark.slow

SUBJECT = re.compile(r"OAS1_\d{4}")


def _subjects(paths: list[str]) -> set[str]:
    return {SUBJECT.search(path).group(0) for path in paths}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """Run the prepare target of all four kinds on fixture trees; return the work folder."""
    root = tmp_path_factory.mktemp("prepare")
    work = copy_checkout(root / "repo")
    raw = root / "raw"
    write_mnist(raw / "mnist", n_train=200, n_test=80)
    write_celeba(raw / "celeba", n_train=24, n_val=8, n_test=8)
    write_afhq(raw / "afhq", n_train=8, n_val=3)
    write_oasis(raw / "oasis", subjects_per_class=(8, 6, 4, 2), slices=3)
    overlay = {
        "datasets": {
            "mnist": {"raw_dir": str(raw / "mnist"), "n_train_max": 100, "n_val": 20, "n_test": None},
            "celeba": {"raw_dir": str(raw / "celeba"), "n_train_max": 16, "n_val": 6, "n_test": None},
            "afhq": {"raw_dir": str(raw / "afhq"), "resolution": 32, "n_train_max": 12, "n_val": 6, "n_test": None},
            "oasis": {"raw_dir": str(raw / "oasis"), "resolution": 32, "n_train_max": 40, "n_val": 6, "n_test": None},
        }
    }
    (root / "overlay.yaml").write_text(yaml.safe_dump(overlay))
    targets = [f"data/processed/{name}.npz" for name in overlay["datasets"]]
    snakemake(work, *targets, "--configfile", str(root / "overlay.yaml"))
    return work, root


def _load(work: Path, name: str) -> tuple[dict, dict]:
    manifest = json.loads((work / f"data/processed/{name}.manifest.json").read_text())
    return load_prepared(work / f"data/processed/{name}.npz"), manifest


@pytest.mark.parametrize(
    "name, sizes, shape",
    [
        ("mnist", {"train": 100, "val": 20, "test": 80}, (1, 28, 28)),
        ("celeba", {"train": 16, "val": 6, "test": 8}, (3, 32, 32)),
        ("afhq", {"train": 12, "val": 6, "test": 9}, (3, 32, 32)),
        ("oasis", {"train": 40, "val": 6, "test": 6}, (1, 32, 32)),
    ],
)
def test_prepare_target_sizes(prepared, name, sizes, shape):
    work, _ = prepared
    arrays, manifest = _load(work, name)
    assert manifest["sizes"] == sizes
    for split, size in sizes.items():
        images = arrays[f"{split}_images"]
        assert images.shape == (size, *shape), split
        assert images.dtype == np.uint8, split
        scaled = to_float(images)
        assert float(scaled.min()) >= 0.0, split
        assert float(scaled.max()) <= 1.0, split
        assert float(scaled.std()) > 0.01, split
    assert manifest["npz_sha256"] == hashlib.sha256((work / f"data/processed/{name}.npz").read_bytes()).hexdigest()


def test_prepare_target_oasis_subjects(prepared):
    work, _ = prepared
    _, manifest = _load(work, "oasis")
    items = manifest["items"]
    by_split = {split: _subjects(items[split]) for split in ("train", "val", "test")}

    # 20 subjects: 16/2/2, and every slice of a subject sits in its subject's split.
    assert {split: len(s) for split, s in by_split.items()} == {"train": 16, "val": 2, "test": 2}
    assert not by_split["train"] & by_split["val"]
    assert not by_split["train"] & by_split["test"]
    assert not by_split["val"] & by_split["test"]
    assert _subjects(items["unused"]) <= by_split["train"]
    assert manifest["shared_subjects"] == []


def test_prepare_target_same_seed_same_hash(prepared):
    work, root = prepared
    first = (work / "data/processed/oasis.manifest.json").read_bytes()
    snakemake(work, "data/processed/oasis.npz", "--forcerun", "prepare", "--configfile", str(root / "overlay.yaml"))
    assert (work / "data/processed/oasis.manifest.json").read_bytes() == first


def test_tiny_oasis_pipeline_on_mri(tmp_path):
    work = copy_checkout(tmp_path / "repo")
    write_oasis_mri(tmp_path / "raw" / "oasis")
    (tmp_path / "overlay.yaml").write_text(yaml.safe_dump({"datasets": {"oasis": {"raw_dir": str(tmp_path / "raw" / "oasis")}}}))

    start = time.perf_counter()
    overlays = ["configs/tiny-oasis.yaml", str(tmp_path / "overlay.yaml")]
    snakemake(work, "results/tables/oasis_convnet.csv", "--configfile", *overlays)
    elapsed = time.perf_counter() - start

    table = pd.read_csv(work / "results/tables/oasis_convnet.csv")
    assert list(table["Method"]) == ["NeuroSQL", "VAE", "GAN"]
    assert table["FID (proxy)"].notna().all()
    assert table["SSIM"].between(-1, 1).all()
    arrays, manifest = _load(work, "oasis")
    assert arrays["train_images"].shape == (32, 1, 64, 64)
    assert manifest["subject_counts"] == {"train": 16, "val": 2, "test": 2}
    assert manifest["shared_subjects"] == []
    # Measured at 146 s on a 2-core CPU shared with other jobs (load average about 8).
    assert elapsed < 240, f"tiny OASIS pipeline took {elapsed:.0f} s"
