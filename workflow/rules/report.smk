# Reports: the appendix-style table and the sample-grid figure per dataset x backbone.


rule table:
    input:
        lambda w: metrics_files(w.dataset, w.backbone),
    output:
        table="results/tables/{dataset}_{backbone}.csv",
        summary="results/tables/{dataset}_{backbone}_summary.csv",
    log:
        "results/logs/table/{dataset}_{backbone}.log",
    shell:
        "{NEUROSQL} --log {log} table --metrics {input} --out {output.table}"
        " --summary {output.summary} 2> /dev/null"


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
