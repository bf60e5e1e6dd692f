# Metrics: cached real-image features once per dataset, then one job per samples file.


rule real_features:
    input:
        data="data/processed/{dataset}.npz",
    output:
        "results/features/{dataset}_test_n{n}.npz",
    params:
        device=config["evaluate"]["device"],
    log:
        "results/logs/real_features/{dataset}_n{n}.log",
    benchmark:
        "results/benchmarks/real_features/{dataset}_n{n}.tsv"
    shell:
        "{NEUROSQL} --log {log} real-features --data {input.data} --n {wildcards.n}"
        " --device {params.device} --out {output} 2> /dev/null"


def evaluate_inputs(wildcards):
    inputs = {
        "samples": f"results/samples/{wildcards.dataset}_{wildcards.backbone}/"
        f"{wildcards.method}_z{wildcards.latent}_s{wildcards.seed}/{wildcards.mode}.npz",
        "data": f"data/processed/{wildcards.dataset}.npz",
    }
    if wildcards.mode == "sampled_z":
        inputs["features"] = f"results/features/{wildcards.dataset}_test_n{config['evaluate']['fid_samples']}.npz"
    return inputs


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        "results/metrics/{dataset}_{backbone}/{method}_z{latent}_s{seed}/{mode}.json",
    params:
        features=lambda w, input: f"--real-features {input.features}" if "features" in input.keys() else "",
        n_pairs=config["evaluate"]["n_pairs"],
        pair_seed=config["evaluate"]["pair_seed"],
        device=config["evaluate"]["device"],
    log:
        "results/logs/evaluate/{dataset}_{backbone}/{method}_z{latent}_s{seed}_{mode}.log",
    benchmark:
        "results/benchmarks/evaluate/{dataset}_{backbone}/{method}_z{latent}_s{seed}_{mode}.tsv"
    shell:
        "{NEUROSQL} --log {log} evaluate --samples {input.samples} --data {input.data} {params.features}"
        " --n-pairs {params.n_pairs} --pair-seed {params.pair_seed} --device {params.device}"
        " --out {output} 2> /dev/null"
