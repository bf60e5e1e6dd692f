# Data preparation: split a dataset and store it as compact uint8 arrays.

from pathlib import Path


def raw_inputs(wildcards):
    """The embedded sample and any user download found under the raw folder."""
    cfg = dataset_config(config, wildcards.dataset)
    files = [cfg["sample"]] if cfg.get("sample") else []
    raw = Path(cfg["raw_dir"])
    if raw.is_dir():
        files += sorted(str(p) for p in raw.iterdir() if p.is_file() and p.name != "README.md")
    return files


rule prepare:
    input:
        raw_inputs,
    output:
        data="data/processed/{dataset}.npz",
        manifest="data/processed/{dataset}.manifest.json",
    params:
        config=lambda w: as_json(dataset_config(config, w.dataset)),
    log:
        "results/logs/prepare/{dataset}.log",
    benchmark:
        "results/benchmarks/prepare/{dataset}.tsv"
    shell:
        "{NEUROSQL} --log {log} prepare --config {params.config:q}"
        " --out {output.data} --manifest {output.manifest} 2> /dev/null"
