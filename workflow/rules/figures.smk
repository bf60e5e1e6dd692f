# Reviewer-facing outputs: figures, the downstream classifier, latent-space
# numbers, resources (Table 3), paired-z tables and the reproduction report.
# `snakemake --cores 1 report` builds all of them (and every table of
# report.smk) for the backbones in build.backbones and the datasets present.

from pathlib import Path

import yaml



def _merged(defaults, overlay):
    """Return ``defaults`` with ``overlay`` merged in, section by section."""
    merged = dict(defaults)
    for key, value in (overlay or {}).items():
        merged[key] = _merged(defaults[key], value) if isinstance(value, dict) and isinstance(defaults.get(key), dict) else value
    return merged


# Defaults from configs/report-defaults.yaml, overridden by any report section of the config.
REPORT = _merged(yaml.safe_load(Path("configs/report-defaults.yaml").read_text())["report"], config.get("report"))
REPORT_CLI = f"{sys.executable} -m neurosql.report_cli --threads {REPORT['threads']}"
PAIRED_METHODS = ("neurosql", "vae")  # methods with aligned codes (paired-z, latent numbers)


wildcard_constraints:
    scheme="latent_knn|teacher|per_class_generators",
    digit=r"\d",


def report_cells(dataset, backbone):
    """Grid cells plus the solver-ablation cells of one dataset x backbone, without repeats."""
    found = cells(dataset, backbone)
    if dataset in solver_ablation_datasets(config):
        found += [c for c in solver_ablation_cells(dataset) if c["backbone"] == backbone and c not in found]
    return found


def cell_files(cell_list, kind, name):
    return [f"results/{kind}/{cell_dir(c)}/{name}" for c in cell_list]


def aligned_cells(dataset, backbone):
    return [c for c in report_cells(dataset, backbone) if c["method"].partition("-")[0] in PAIRED_METHODS]


def paired_cells(dataset, backbone):
    return [c for c in cells(dataset, backbone) if c["method"] in PAIRED_METHODS]


def nearest_latent(dataset, target):
    latents = config["grid"][dataset]["latent_dims"]
    return min(latents, key=lambda d: (abs(d - target), d))


def backbone_grid_samples(wildcards):
    grid = config["grid"][wildcards.dataset]
    latent = nearest_latent(wildcards.dataset, REPORT["backbone_grid"]["latent_dim"])
    seed = grid["seeds"][0]
    chosen = [
        c
        for dataset, backbone in available_pairs()
        if dataset == wildcards.dataset
        for c in cells(dataset, backbone)
        if c["seed"] == seed and c["latent_dim"] in (latent, 0)
    ]
    return [f"results/samples/{cell_dir(c)}/sampled_z.npz" for c in chosen]


def latent_figure_codes(dataset, backbone):
    """Codes files of the 2-D and 3-D NeuroSQL and VAE cells of the first seed (Figure 2)."""
    seed = config["grid"][dataset]["seeds"][0]
    chosen = [
        c
        for c in cells(dataset, backbone)
        if c["method"] in PAIRED_METHODS and c["latent_dim"] in (2, 3) and c["seed"] == seed
    ]
    return [f"results/latent/{cell_dir(c)}.npz" for c in chosen]


def classifier_cells(dataset, backbone):
    latents = REPORT["classifier"]["latent_dims"] or config["grid"][dataset]["latent_dims"]
    return [c for c in cells(dataset, backbone) if c["latent_dim"] in latents or c["method"] == "ddpm"]


def classifier_models(wildcards):
    cell = f"{wildcards.dataset}_{wildcards.backbone}/{wildcards.method}_z{wildcards.latent}_s{wildcards.seed}"
    if wildcards.scheme == "per_class_generators":
        return [f"results/classifier/generators/{cell}/class{digit}/model.pt" for digit in range(10)]
    return [f"results/checkpoints/{cell}/model.pt"]


def class_grid_exemplars(wildcards):
    scheme = REPORT["classifier"]["label_schemes"][0]
    chosen = classifier_cells(wildcards.dataset, wildcards.backbone)
    latent = max(c["latent_dim"] for c in chosen)
    seed = config["grid"][wildcards.dataset]["seeds"][0]
    return [
        f"results/classifier/{wildcards.dataset}_{wildcards.backbone}/{scheme}/{cell_dir(c).split('/')[1]}_classes.npz"
        for c in chosen
        if c["latent_dim"] in (latent, 0) and c["seed"] == seed
    ]


def report_targets():
    """Every output of the report target, for the grid's datasets that are present."""
    targets = list(all_tables_and_figures())
    paired = "paired_z" in config["sample"]["modes"]
    for dataset, backbone in available_pairs():
        prefix = f"{dataset}_{backbone}"
        targets += [
            f"results/resources/{prefix}.csv",
            f"results/figures/{prefix}_metrics_vs_latent.png",
            f"results/figures/{prefix}_training.png",
        ]
        if paired and paired_cells(dataset, backbone):
            targets.append(f"results/tables/{prefix}_paired_z.csv")
        if dataset in REPORT["latent"]["datasets"] and aligned_cells(dataset, backbone):
            targets.append(f"results/tables/{prefix}_latent.csv")
            if latent_figure_codes(dataset, backbone):
                targets.append(f"results/figures/{prefix}_latent.png")
        if dataset in REPORT["classifier"]["datasets"]:
            targets += [f"results/tables/{prefix}_classifier.csv", f"results/figures/{prefix}_classes.png"]
    targets += [f"results/figures/{dataset}_backbones.png" for dataset in dict.fromkeys(d for d, _ in available_pairs())]
    targets += ["results/reproduction/report.md", "results/reproduction/comparison.csv"]
    return targets


def reproduction_inputs(wildcards):
    targets = report_targets()
    pick = lambda suffix: [t for t in targets if t.endswith(suffix)]
    return {
        "paper": REPORT["reproduction"]["paper"],
        "records": [t.replace(".csv", "_records.csv") for t in targets if t.startswith("results/resources/")],
        "resources": [t for t in targets if t.startswith("results/resources/")],
        "classifier": pick("_classifier.csv"),
        "paired": pick("_paired_z.csv"),
        "latent": pick("_latent.csv"),
    }


rule report:
    input:
        lambda w: [t for t in report_targets() if not t.startswith("results/reproduction/")],
        "results/reproduction/report.md",
        "results/reproduction/comparison.csv",


rule reproduction:
    input:
        unpack(reproduction_inputs),
    output:
        report="results/reproduction/report.md",
        comparison="results/reproduction/comparison.csv",
    params:
        tolerance=REPORT["reproduction"]["rel_tolerance"],
        scheme=REPORT["classifier"]["label_schemes"][0],
        optional=lambda w, input: " ".join(
            f"--{key} {' '.join(input[key])}" for key in ("classifier", "paired", "latent") if input[key]
        ),
    log:
        "results/logs/reproduction.log",
    shell:
        "{REPORT_CLI} --log {log} reproduction --paper {input.paper} --records {input.records}"
        " --resources {input.resources} {params.optional} --classifier-scheme {params.scheme}"
        " --rel-tolerance {params.tolerance} --out {output.report} --comparison {output.comparison} 2> /dev/null"


rule resources_table:
    input:
        metrics=lambda w: cell_files(report_cells(w.dataset, w.backbone), "metrics", "sampled_z.json"),
        models=lambda w: cell_files(report_cells(w.dataset, w.backbone), "checkpoints", "model.pt"),
        histories=lambda w: cell_files(report_cells(w.dataset, w.backbone), "checkpoints", "history.csv"),
    output:
        table="results/resources/{dataset}_{backbone}.csv",
        records="results/resources/{dataset}_{backbone}_records.csv",
    log:
        "results/logs/report/resources_{dataset}_{backbone}.log",
    shell:
        "{REPORT_CLI} --log {log} resources-table --metrics {input.metrics} --models {input.models}"
        " --histories {input.histories} --records {output.records} --out {output.table} 2> /dev/null"


rule paired_table:
    input:
        lambda w: cell_files(paired_cells(w.dataset, w.backbone), "metrics", "paired_z.json"),
    output:
        "results/tables/{dataset}_{backbone}_paired_z.csv",
    log:
        "results/logs/report/paired_{dataset}_{backbone}.log",
    shell:
        "{REPORT_CLI} --log {log} paired-table --metrics {input} --out {output} 2> /dev/null"


rule metric_plot:
    input:
        lambda w: cell_files(cells(w.dataset, w.backbone), "metrics", "sampled_z.json"),
    output:
        png="results/figures/{dataset}_{backbone}_metrics_vs_latent.png",
        pdf="results/figures/{dataset}_{backbone}_metrics_vs_latent.pdf",
    log:
        "results/logs/report/metric_plot_{dataset}_{backbone}.log",
    shell:
        "{REPORT_CLI} --log {log} metric-plot --metrics {input} --out {output.png} {output.pdf} 2> /dev/null"


rule training_plot:
    input:
        lambda w: cell_files(report_cells(w.dataset, w.backbone), "checkpoints", "history.csv"),
    output:
        png="results/figures/{dataset}_{backbone}_training.png",
        pdf="results/figures/{dataset}_{backbone}_training.pdf",
    log:
        "results/logs/report/training_plot_{dataset}_{backbone}.log",
    shell:
        "{REPORT_CLI} --log {log} training-plot --histories {input} --out {output.png} {output.pdf} 2> /dev/null"


rule backbone_grid:
    input:
        backbone_grid_samples,
    output:
        png="results/figures/{dataset}_backbones.png",
        pdf="results/figures/{dataset}_backbones.pdf",
    params:
        n=REPORT["backbone_grid"]["n_images"],
    log:
        "results/logs/report/backbone_grid_{dataset}.log",
    shell:
        "{REPORT_CLI} --log {log} backbone-grid --samples {input} --n-images {params.n}"
        " --out {output.png} {output.pdf} 2> /dev/null"


rule latent_codes:
    input:
        model="results/checkpoints/{dataset}_{backbone}/{method}_z{latent}_s{seed}/model.pt",
        data="data/processed/{dataset}.npz",
    output:
        "results/latent/{dataset}_{backbone}/{method}_z{latent}_s{seed}.npz",
    log:
        "results/logs/report/latent_codes_{dataset}_{backbone}_{method}_z{latent}_s{seed}.log",
    shell:
        "{REPORT_CLI} --log {log} latent-codes --model {input.model} --data {input.data} --out {output} 2> /dev/null"


rule latent_table:
    input:
        lambda w: [f"results/latent/{cell_dir(c)}.npz" for c in aligned_cells(w.dataset, w.backbone)],
    output:
        "results/tables/{dataset}_{backbone}_latent.csv",
    params:
        k=REPORT["latent"]["knn_k"],
    log:
        "results/logs/report/latent_table_{dataset}_{backbone}.log",
    shell:
        "{REPORT_CLI} --log {log} latent-table --codes {input} --k {params.k} --out {output} 2> /dev/null"


rule latent_figure:
    input:
        lambda w: latent_figure_codes(w.dataset, w.backbone),
    output:
        png="results/figures/{dataset}_{backbone}_latent.png",
        pdf="results/figures/{dataset}_{backbone}_latent.pdf",
    params:
        max_points=REPORT["latent"]["max_points"],
    log:
        "results/logs/report/latent_figure_{dataset}_{backbone}.log",
    shell:
        "{REPORT_CLI} --log {log} latent-figure --codes {input} --max-points {params.max_points}"
        " --out {output.png} {output.pdf} 2> /dev/null"


rule teacher:
    input:
        "data/processed/{dataset}.npz",
    output:
        model="results/classifier/{dataset}_teacher.pt",
        scores="results/classifier/{dataset}_teacher.json",
    params:
        c=REPORT["classifier"],
    log:
        "results/logs/report/teacher_{dataset}.log",
    shell:
        "{REPORT_CLI} --log {log} teacher --data {input} --epochs {params.c[teacher_epochs]}"
        " --batch-size {params.c[batch_size]} --lr {params.c[lr]} --seed {params.c[seed]} --width {params.c[width]}"
        " --model {output.model} --out {output.scores} 2> /dev/null"


rule class_subset:
    input:
        "data/processed/{dataset}.npz",
    output:
        "results/classifier/data/{dataset}_class{digit}.npz",
    log:
        "results/logs/report/class_subset_{dataset}_{digit}.log",
    shell:
        "{REPORT_CLI} --log {log} class-subset --data {input} --digit {wildcards.digit} --out {output} 2> /dev/null"


# One generator per class for the per_class_generators label scheme: the
# cell's own config, trained on that class's images only.
rule class_train:
    input:
        data="results/classifier/data/{dataset}_class{digit}.npz",
    output:
        model="results/classifier/generators/{dataset}_{backbone}/{method}_z{latent}_s{seed}/class{digit}/model.pt",
        history="results/classifier/generators/{dataset}_{backbone}/{method}_z{latent}_s{seed}/class{digit}/history.csv",
    params:
        config=lambda w: as_json(wildcard_cell(w)),
        state="results/classifier/generators/{dataset}_{backbone}/{method}_z{latent}_s{seed}/class{digit}/resume.pt",
    log:
        "results/logs/report/class_train/{dataset}_{backbone}/{method}_z{latent}_s{seed}_class{digit}.log",
    shell:
        "{NEUROSQL} --log {log} train --config {params.config:q} --data {input.data}"
        " --model {output.model} --history {output.history} --state {params.state} 2> /dev/null"


rule classifier:
    input:
        models=classifier_models,
        data="data/processed/{dataset}.npz",
        teacher="results/classifier/{dataset}_teacher.pt",
    output:
        result="results/classifier/{dataset}_{backbone}/{scheme}/{method}_z{latent}_s{seed}.json",
        exemplars="results/classifier/{dataset}_{backbone}/{scheme}/{method}_z{latent}_s{seed}_classes.npz",
    params:
        c=REPORT["classifier"],
        seed=REPORT["classifier"]["seed"] + 1,
    log:
        "results/logs/report/classifier/{dataset}_{backbone}/{scheme}/{method}_z{latent}_s{seed}.log",
    shell:
        "{REPORT_CLI} --log {log} classifier --models {input.models} --data {input.data} --teacher {input.teacher}"
        " --scheme {wildcards.scheme} --n-synthetic {params.c[n_synthetic]} --sample-seed {params.c[sample_seed]}"
        " --knn-k {params.c[knn_k]} --epochs {params.c[epochs]} --batch-size {params.c[batch_size]}"
        " --lr {params.c[lr]} --seed {params.seed} --width {params.c[width]} --per-class {params.c[per_class]}"
        " --out {output.result} --exemplars {output.exemplars} 2> /dev/null"


rule classifier_table:
    input:
        results=lambda w: [
            f"results/classifier/{w.dataset}_{w.backbone}/{scheme}/{cell_dir(c).split('/')[1]}.json"
            for scheme in REPORT["classifier"]["label_schemes"]
            for c in classifier_cells(w.dataset, w.backbone)
        ],
        teacher="results/classifier/{dataset}_teacher.json",
    output:
        "results/tables/{dataset}_{backbone}_classifier.csv",
    log:
        "results/logs/report/classifier_table_{dataset}_{backbone}.log",
    shell:
        "{REPORT_CLI} --log {log} classifier-table --results {input.results} --teacher {input.teacher}"
        " --out {output} 2> /dev/null"


rule class_grid:
    input:
        class_grid_exemplars,
    output:
        png="results/figures/{dataset}_{backbone}_classes.png",
        pdf="results/figures/{dataset}_{backbone}_classes.pdf",
    log:
        "results/logs/report/class_grid_{dataset}_{backbone}.log",
    shell:
        "{REPORT_CLI} --log {log} class-grid --exemplars {input} --out {output.png} {output.pdf} 2> /dev/null"
