# Reports: the appendix-style table and sample-grid figure per dataset x backbone,
# the overview across datasets (Table 1) and the solver ablation (Table 2).


rule table:
    input:
        metrics=lambda w: metrics_files(w.dataset, w.backbone),
        models=lambda w: models_of(cells(w.dataset, w.backbone)),
    output:
        table="results/tables/{dataset}_{backbone}.csv",
        summary="results/tables/{dataset}_{backbone}_summary.csv",
    log:
        "results/logs/table/{dataset}_{backbone}.log",
    shell:
        "{NEUROSQL} --log {log} table --metrics {input.metrics} --models {input.models}"
        " --out {output.table} --summary {output.summary} 2> /dev/null"


rule overview:
    input:
        metrics=lambda w: metrics_of(available_cells()),
        models=lambda w: models_of(available_cells()),
    output:
        "results/tables/overview.csv",
    log:
        "results/logs/table/overview.log",
    shell:
        "{NEUROSQL} --log {log} overview --metrics {input.metrics} --models {input.models}"
        " --out {output} 2> /dev/null"


rule solver_ablation:
    input:
        metrics=lambda w: metrics_of(solver_ablation_cells(w.dataset)),
        models=lambda w: models_of(solver_ablation_cells(w.dataset)),
    output:
        "results/tables/ablations/solver_{dataset}.csv",
    log:
        "results/logs/table/ablation_solver_{dataset}.log",
    shell:
        "{NEUROSQL} --log {log} ablation --metrics {input.metrics} --models {input.models}"
        " --out {output} 2> /dev/null"


rule sample_figure:
    input:
        lambda w: samples_files(w.dataset, w.backbone),
    output:
        png="results/figures/{dataset}_{backbone}_samples.png",
        pdf="results/figures/{dataset}_{backbone}_samples.pdf",
    params:
        n=config["figures"]["grid_images"],
    log:
        "results/logs/sample_figure/{dataset}_{backbone}.log",
    shell:
        "{NEUROSQL} --log {log} figure --samples {input} --n-images {params.n}"
        " --out {output.png} {output.pdf} 2> /dev/null"
