# Data preparation: split a dataset and store it as compact uint8 arrays.
#
# MNIST-kind datasets list their IDX files as inputs. Image datasets (celeba,
# afhq, oasis) can hold hundreds of thousands of files, so their input is the
# raw folder itself, and a params entry with a hash of every file's relative
# path and size reruns the job when the download changes. A missing raw
# folder is no input at all, so the prepare command runs and says what to
# download and where to unpack it.

import hashlib
import os
from pathlib import Path


def raw_inputs(wildcards):
    """The embedded sample and the raw files (MNIST) or the raw folder (image datasets)."""
    cfg = dataset_config(config, wildcards.dataset)
    files = [cfg["sample"]] if cfg.get("sample") else []
    raw = Path(cfg["raw_dir"])
    if not raw.is_dir():
        return files
    if cfg["kind"] != "mnist":
        return files + [str(raw)]
    return files + sorted(str(p) for p in raw.iterdir() if p.is_file() and p.name != "README.md")


def raw_listing(wildcards):
    """Hash the relative path and size of every file under an image dataset's raw folder.

    Sizes stand in for content, which would take a full read of the
    download; modification times are left out because DVC does not keep them.
    """
    cfg = dataset_config(config, wildcards.dataset)
    raw = Path(cfg["raw_dir"])
    if cfg["kind"] == "mnist" or not raw.is_dir():
        return ""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(raw):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            digest.update(f"{path.relative_to(raw)}\t{path.stat().st_size}\n".encode())
    return digest.hexdigest()


rule prepare:
    input:
        raw_inputs,
    output:
        data="data/processed/{dataset}.npz",
        manifest="data/processed/{dataset}.manifest.json",
    params:
        config=lambda w: as_json(dataset_config(config, w.dataset)),
        raw_listing=raw_listing,
    log:
        "results/logs/prepare/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare/{dataset}.tsv"
    shell:
        "{NEUROSQL} --log {log} prepare --config {params.config:q}"
        " --out {output.data} --manifest {output.manifest} 2> /dev/null"
