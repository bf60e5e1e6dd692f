"""Command-line interface: one subcommand per pipeline stage, with explicit paths.

The Snakemake rules call these commands; each can also be run by hand.
``neurosql <stage> --help`` lists the arguments of a stage.
"""

import argparse
import json
import logging
import sys
import time
from pathlib import Path

log = logging.getLogger("neurosql")


def _setup_logging(log_file: str | None, verbose: bool) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        handlers=handlers,
        force=True,
    )


def _json_arg(text: str) -> dict:
    """Parse a JSON object given inline or as @path."""
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"invalid JSON config: {error}") from error
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("the config must be a JSON object")
    return value


def cmd_prepare(args: argparse.Namespace) -> None:
    from neurosql.data.prepare import prepare_dataset

    cfg = dict(args.config)
    if args.skip_unreadable:
        cfg["skip_unreadable"] = True

    # Bad raw data is the user's to fix: log the message (it names the file and the fix) without a traceback.
    try:
        prepare_dataset(cfg, Path(args.out), Path(args.manifest))
    except (ValueError, FileNotFoundError) as error:
        log.error("prepare failed for dataset %s: %s", cfg.get("name", cfg.get("kind")), error)
        log.debug("traceback of the failure", exc_info=True)
        raise SystemExit(1) from error


def cmd_train(args: argparse.Namespace) -> None:
    from neurosql.training import train_cell

    model = Path(args.model)
    state = Path(args.state) if args.state else model.with_name(model.stem + ".resume.pt")
    train_cell(args.config, Path(args.data), model, Path(args.history), state)


def cmd_sample(args: argparse.Namespace) -> None:
    import numpy as np

    from neurosql.io import atomic_savez
    from neurosql.models import load_model
    from neurosql.sampling import generate

    arrays = generate(Path(args.model), Path(args.data), args.n, args.seed, args.mode)
    _, payload = load_model(Path(args.model))
    cfg = payload["config"]
    atomic_savez(
        args.out,
        **arrays,
        mode=np.array(args.mode),
        method=np.array(cfg["method"]),
        backbone=np.array(cfg["backbone"]),
        dataset=np.array(cfg["dataset"]),
        latent_dim=np.array(cfg["latent_dim"]),
        seed=np.array(cfg["seed"]),
        sample_seed=np.array(args.seed),
    )


def cmd_real_features(args: argparse.Namespace) -> None:
    from neurosql.evaluation import compute_real_features
    from neurosql.runtime import resolve_device

    compute_real_features(Path(args.data), args.n, Path(args.out), device=str(resolve_device(args.device, "evaluate.device")))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from neurosql.evaluation import evaluate_samples
    from neurosql.runtime import resolve_device

    evaluate_samples(
        Path(args.samples),
        Path(args.data),
        Path(args.out),
        Path(args.real_features) if args.real_features else None,
        n_pairs=args.n_pairs,
        pair_seed=args.pair_seed,
        device=str(resolve_device(args.device, "evaluate.device")),
    )


def cmd_table(args: argparse.Namespace) -> None:
    from neurosql.reports import cell_table, join_models, read_metrics, read_models, summary_table, write_csv

    metrics = read_metrics([Path(p) for p in args.metrics])
    if args.models:
        metrics = join_models(metrics, read_models([Path(p) for p in args.models]))
    table = cell_table(metrics)
    write_csv(table, Path(args.out))
    if args.summary:
        write_csv(summary_table(table), Path(args.summary))
    log.info("table with %d rows written to %s", len(table), args.out)


def cmd_overview(args: argparse.Namespace) -> None:
    from neurosql.reports import join_models, overview_table, read_metrics, read_models, write_csv

    frame = join_models(read_metrics([Path(p) for p in args.metrics]), read_models([Path(p) for p in args.models]))
    write_csv(overview_table(frame), Path(args.out))


def cmd_ablation(args: argparse.Namespace) -> None:
    from neurosql.reports import join_models, read_metrics, read_models, solver_ablation_table, write_csv

    frame = join_models(read_metrics([Path(p) for p in args.metrics]), read_models([Path(p) for p in args.models]))
    write_csv(solver_ablation_table(frame), Path(args.out))


def cmd_figure(args: argparse.Namespace) -> None:
    from neurosql.reports import sample_grid_figure

    for out in args.out:
        sample_grid_figure([Path(p) for p in args.samples], Path(out), n_images=args.n_images)


def cmd_config(args: argparse.Namespace) -> None:
    from neurosql.config import cell_config, iter_cells, load_params

    params = load_params(args.params, args.configfile)
    if args.dataset not in params["grid"]:
        raise ValueError(f"--dataset {args.dataset!r} has no grid entry in the merged settings; expected one of {sorted(params['grid'])}")
    cells = [c for c in iter_cells(params, args.dataset) if args.method in (None, c["method"])]
    if not cells:
        methods = params["grid"][args.dataset]["methods"]
        raise ValueError(f"--method {args.method!r} is not in grid.{args.dataset}.methods; expected one of {methods}")
    resolved = [cell_config(params, **cell) for cell in cells]
    print(json.dumps(resolved, indent=2, sort_keys=True))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="neurosql", description=__doc__.splitlines()[0])
    parser.add_argument("--log", help="also write the log to this file")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="stage", required=True)

    p = sub.add_parser("prepare", help="split a dataset and write its arrays and manifest")
    p.add_argument(
        "--config", type=_json_arg, required=True,
        help="a datasets.<name> section of params.yaml as JSON (or @file); its kind (mnist, celeba, afhq, oasis) picks the reader",
    )
    p.add_argument("--out", required=True, help="output .npz with train/val/test arrays")
    p.add_argument("--manifest", required=True, help="output manifest JSON")
    p.add_argument(
        "--skip-unreadable", action="store_true",
        help="skip corrupt or truncated image files (same as skip_unreadable: true); the manifest and log list them",
    )
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train one grid cell; rerunning resumes an interrupted run")
    p.add_argument("--config", type=_json_arg, required=True, help="resolved cell config as JSON (or @file)")
    p.add_argument("--data", required=True, help="prepared dataset .npz")
    p.add_argument("--model", required=True, help="output model file (.pt)")
    p.add_argument("--history", required=True, help="output per-epoch history CSV")
    p.add_argument("--state", help="resume-state file (default: beside the model)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("sample", help="generate images from a trained model")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="prepared dataset .npz (paired_z reads its training images)")
    p.add_argument("--n", type=int, required=True, help="number of images")
    p.add_argument("--seed", type=int, required=True, help="sampling seed; image i uses its own derived seed")
    p.add_argument("--mode", choices=("sampled_z", "paired_z"), default="sampled_z")
    p.add_argument("--out", required=True, help="output samples .npz")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("real-features", help="cache Inception features of the first n test images")
    p.add_argument("--data", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.set_defaults(func=cmd_real_features)

    p = sub.add_parser("evaluate", help="FID proxy, KID, LPIPS and SSIM of one samples file")
    p.add_argument("--samples", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--real-features", help="cached real features (sampled_z mode)")
    p.add_argument("--n-pairs", type=int, default=50, help="real/generated pairs for LPIPS and SSIM")
    p.add_argument("--pair-seed", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    p.add_argument("--out", required=True, help="output metrics JSON")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("table", help="collect metrics files into an appendix-style CSV table")
    p.add_argument("--metrics", nargs="+", required=True)
    p.add_argument("--out", required=True, help="per-cell table CSV")
    p.add_argument("--summary", help="per-method averages CSV")
    p.add_argument("--models", nargs="+", help="model files in the order of --metrics; adds parameter counts")
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("overview", help="per dataset and method, mean and std over the whole grid (Table 1)")
    p.add_argument("--metrics", nargs="+", required=True)
    p.add_argument("--models", nargs="+", required=True, help="model files in the order of --metrics")
    p.add_argument("--out", required=True, help="output CSV")
    p.set_defaults(func=cmd_overview)

    p = sub.add_parser("ablation", help="NeuroSQL with different assignment solvers (Table 2)")
    p.add_argument("--metrics", nargs="+", required=True)
    p.add_argument("--models", nargs="+", required=True, help="model files in the order of --metrics")
    p.add_argument("--out", required=True, help="output CSV")
    p.set_defaults(func=cmd_ablation)

    p = sub.add_parser("figure", help="draw sample grids, one panel per samples file")
    p.add_argument("--samples", nargs="+", required=True)
    p.add_argument("--n-images", type=int, default=36)
    p.add_argument("--out", nargs="+", required=True, help="output figure files (.png, .pdf)")
    p.set_defaults(func=cmd_figure)

    p = sub.add_parser("config", help="print the resolved config of each cell (a dry run)")
    p.add_argument("--params", default="params.yaml", help="the main settings file")
    p.add_argument("--configfile", nargs="*", default=[], help="overlays merged over --params in order, as in snakemake")
    p.add_argument("--dataset", default="mnist", help="grid dataset whose cells are printed")
    p.add_argument("--method", help="print only the cells of this method")
    p.set_defaults(func=cmd_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.log, args.verbose)
    start = time.perf_counter()
    run_logged(args.func, args, args.stage)
    log.info("stage %s finished in %.1f s", args.stage, time.perf_counter() - start)
    return 0


def run_logged(func, args: argparse.Namespace, stage: str) -> None:
    """Run a stage. Log any uncaught error with its traceback, then exit with status 1.

    Snakemake rules send stderr to /dev/null and point the user at the job's
    log file, so the error has to be written there.
    """
    try:
        func(args)
    except Exception as error:
        log.error("stage %s failed: %s: %s", stage, type(error).__name__, error, exc_info=True)
        raise SystemExit(1) from error
