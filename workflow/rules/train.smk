# Training: one job per dataset x backbone x method x latent dimension x seed.
# DDPM cells use latent 0 (no latent code); solver-ablation cells are named
# neurosql-<solver>.


rule train:
    input:
        data="data/processed/{dataset}.npz",
    output:
        model="results/checkpoints/{dataset}_{backbone}/{method}_z{latent}_s{seed}/model.pt",
        history="results/checkpoints/{dataset}_{backbone}/{method}_z{latent}_s{seed}/history.csv",
    params:
        config=lambda w: as_json(wildcard_cell(w)),
        state="results/checkpoints/{dataset}_{backbone}/{method}_z{latent}_s{seed}/resume.pt",
    log:
        "results/logs/train/{dataset}_{backbone}/{method}_z{latent}_s{seed}.log",
    benchmark:
        "results/benchmarks/train/{dataset}_{backbone}/{method}_z{latent}_s{seed}.tsv"
    shell:
        "{NEUROSQL} --log {log} train --config {params.config:q} --data {input.data}"
        " --model {output.model} --history {output.history} --state {params.state} 2> /dev/null"


rule sample:
    input:
        model="results/checkpoints/{dataset}_{backbone}/{method}_z{latent}_s{seed}/model.pt",
        data="data/processed/{dataset}.npz",
    output:
        "results/samples/{dataset}_{backbone}/{method}_z{latent}_s{seed}/{mode}.npz",
    params:
        n=lambda w: config["evaluate"]["fid_samples"],
        seed=lambda w: config["sample"]["seed"],
    log:
        "results/logs/sample/{dataset}_{backbone}/{method}_z{latent}_s{seed}_{mode}.log",
    benchmark:
        "results/benchmarks/sample/{dataset}_{backbone}/{method}_z{latent}_s{seed}_{mode}.tsv"
    shell:
        "{NEUROSQL} --log {log} sample --model {input.model} --data {input.data}"
        " --n {params.n} --seed {params.seed} --mode {wildcards.mode} --out {output} 2> /dev/null"
