"""The data stage: load a dataset, draw the splits, write an npz and a JSON manifest.

``prepare_dataset`` dispatches on the dataset's ``kind``: MNIST-format IDX
files here, CelebA, AFHQ and OASIS image folders in their own modules.
Every kind writes the same npz. For MNIST it contains ``{train,val,test}_images`` as uint8 (N, 1, 28, 28),
``{train,val,test}_labels`` as uint8 (N,) and ``{train,val,test}_indices``
as int64 (N,), the positions of each split in its source pool (the manifest's
``split_pools`` names the pool). Images stay uint8 on disk; ``to_float``
scales them to [0, 1] at load time. Image datasets store (N, C, R, R) with C
1 or 3 and R their resolution, and their indices point into the sorted list
of files in the manifest.
"""

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurosql.data.images import DatasetError, sha256_file
from neurosql.data.imageset import content_sha256
from neurosql.data.mnist import NUM_CLASSES, find_idx_files, load_mnist
from neurosql.data.splits import SPLITS, make_splits, split_pool
from neurosql.io import atomic_savez, atomic_write_json

log = logging.getLogger(__name__)

PREPROCESSING = "native 28x28, uint8, scaled to [0,1] at load time"
PREPARED_KEYS = tuple(f"{split}_{part}" for split in SPLITS for part in ("images", "labels"))


def prepare_mnist(
    raw_dir: Path,
    sample_path: Path,
    out_npz: Path,
    out_manifest: Path,
    n_train_max: int = 2000,
    n_val: int = 500,
    n_test: int | None = 2000,
    seed: int = 0,
    dataset: str = "mnist",
) -> dict:
    """Load MNIST-format data, split it with the seed, and write out_npz and out_manifest.

    ``dataset`` is the name recorded in the manifest (e.g. "fashion-mnist"
    when raw_dir contains Fashion-MNIST). Returns the manifest dict. Both
    files are written atomically, and equal inputs give byte-identical outputs.
    """
    source = load_mnist(Path(raw_dir), Path(sample_path))
    splits = make_splits(source, n_train_max=n_train_max, n_val=n_val, n_test=n_test, seed=seed)

    # Gather each split from its pool; the channel axis makes images (N, 1, H, W).
    pools = {
        "train": (source.train_images, source.train_labels),
        "test": (source.test_images, source.test_labels),
    }
    arrays: dict[str, np.ndarray] = {}
    for split, indices in splits.items():
        images, labels = pools[split_pool(source, split)]
        arrays[f"{split}_images"] = np.ascontiguousarray(images[indices][:, None])
        arrays[f"{split}_labels"] = labels[indices]
        arrays[f"{split}_indices"] = indices

    # np.savez_compressed stamps zip members with a fixed date, so the bytes depend only on the arrays.
    atomic_savez(out_npz, **arrays)
    log.info("wrote %s", out_npz)

    manifest = {
        "dataset": dataset,
        "source": source.source,
        "source_files": [{"path": str(path), "sha256": sha256_file(path)} for path in source.files],
        "seed": seed,
        "params": {"n_train_max": n_train_max, "n_val": n_val, "n_test": n_test},
        "sizes": {split: len(indices) for split, indices in splits.items()},
        "split_pools": {split: split_pool(source, split) for split in SPLITS},
        "class_counts": {
            split: np.bincount(arrays[f"{split}_labels"], minlength=NUM_CLASSES).tolist() for split in SPLITS
        },
        # sha256 of the int64 little-endian index bytes, so runs can compare splits without the npz.
        "split_indices_sha256": {
            split: hashlib.sha256(indices.astype("<i8").tobytes()).hexdigest()
            for split, indices in splits.items()
        },
        "train_cap": {
            "n_train_max": n_train_max,
            "drawn": len(splits["train"]),
            "sampling": f"numpy default_rng({seed}) permutation of the train pool after val (and test) are taken",
        },
        "image_shape": list(arrays["train_images"].shape[1:]),
        "dtype": "uint8",
        "preprocessing": PREPROCESSING,
        "content_sha256": content_sha256(arrays),
        "npz": str(out_npz),
        "npz_sha256": sha256_file(Path(out_npz)),
    }
    try:
        atomic_write_json(out_manifest, manifest)
    except BaseException:
        Path(out_npz).unlink(missing_ok=True)
        raise
    log.info("wrote %s", out_manifest)
    return manifest


def prepare_dataset(cfg: dict[str, Any], out_npz: Path, out_manifest: Path) -> dict:
    """Prepare the dataset of one ``datasets.<name>`` section by its kind; return the manifest.

    Kinds: mnist (IDX files, or the embedded sample when ``sample`` is set
    and raw_dir holds none), celeba, afhq and oasis. Raises DatasetError for
    an unknown kind or unusable raw data.
    """
    kind = cfg.get("kind", "mnist")
    name = cfg.get("name", kind)
    if kind == "mnist":
        return _prepare_mnist_config(cfg, Path(out_npz), Path(out_manifest), name)

    # Import the image readers here, so MNIST runs never load them.
    from neurosql.data.afhq import prepare_afhq
    from neurosql.data.celeba import prepare_celeba
    from neurosql.data.oasis import prepare_oasis

    readers = {"celeba": prepare_celeba, "afhq": prepare_afhq, "oasis": prepare_oasis}
    if kind not in readers:
        raise DatasetError(f"datasets.{name}.kind is {kind!r}; expected one of {['mnist', *readers]}")
    return readers[kind](dict(cfg, name=name), Path(out_npz), Path(out_manifest))


def _prepare_mnist_config(cfg: dict[str, Any], out_npz: Path, out_manifest: Path, name: str) -> dict:
    """Check an MNIST-kind section and run prepare_mnist with it."""
    if cfg.get("resolution", 28) != 28 or cfg.get("channels", 1) != 1:
        raise DatasetError(
            f"datasets.{name}: MNIST-format data is 28x28 with 1 channel, got resolution {cfg.get('resolution')} "
            f"and channels {cfg.get('channels')}; set resolution: 28 and channels: 1"
        )
    raw_dir = Path(cfg["raw_dir"])
    sample = cfg.get("sample")
    if not sample and not (raw_dir.is_dir() and find_idx_files(raw_dir)):
        state = "holds no IDX files" if raw_dir.is_dir() else "does not exist"
        raise DatasetError(
            f"raw data folder {raw_dir} {state} and datasets.{name} names no embedded sample. "
            "Put the four IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, "
            "t10k-labels-idx1-ubyte, each may be .gz) there, or point raw_dir at them"
        )
    return prepare_mnist(
        raw_dir=raw_dir,
        sample_path=Path(sample) if sample else raw_dir / "no-embedded-sample",
        out_npz=out_npz,
        out_manifest=out_manifest,
        n_train_max=cfg["n_train_max"],
        n_val=cfg["n_val"],
        n_test=cfg["n_test"],
        seed=cfg["split_seed"],
        dataset=name,
    )


def load_prepared(npz_path: Path) -> dict[str, np.ndarray]:
    """Load every array of a prepared npz, checking the image and label arrays' keys, dtypes and shapes."""
    npz_path = Path(npz_path)
    if not npz_path.is_file():
        raise FileNotFoundError(f"prepared data not found: {npz_path}; run the prepare stage first")

    with np.load(npz_path) as npz:
        arrays = {key: npz[key] for key in npz.files}

    missing = [key for key in PREPARED_KEYS if key not in arrays]
    if missing:
        raise ValueError(f"{npz_path}: missing arrays {missing}; rerun the prepare stage")
    for split in SPLITS:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
            raise ValueError(
                f"{npz_path}: {split}_images must be uint8 (N, C, H, W) with C 1 or 3, got {images.dtype} {images.shape}"
            )
        if images.shape[1:] != arrays["train_images"].shape[1:]:
            raise ValueError(
                f"{npz_path}: {split}_images are {images.shape[1:]} but train_images are {arrays['train_images'].shape[1:]}"
            )
        if labels.shape != (len(images),):
            raise ValueError(f"{npz_path}: {split}_labels shape {labels.shape} does not match {len(images)} images")
    return arrays


def to_float(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Convert uint8 images to a float32 tensor in [0, 1] (pixel / 255)."""
    tensor = torch.as_tensor(images)
    if tensor.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {tensor.dtype}; to_float scales pixel bytes by 1/255")
    return tensor.to(torch.float32).div_(255.0)
