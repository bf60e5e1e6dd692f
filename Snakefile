# NeuroSQL pipeline: prepare -> train -> sample -> evaluate -> tables and figures.
#
# Every rule calls the package's CLI (python -m neurosql <stage>) with
# explicit paths. params.yaml is the one source of settings and of the grid;
# `--configfile other.yaml` overlays it (see configs/). Snakemake decides
# reruns with its default triggers (modification times, code, inputs, params).

from snakemake.utils import min_version

min_version("8.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/figures.smk"


rule all:
    input:
        all_tables_and_figures(),
    default_target: True


onsuccess:
    from pathlib import Path

    from neurosql.timing import format_summary, stage_times

    rows = stage_times(Path("results/benchmarks"))
    if rows:
        summary = format_summary(rows)
        Path("results/logs").mkdir(parents=True, exist_ok=True)
        Path("results/logs/stage_times.txt").write_text(summary + "\n")
        print("Wall time per stage (last run of each job, from results/benchmarks/):\n" + summary)
