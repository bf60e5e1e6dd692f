"""The training loop shared by every paradigm: budget, schedule, early stopping, resume.

All methods of a cell share AdamW, cosine annealing with warm restarts,
gradient clipping, batch size and the epoch budget. Each epoch draws its
shuffling and noise from a generator seeded by (seed, epoch), and a resume
state is written atomically after every epoch, so rerunning an interrupted
command continues where it stopped and ends with the same weights as an
uninterrupted run.
"""

import copy
import csv
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurosql.assignment import solve_assignment
from neurosql.config import config_hash
from neurosql.cost import pairwise_cost
from neurosql.data.prepare import load_prepared, to_float
from neurosql.io import atomic_path, atomic_torch_save
from neurosql.lattice import sample_prior
from neurosql.models import build_paradigm, save_model
from neurosql.paradigms import NeuroSQL, Paradigm
from neurosql.runtime import configure_runtime, peak_cuda_mb, peak_rss_mb, resolve_device

log = logging.getLogger(__name__)

STATE_FORMAT = "neurosql-resume-v1"


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """Return the CPU generator for one epoch's shuffling and noise."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


@torch.no_grad()
def validation_loss(paradigm: Paradigm, images: torch.Tensor, z: torch.Tensor) -> float:
    """Return the mean optimally matched SSIM+L1 cost between ``images`` and G(z).

    The same criterion serves every method, so early stopping compares
    paradigms on one scale: the codes z are fixed draws from the prior, and
    an exact assignment pairs each validation image with one generated image.
    """
    generated = paradigm.validation_samples(z)
    cost = pairwise_cost(images, generated, loss="ssim_l1").cpu().numpy()
    perm = solve_assignment(cost, method="exact")
    return float(cost[np.arange(len(perm)), perm].mean())


def _make_optimizers(paradigm: Paradigm, train: dict) -> dict[str, torch.optim.Optimizer]:
    betas = tuple(train.get("betas", (0.9, 0.999)))
    return {
        name: torch.optim.AdamW(params, lr=train["lr"], weight_decay=train["weight_decay"], betas=betas)
        for name, params in paradigm.parameter_groups().items()
    }


def _make_schedulers(optimizers: dict, train: dict) -> dict[str, torch.optim.lr_scheduler.LRScheduler]:
    return {
        name: torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
            opt, T_0=train["restart_epochs"], T_mult=train.get("restart_mult", 1), eta_min=train["min_lr"]
        )
        for name, opt in optimizers.items()
    }


def _is_timing(column: str) -> bool:
    return column.endswith("_seconds") or column == "assign_share"


def _write_history(path: Path, history: list[dict[str, float]]) -> None:
    # Wall times stay in the log and the model file, so that a rerun on the
    # same machine writes a byte-identical history.
    columns = sorted(
        {key for row in history for key in row if not _is_timing(key)}, key=lambda k: (k != "epoch", k)
    )
    with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(history)


def train_cell(config: dict[str, Any], data_path: Path, model_path: Path, history_path: Path, state_path: Path) -> dict:
    """Train one grid cell and write its model file and per-epoch history."""
    runtime_meta = configure_runtime(config["runtime"])
    device = resolve_device(config["runtime"].get("device", "cpu"))
    train = config["train"]
    seed = config["seed"]
    digest = config_hash(config)

    data = load_prepared(data_path)
    x_train = to_float(data["train_images"]).to(device)
    x_val = to_float(data["val_images"]).to(device)
    n_train = len(x_train)
    log.info(
        "training %s/%s z=%d seed=%d on %d images (%d validation) on %s, config %s",
        config["method"], config["backbone"], config["latent_dim"], seed, n_train, len(x_val), device, digest,
    )

    paradigm = build_paradigm(config, n_train).to(device)
    optimizers = _make_optimizers(paradigm, train)
    schedulers = _make_schedulers(optimizers, train)
    val_z = sample_prior(paradigm.latent_prior(), len(x_val), paradigm.latent_dim, torch.Generator().manual_seed(seed + 7))

    # Resume from the last completed epoch when the state matches this config.
    start_epoch, history, best = 0, [], {"loss": float("inf"), "epoch": -1, "state": None}
    bad_epochs = 0
    if state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if state.get("format") == STATE_FORMAT and state.get("config_hash") == digest:
            paradigm.load_state_dict(state["paradigm"])
            for name, opt in optimizers.items():
                opt.load_state_dict(state["optimizers"][name])
                schedulers[name].load_state_dict(state["schedulers"][name])
            torch.set_rng_state(state["torch_rng"])
            start_epoch, history, best, bad_epochs = state["epoch"] + 1, state["history"], state["best"], state["bad_epochs"]
            log.info("resuming from %s after epoch %d", state_path, state["epoch"])
        else:
            log.warning("ignoring resume state %s: it belongs to another config", state_path)
    if isinstance(paradigm, NeuroSQL):
        if start_epoch == 0:
            paradigm.initialise(x_train.cpu())
        paradigm.initialised = True

    batch_size = train["batch_size"]
    stopped_early = False
    for epoch in range(start_epoch, train["epochs"]):
        if bad_epochs >= train["patience"]:
            stopped_early = True
            break
        start = time.perf_counter()
        rng = epoch_generator(seed, epoch)
        paradigm.train()

        # NeuroSQL reassigns codes here every K epochs; the others do nothing.
        row: dict[str, float] = {"epoch": epoch}
        row.update(paradigm.begin_epoch(epoch, x_train, rng))

        order = torch.randperm(n_train, generator=rng)
        sums: dict[str, float] = {}
        n_batches = 0
        for begin in range(0, n_train, batch_size):
            index = order[begin : begin + batch_size]
            stats = paradigm.train_step(x_train[index.to(device)], index, optimizers, rng, train["grad_clip"])
            for key, value in stats.items():
                sums[key] = sums.get(key, 0.0) + value
            n_batches += 1
        train_seconds = time.perf_counter() - start
        for scheduler in schedulers.values():
            scheduler.step()

        row.update({f"train_{key}": value / n_batches for key, value in sums.items()})
        row["val_loss"] = validation_loss(paradigm, x_val, val_z)
        row["lr"] = optimizers["generator"].param_groups[0]["lr"]
        row["train_seconds"] = train_seconds
        row["epoch_seconds"] = time.perf_counter() - start
        if "assign_seconds" in row:
            row["assign_share"] = row["assign_seconds"] / train_seconds
        history.append(row)

        if row["val_loss"] < best["loss"]:
            best = {"loss": row["val_loss"], "epoch": epoch, "state": copy.deepcopy(paradigm.state_dict())}
            bad_epochs = 0
        else:
            bad_epochs += 1
        log.info(
            "epoch %d/%d  train %.4f  val %.4f  lr %.2e  %.1f s%s",
            epoch + 1, train["epochs"], row.get("train_loss", float("nan")), row["val_loss"], row["lr"],
            row["epoch_seconds"], f"  (assignment {row['assign_seconds']:.1f} s, {100 * row['assign_share']:.0f}% of training)"
            if "assign_seconds" in row
            else "",
        )

        atomic_torch_save(
            {
                "format": STATE_FORMAT,
                "config_hash": digest,
                "epoch": epoch,
                "paradigm": paradigm.state_dict(),
                "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
                "schedulers": {name: sch.state_dict() for name, sch in schedulers.items()},
                "torch_rng": torch.get_rng_state(),
                "history": history,
                "best": best,
                "bad_epochs": bad_epochs,
            },
            state_path,
        )

    # The model file keeps the weights and codes of the best validation epoch.
    paradigm.load_state_dict(best["state"])
    epoch_times = [row["epoch_seconds"] for row in history]
    assign_times = [row["assign_seconds"] for row in history if "assign_seconds" in row]
    solve_times = [row["solve_seconds"] for row in history if "solve_seconds" in row]
    cost_times = [row["cost_seconds"] for row in history if "cost_seconds" in row]
    resources = {
        "peak_rss_mb": peak_rss_mb(),
        "peak_cuda_mb": peak_cuda_mb(device),
        "mean_epoch_seconds": float(np.mean(epoch_times)),
        "mean_assign_seconds": float(np.mean(assign_times)) if assign_times else None,
        "mean_solve_seconds": float(np.mean(solve_times)) if solve_times else None,
        "mean_cost_seconds": float(np.mean(cost_times)) if cost_times else None,
        "n_assign_calls": len(assign_times),
    }
    save_model(
        model_path,
        paradigm.cpu(),
        config,
        n_train,
        {
            "config_hash": digest,
            "best_epoch": best["epoch"],
            "best_val_loss": best["loss"],
            "epochs_run": len(history),
            "stopped_early": stopped_early,
            "resources": resources,
            "runtime": runtime_meta,
        },
    )
    _write_history(history_path, history)
    log.info(
        "best validation loss %.4f at epoch %d of %d; mean epoch %.2f s; peak RSS %.0f MiB",
        best["loss"], best["epoch"] + 1, len(history), resources["mean_epoch_seconds"], resources["peak_rss_mb"],
    )
    return resources
