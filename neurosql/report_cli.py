"""Command-line stages for the reviewer-facing outputs: figures, classifier, latent numbers, Table 3, reproduction.

Run as ``python -m neurosql.report_cli <stage> ...``; the rules in
workflow/rules/figures.smk call these commands with explicit paths.
``python -m neurosql.report_cli <stage> --help`` lists a stage's arguments.
"""

import argparse
import logging
import sys
import time
from pathlib import Path

import pandas as pd

from neurosql.cli import run_logged

log = logging.getLogger("neurosql.report")


def _setup(log_file: str | None, threads: int) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=handlers,
        force=True,
    )
    from neurosql.runtime import configure_runtime

    # A fixed thread count keeps float sums, and so every number, equal between reruns.
    configure_runtime({"threads": threads, "deterministic": True})


def _paths(values: list[str] | None) -> list[Path]:
    return [Path(v) for v in values or []]


def cmd_backbone_grid(args: argparse.Namespace) -> None:
    from neurosql.figures import method_backbone_grid

    method_backbone_grid(_paths(args.samples), _paths(args.out), n_images=args.n_images)


def cmd_class_grid(args: argparse.Namespace) -> None:
    from neurosql.figures import class_grid

    class_grid(_paths(args.exemplars), _paths(args.out))


def cmd_latent_codes(args: argparse.Namespace) -> None:
    from neurosql.latent import write_codes

    write_codes(Path(args.model), Path(args.data), Path(args.out))


def cmd_latent_figure(args: argparse.Namespace) -> None:
    from neurosql.figures import latent_figure

    latent_figure(_paths(args.codes), _paths(args.out), max_points=args.max_points)


def cmd_latent_table(args: argparse.Namespace) -> None:
    from neurosql.latent import latent_table
    from neurosql.reproduction import write_table

    write_table(latent_table(_paths(args.codes), k=args.k), Path(args.out))


def cmd_metric_plot(args: argparse.Namespace) -> None:
    from neurosql.figures import metric_plot

    metric_plot(_paths(args.metrics), _paths(args.out), metrics=args.metric_names)


def cmd_training_plot(args: argparse.Namespace) -> None:
    from neurosql.figures import training_curves

    training_curves(_paths(args.histories), _paths(args.out), column=args.column)


def cmd_class_subset(args: argparse.Namespace) -> None:
    from neurosql.classifier import class_subset

    class_subset(Path(args.data), args.digit, Path(args.out))


def cmd_teacher(args: argparse.Namespace) -> None:
    from neurosql.classifier import train_teacher

    train_teacher(
        Path(args.data), Path(args.model), Path(args.out),
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, width=args.width,
    )


def cmd_classifier(args: argparse.Namespace) -> None:
    from neurosql.classifier import run_classifier

    run_classifier(
        _paths(args.models),
        Path(args.data),
        Path(args.teacher),
        Path(args.out),
        Path(args.exemplars) if args.exemplars else None,
        scheme=args.scheme,
        n_synthetic=args.n_synthetic,
        sample_seed=args.sample_seed,
        knn_k=args.knn_k,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        width=args.width,
        per_class=args.per_class,
    )


def cmd_classifier_table(args: argparse.Namespace) -> None:
    from neurosql.classifier import classifier_table
    from neurosql.reproduction import write_table

    write_table(classifier_table(_paths(args.results), Path(args.teacher) if args.teacher else None), Path(args.out))


def cmd_paired_table(args: argparse.Namespace) -> None:
    from neurosql.reports import cell_table, read_metrics

    from neurosql.reproduction import write_table

    metrics = read_metrics(_paths(args.metrics))
    modes = set(metrics["mode"])
    if modes != {"paired_z"}:
        raise SystemExit(f"paired-table expects paired_z metrics files only, got modes {sorted(modes)}")
    write_table(cell_table(metrics), Path(args.out))


def cmd_resources_table(args: argparse.Namespace) -> None:
    from neurosql.reproduction import resources_table, run_records, write_table

    records = run_records(_paths(args.metrics), _paths(args.models), _paths(args.histories))
    write_table(records, Path(args.records))
    write_table(resources_table(records), Path(args.out))


def cmd_reproduction(args: argparse.Namespace) -> None:
    from neurosql.reproduction import reproduction_report

    paper = pd.read_csv(args.paper, dtype={"latent_dim": "string", "seed": "string"}, keep_default_na=False)
    paper["value"] = paper["value"].astype(float)
    records = pd.concat([pd.read_csv(p) for p in args.records], ignore_index=True).fillna({"solver": ""})
    classifier = None
    if args.classifier:
        frame = pd.concat([pd.read_csv(p) for p in args.classifier], ignore_index=True)
        classifier = frame[(frame["label_scheme"] == args.classifier_scheme) & (frame["method"] != "real (teacher)")]
    sections = {}
    for title, paths in (
        ("Paired-z (reconstruction) metrics", args.paired),
        ("Latent space: coverage and class separation of the aligned codes", args.latent),
        ("Downstream classifier, every label scheme (trained on synthetic digits, tested on real ones)", args.classifier),
        ("Resources per run (Table 3 layout; measurements of this run)", args.resources),
    ):
        if paths:
            sections[title] = pd.concat([pd.read_csv(p) for p in paths], ignore_index=True)
    reproduction_report(
        paper, records, classifier, sections, args.rel_tolerance, Path(args.out), Path(args.comparison) if args.comparison else None
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neurosql.report_cli", description=__doc__.splitlines()[0])
    parser.add_argument("--log", help="also write the log to this file")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (fixed so reruns give equal numbers)")
    sub = parser.add_subparsers(dest="stage", required=True)

    p = sub.add_parser("backbone-grid", help="samples per method (rows) and backbone (columns): Figures 4, 5 and 7")
    p.add_argument("--samples", nargs="+", required=True, help="sampled_z samples files")
    p.add_argument("--n-images", type=int, default=16, help="images per panel")
    p.add_argument("--out", nargs="+", required=True, help="output figure files (.png, .pdf)")
    p.set_defaults(func=cmd_backbone_grid)

    p = sub.add_parser("class-grid", help="exemplars per digit class, one panel per method: Figure 6")
    p.add_argument("--exemplars", nargs="+", required=True, help="exemplar files of the classifier stage")
    p.add_argument("--out", nargs="+", required=True, help="output figure files (.png, .pdf)")
    p.set_defaults(func=cmd_class_grid)

    p = sub.add_parser("latent-codes", help="write a model's aligned codes of the training images with their labels")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="prepared dataset .npz")
    p.add_argument("--out", required=True, help="output codes .npz")
    p.set_defaults(func=cmd_latent_codes)

    p = sub.add_parser("latent-figure", help="2-D and 3-D aligned codes coloured by class: Figure 2")
    p.add_argument("--codes", nargs="+", required=True, help="codes files of latent-codes")
    p.add_argument("--max-points", type=int, default=2000, help="codes drawn per panel")
    p.add_argument("--out", nargs="+", required=True, help="output figure files (.png, .pdf)")
    p.set_defaults(func=cmd_latent_figure)

    p = sub.add_parser("latent-table", help="coverage and k-NN class separation of aligned codes")
    p.add_argument("--codes", nargs="+", required=True, help="codes files of latent-codes")
    p.add_argument("--k", type=int, default=5, help="neighbours of the k-NN accuracy")
    p.add_argument("--out", required=True, help="output CSV")
    p.set_defaults(func=cmd_latent_table)

    p = sub.add_parser("metric-plot", help="metrics against the latent dimension, one line per method")
    p.add_argument("--metrics", nargs="+", required=True, help="metrics JSON files")
    p.add_argument("--metric-names", nargs="+", default=["fid_proxy", "kid", "lpips", "ssim"])
    p.add_argument("--out", nargs="+", required=True, help="output figure files (.png, .pdf)")
    p.set_defaults(func=cmd_metric_plot)

    p = sub.add_parser("training-plot", help="per-epoch curves of every run, one panel per latent dimension")
    p.add_argument("--histories", nargs="+", required=True, help="history.csv files of the train stage")
    p.add_argument("--column", default="val_loss", help="history column to plot")
    p.add_argument("--out", nargs="+", required=True, help="output figure files (.png, .pdf)")
    p.set_defaults(func=cmd_training_plot)

    p = sub.add_parser("class-subset", help="keep one class of a prepared dataset (per-class generators)")
    p.add_argument("--data", required=True)
    p.add_argument("--digit", type=int, required=True, help="class to keep")
    p.add_argument("--out", required=True, help="output prepared-data .npz")
    p.set_defaults(func=cmd_class_subset)

    for name, helptext in (
        ("teacher", "train the CNN on real training digits and test it on real test digits"),
        ("classifier", "train the CNN on one cell's synthetic digits and test it on real test digits"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--data", required=True, help="prepared dataset .npz")
        p.add_argument("--epochs", type=int, required=True)
        p.add_argument("--batch-size", type=int, default=64)
        p.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate")
        p.add_argument("--seed", type=int, default=0, help="seed of initialisation and shuffling")
        p.add_argument("--width", type=int, default=16, help="channels of the first convolution")
        p.add_argument("--out", required=True, help="output scores JSON")
    p_teacher = sub.choices["teacher"]
    p_teacher.add_argument("--model", required=True, help="output teacher weights (.pt)")
    p_teacher.set_defaults(func=cmd_teacher)
    p = sub.choices["classifier"]
    p.add_argument("--models", nargs="+", required=True, help="the cell's model, or one per class for per_class_generators")
    p.add_argument("--teacher", required=True, help="teacher weights of the teacher stage")
    p.add_argument("--scheme", choices=("latent_knn", "teacher", "per_class_generators"), default="latent_knn")
    p.add_argument("--n-synthetic", type=int, default=15000, help="synthetic training images")
    p.add_argument("--sample-seed", type=int, default=1, help="seed of the synthetic codes")
    p.add_argument("--knn-k", type=int, default=5, help="neighbours that vote in latent_knn")
    p.add_argument("--per-class", type=int, default=8, help="exemplars per class kept for the class grid")
    p.add_argument("--exemplars", help="output exemplars .npz")
    p.set_defaults(func=cmd_classifier)

    p = sub.add_parser("classifier-table", help="collect classifier results (and the teacher) into a CSV")
    p.add_argument("--results", nargs="+", required=True, help="classifier JSON files")
    p.add_argument("--teacher", help="teacher scores JSON (the real-data reference row)")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_classifier_table)

    p = sub.add_parser("paired-table", help="table of paired_z (reconstruction) metrics")
    p.add_argument("--metrics", nargs="+", required=True, help="paired_z metrics JSON files")
    p.add_argument("--out", required=True)
    p.set_defaults(func=cmd_paired_table)

    p = sub.add_parser("resources-table", help="run records and the Table 3 resources layout")
    p.add_argument("--metrics", nargs="+", required=True, help="sampled_z metrics JSON, one per cell")
    p.add_argument("--models", nargs="+", required=True, help="model files in the same cell order")
    p.add_argument("--histories", nargs="+", required=True, help="history.csv files in the same cell order")
    p.add_argument("--records", required=True, help="output run-records CSV")
    p.add_argument("--out", required=True, help="output Table 3 CSV")
    p.set_defaults(func=cmd_resources_table)

    p = sub.add_parser("reproduction", help="Markdown page of produced values beside the paper's")
    p.add_argument("--paper", required=True, help="paper values CSV (data/paper/paper_results.csv)")
    p.add_argument("--records", nargs="+", required=True, help="run-records CSVs of resources-table")
    p.add_argument("--resources", nargs="*", default=[], help="Table 3 CSVs, printed as they are")
    p.add_argument("--classifier", nargs="*", default=[], help="classifier-table CSVs")
    p.add_argument("--classifier-scheme", default="latent_knn", help="label scheme compared with the paper's classifier")
    p.add_argument("--paired", nargs="*", default=[], help="paired-table CSVs")
    p.add_argument("--latent", nargs="*", default=[], help="latent-table CSVs")
    p.add_argument("--rel-tolerance", type=float, default=0.25, help="relative difference counted as close")
    p.add_argument("--out", required=True, help="output Markdown page")
    p.add_argument("--comparison", help="output CSV of compared cells (run-time measurements left out)")
    p.set_defaults(func=cmd_reproduction)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the chosen stage and return the exit status."""
    args = build_parser().parse_args(argv)
    _setup(args.log, args.threads)
    start = time.perf_counter()
    run_logged(args.func, args, args.stage)
    log.info("stage %s finished in %.1f s", args.stage, time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
