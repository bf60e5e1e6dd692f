"""Downstream classifier: a small CNN trained only on synthetic digits and tested on real ones.

The generators are unconditional, so synthetic images need labels from
somewhere. ``LABEL_SCHEMES``:

- ``latent_knn``: a sampled code z takes the majority label of its k nearest
  aligned training codes (NeuroSQL's Zhat, the VAE's encoder means). It uses
  only the model's own latent space and costs a distance computation.
  Methods without aligned codes (GAN, DDPM) fall back to ``teacher``, and
  the result records the scheme each method used.
- ``teacher``: a CNN trained on the real training split labels every
  synthetic image. It works for every method, but the student partly
  learns the teacher's mistakes.
- ``per_class_generators``: one generator per class, trained on that class's
  training images only, labels its own samples (the setting that a per-class
  grid of samples implies). Faithful, but it trains ten models per cell.

Training and evaluation are seeded and run in a fixed order, so equal inputs
on the same machine and thread count give equal numbers.
"""

import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from neurosql.data.prepare import load_prepared, to_float
from neurosql.io import atomic_savez, atomic_torch_save, atomic_write_json
from neurosql.latent import aligned_codes
from neurosql.models import load_model
from neurosql.sampling import sampled_codes, to_uint8

log = logging.getLogger(__name__)

LABEL_SCHEMES = ("latent_knn", "teacher", "per_class_generators")
N_CLASSES = 10


class SmallCNN(nn.Module):
    """Two 3x3 convolution + max-pool blocks and a two-layer head, for 28x28 (or any square) images."""

    def __init__(self, channels: int = 1, resolution: int = 28, n_classes: int = N_CLASSES, width: int = 16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
        )
        side = resolution // 4
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(2 * width * side * side, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    epochs: int = 3,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    width: int = 16,
) -> SmallCNN:
    """Train a SmallCNN on uint8 (N, C, H, W) images with integer labels; return it in eval mode."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise ValueError("the classifier needs at least one training image")
    x = to_float(np.ascontiguousarray(images))
    y = torch.as_tensor(np.asarray(labels), dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmallCNN(x.shape[1], x.shape[2], N_CLASSES, width)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)

    model.train()
    for epoch in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for begin in range(0, len(x), batch_size):
            index = order[begin : begin + batch_size]
            loss = F.cross_entropy(model(x[index]), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(index)
        log.info("classifier epoch %d/%d  loss %.4f  %.1f s", epoch + 1, epochs, total / len(x), time.perf_counter() - start)
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, images: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """Return the predicted class of each uint8 (N, C, H, W) image."""
    model.eval()
    x = to_float(np.ascontiguousarray(images))
    return torch.cat([model(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]).numpy()


def classification_scores(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = N_CLASSES) -> dict[str, float]:
    """Return accuracy, macro precision and macro recall over ``n_classes`` classes.

    A class that is never predicted has precision 0, and one with no true
    examples has recall 0 (both still count in the macro average).
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    hits = np.diag(confusion).astype(np.float64)
    predicted = confusion.sum(0)
    actual = confusion.sum(1)
    precision = np.divide(hits, predicted, out=np.zeros(n_classes), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros(n_classes), where=actual > 0)
    return {
        "accuracy": float(hits.sum() / len(y_true)),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
    }


def generate_synthetic(model_path: Path, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Generate n sampled-z images from a model; return (uint8 images, codes, model config).

    Code i comes from its own generator seeded by (seed, i), as in the sample stage.
    """
    paradigm, payload = load_model(Path(model_path))
    codes = sampled_codes(paradigm.latent_prior(), n, paradigm.latent_dim, seed)
    images = torch.cat([paradigm.generate(codes[i : i + 1000]) for i in range(0, n, 1000)])
    return to_uint8(images), codes.numpy(), payload["config"]


def knn_labels(queries: np.ndarray, codes: np.ndarray, labels: np.ndarray, k: int, chunk_size: int = 2048) -> np.ndarray:
    """Label each query with the majority label of its k nearest codes; a tied vote goes to the smallest label."""
    queries = np.asarray(queries, dtype=np.float64)
    codes = np.asarray(codes, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    squared = (codes**2).sum(1)
    out = np.empty(len(queries), dtype=np.int64)
    for start in range(0, len(queries), chunk_size):
        block = queries[start : start + chunk_size]
        distances = squared[None, :] - 2.0 * block @ codes.T  # |q|^2 is constant per row
        neighbours = np.argsort(distances, axis=1, kind="stable")[:, :k]
        votes = np.zeros((len(block), int(labels.max()) + 1), dtype=np.int64)
        np.add.at(votes, (np.repeat(np.arange(len(block)), k), labels[neighbours].ravel()), 1)
        out[start : start + len(block)] = votes.argmax(1)
    return out


def class_exemplars(images: np.ndarray, labels: np.ndarray, per_class: int, n_classes: int = N_CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """Return the first ``per_class`` images of each class as (classes, per_class, C, H, W) and the counts found."""
    grid = np.zeros((n_classes, per_class, *images.shape[1:]), dtype=np.uint8)
    counts = np.zeros(n_classes, dtype=np.int64)
    for c in range(n_classes):
        chosen = images[labels == c][:per_class]
        grid[c, : len(chosen)] = chosen
        counts[c] = len(chosen)
    return grid, counts


TEACHER_FORMAT = "neurosql-teacher-v1"


def train_teacher(
    data_path: Path,
    model_out: Path,
    scores_out: Path,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    width: int = 16,
) -> dict[str, Any]:
    """Train the CNN on the real training split, test it on the real test split, and save both.

    The teacher is the real-data reference row of the classifier table (the
    check that the classifier itself works) and labels synthetic images in
    the ``teacher`` scheme.
    """
    data = load_prepared(Path(data_path))
    model = train_classifier(data["train_images"], data["train_labels"], epochs, batch_size, lr, seed, width)
    scores = classification_scores(data["test_labels"], predict(model, data["test_images"]))
    images = data["train_images"]
    settings = {"channels": int(images.shape[1]), "resolution": int(images.shape[2]), "width": int(width)}
    atomic_torch_save({"format": TEACHER_FORMAT, "settings": settings, "state_dict": model.state_dict()}, model_out)
    result = {
        "n_train": int(len(images)),
        "n_test": int(len(data["test_labels"])),
        "epochs": int(epochs),
        "seed": int(seed),
        **scores,
    }
    atomic_write_json(scores_out, result)
    log.info("teacher on real test digits: %s", scores)
    return result


def load_teacher(path: Path) -> SmallCNN:
    """Load a teacher written by ``train_teacher``, in eval mode."""
    payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    if payload.get("format") != TEACHER_FORMAT:
        raise ValueError(f"{path} is not a teacher classifier file (format {payload.get('format')!r}); rerun the teacher stage")
    settings = payload["settings"]
    model = SmallCNN(settings["channels"], settings["resolution"], N_CLASSES, settings["width"])
    model.load_state_dict(payload["state_dict"])
    return model.eval()


def labelled_synthetic(
    scheme: str,
    model_paths: Sequence[Path],
    data_path: Path,
    n_synthetic: int,
    sample_seed: int,
    knn_k: int,
    teacher: nn.Module | None,
) -> tuple[np.ndarray, np.ndarray, str, dict[str, Any]]:
    """Generate and label the synthetic training set; return (images, labels, scheme used, config)."""
    if scheme == "per_class_generators":
        if len(model_paths) != N_CLASSES:
            raise ValueError(f"per_class_generators needs {N_CLASSES} models, one per class in class order; got {len(model_paths)}")
        per_class = -(-n_synthetic // N_CLASSES)
        images, labels = [], []
        for c, path in enumerate(model_paths):
            # Offsetting the seed per class keeps the classes' codes independent.
            class_images, _, config = generate_synthetic(path, per_class, sample_seed + 7919 * c)
            images.append(class_images)
            labels.append(np.full(per_class, c, dtype=np.int64))
        # Interleave classes so that a prefix of the set is balanced.
        order = np.argsort(np.tile(np.arange(per_class), N_CLASSES), kind="stable")
        return np.concatenate(images)[order][:n_synthetic], np.concatenate(labels)[order][:n_synthetic], scheme, config

    if len(model_paths) != 1:
        raise ValueError(f"label scheme {scheme!r} needs exactly one model, got {len(model_paths)}")
    images, codes, config = generate_synthetic(model_paths[0], n_synthetic, sample_seed)
    used = scheme
    if scheme == "latent_knn":
        try:
            aligned = aligned_codes(model_paths[0], data_path)
        except ValueError as error:
            log.info("latent_knn falls back to the teacher for %s: %s", config["method"], error)
            used = "teacher"
        else:
            return images, knn_labels(codes, aligned["codes"], aligned["labels"], knn_k), used, config
    if used == "teacher":
        if teacher is None:
            raise ValueError("the teacher scheme needs a teacher classifier")
        return images, predict(teacher, images), used, config
    raise ValueError(f"unknown label scheme {scheme!r}; expected one of {LABEL_SCHEMES}")


def run_classifier(
    model_paths: Sequence[Path],
    data_path: Path,
    teacher_path: Path,
    out_path: Path,
    exemplars_path: Path | None,
    scheme: str = "latent_knn",
    n_synthetic: int = 15000,
    sample_seed: int = 1,
    knn_k: int = 5,
    epochs: int = 3,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 1,
    width: int = 16,
    per_class: int = 8,
) -> dict[str, Any]:
    """Train the downstream classifier on one cell's synthetic images and test it on the real test split.

    Writes a JSON with accuracy, macro precision and macro recall, and
    optionally an npz of ``per_class`` exemplars per class for the per-class
    figure. ``teacher_path`` is the real-data classifier of ``train_teacher``.
    """
    if scheme not in LABEL_SCHEMES:
        raise ValueError(f"unknown label scheme {scheme!r}; expected one of {LABEL_SCHEMES}")
    start = time.perf_counter()
    data = load_prepared(Path(data_path))
    test_images, test_labels = data["test_images"], data["test_labels"].astype(np.int64)
    teacher = load_teacher(Path(teacher_path))

    images, labels, used, config = labelled_synthetic(
        scheme, [Path(p) for p in model_paths], Path(data_path), n_synthetic, sample_seed, knn_k, teacher
    )
    student = train_classifier(images, labels, epochs, batch_size, lr, seed, width)
    scores = classification_scores(test_labels, predict(student, test_images))
    log.info("%s classifier (labels: %s) on real test digits: %s", config["method"], used, scores)

    solver = config["method_settings"].get("solver")
    result = {
        "dataset": config["dataset"],
        "backbone": config["backbone"],
        "method": config["method"] if solver in (None, "exact") else f"{config['method']}-{solver}",
        "latent_dim": int(config["latent_dim"]),
        "seed": int(config["seed"]),
        "label_scheme": scheme,
        "label_scheme_used": used,
        "n_synthetic": int(len(images)),
        "synthetic_class_counts": np.bincount(labels, minlength=N_CLASSES).tolist(),
        "n_test": int(len(test_labels)),
        **scores,
        "epochs": int(epochs),
        "classifier_seed": int(seed),
        "sample_seed": int(sample_seed),
        "knn_k": int(knn_k) if used == "latent_knn" else None,
    }
    atomic_write_json(out_path, result)
    if exemplars_path is not None:
        grid, counts = class_exemplars(images, labels, per_class)
        atomic_savez(
            exemplars_path,
            images=grid,
            counts=counts,
            method=np.array(result["method"]),
            latent_dim=np.array(result["latent_dim"]),
            label_scheme=np.array(used),
        )
    log.info("classifier stage finished in %.1f s", time.perf_counter() - start)
    return result


def class_subset(data_path: Path, digit: int, out_path: Path) -> dict[str, int]:
    """Write a prepared-data npz that keeps only the images of one class in every split.

    The per-class generators of the ``per_class_generators`` scheme train on
    these files. Returns the split sizes.
    """
    data = load_prepared(Path(data_path))
    arrays, sizes = {}, {}
    for split in ("train", "val", "test"):
        keep = data[f"{split}_labels"] == digit
        if not keep.any():
            raise ValueError(f"{data_path} has no {split} images of class {digit}")
        for part in ("images", "labels", "indices"):
            key = f"{split}_{part}"
            if key in data:
                arrays[key] = data[key][keep]
        sizes[split] = int(keep.sum())
    atomic_savez(out_path, **arrays)
    log.info("class %d subset of %s: %s", digit, data_path, sizes)
    return sizes


def classifier_table(result_paths: Sequence[Path], teacher_path: Path | None = None) -> pd.DataFrame:
    """Collect classifier results into one table; the teacher (trained on real digits) comes first as a reference row."""
    from neurosql.figures import method_rank

    results = [json.loads(Path(p).read_text()) for p in result_paths]
    results.sort(key=lambda r: (r["dataset"], r["backbone"], r["label_scheme"], r["latent_dim"], r["seed"], method_rank(r["method"])))
    rows = []
    if teacher_path is not None:
        teacher = json.loads(Path(teacher_path).read_text())
        rows.append(
            {
                "dataset": results[0]["dataset"] if results else "",
                "backbone": "",
                "method": "real (teacher)",
                "latent_dim": None,
                "seed": None,
                "label_scheme": "true labels",
                "label_scheme_used": "true labels",
                "n_train": teacher["n_train"],
                "n_test": teacher["n_test"],
                **{key: teacher[key] for key in ("accuracy", "macro_precision", "macro_recall")},
            }
        )
    for result in results:
        rows.append(
            {
                **{key: result[key] for key in ("dataset", "backbone", "method", "latent_dim", "seed", "label_scheme", "label_scheme_used")},
                "n_train": result["n_synthetic"],
                "n_test": result["n_test"],
                **{key: result[key] for key in ("accuracy", "macro_precision", "macro_recall")},
            }
        )
    frame = pd.DataFrame(rows)
    for key in ("latent_dim", "seed"):
        frame[key] = frame[key].astype("Int64")
    return frame
