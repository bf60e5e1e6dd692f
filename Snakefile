# NeuroSQL pipeline: prepare -> train -> sample -> evaluate -> tables and figures.
#
# Every rule calls the package's CLI (python -m neurosql <stage>) with
# explicit paths. params.yaml is the one source of settings and of the grid;
# `--configfile other.yaml` overlays it (see configs/). The workflow profile
# in workflow/profiles/default turns off the mtime rerun trigger, because DVC
# does not keep modification times.

from snakemake.utils import min_version

min_version("8.0")


configfile: "params.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_tables_and_figures(),
    default_target: True
