"""Downstream classifier: scores against sklearn, the CNN on real digits, label schemes, class subsets."""

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, precision_score, recall_score

from neurosql.classifier import (
    class_exemplars,
    class_subset,
    classification_scores,
    knn_labels,
    predict,
    train_classifier,
)
from neurosql.data.prepare import load_prepared
from tests.conftest import SAMPLE


@pytest.fixture(scope="module")
def digits():
    """The embedded sample shuffled once: 4,000 training and 2,000 test digits."""
    with np.load(SAMPLE) as data:
        images, labels = data["images"], data["labels"].astype(np.int64)
    order = np.random.default_rng(0).permutation(len(labels))
    images = images[order][:, None]
    labels = labels[order]
    return images[:4000], labels[:4000], images[8000:], labels[8000:]


def test_scores_match_sklearn():
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 10, 500)
    y_pred = np.where(rng.random(500) < 0.7, y_true, rng.integers(0, 10, 500))
    y_pred[y_pred == 9] = 8  # class 9 is never predicted: precision 0 by convention
    scores = classification_scores(y_true, y_pred)
    assert scores["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert scores["macro_precision"] == pytest.approx(
        precision_score(y_true, y_pred, average="macro", labels=range(10), zero_division=0)
    )
    assert scores["macro_recall"] == pytest.approx(
        recall_score(y_true, y_pred, average="macro", labels=range(10), zero_division=0)
    )


def test_cnn_on_real_digits(digits):
    torch.set_num_threads(1)
    train_x, train_y, test_x, test_y = digits
    model = train_classifier(train_x, train_y, epochs=3, seed=0)
    scores = classification_scores(test_y, predict(model, test_x))
    assert scores["accuracy"] > 0.90
    assert scores["macro_recall"] > 0.90


def test_training_is_seeded(digits):
    torch.set_num_threads(1)
    train_x, train_y, test_x, _ = digits
    first = predict(train_classifier(train_x[:500], train_y[:500], epochs=1, seed=4), test_x[:200])
    second = predict(train_classifier(train_x[:500], train_y[:500], epochs=1, seed=4), test_x[:200])
    np.testing.assert_array_equal(first, second)


def test_knn_labels_brute_force():
    rng = np.random.default_rng(1)
    codes = rng.normal(size=(200, 3))
    labels = rng.integers(0, 4, 200)
    queries = rng.normal(size=(50, 3))
    got = knn_labels(queries, codes, labels, k=5, chunk_size=16)
    for i, q in enumerate(queries):
        nearest = np.argsort(((codes - q) ** 2).sum(1))[:5]
        counts = np.bincount(labels[nearest], minlength=4)
        assert got[i] == counts.argmax()


def test_knn_labels_one_neighbour():
    codes = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    labels = np.array([3, 1, 2])
    queries = np.array([[9.0, 1.0], [1.0, 8.0], [0.5, 0.5]])
    np.testing.assert_array_equal(knn_labels(queries, codes, labels, k=1), [1, 2, 3])


def test_exemplars_pad_missing_classes():
    images = np.arange(6, dtype=np.uint8).reshape(6, 1, 1, 1) + 1
    labels = np.array([0, 0, 0, 2, 2, 5])
    grid, counts = class_exemplars(images, labels, per_class=2)
    assert grid.shape == (10, 2, 1, 1, 1)
    np.testing.assert_array_equal(counts, [2, 0, 2, 0, 0, 1, 0, 0, 0, 0])
    assert grid[0, :, 0, 0, 0].tolist() == [1, 2]
    assert grid[5, :, 0, 0, 0].tolist() == [6, 0]


def test_class_subset_keeps_one_class(tiny_data, tmp_path):
    out = tmp_path / "class3.npz"
    sizes = class_subset(tiny_data, 3, out)
    subset = load_prepared(out)
    full = load_prepared(tiny_data)
    for split in ("train", "val", "test"):
        assert (subset[f"{split}_labels"] == 3).all()
        assert sizes[split] == int((full[f"{split}_labels"] == 3).sum())
    np.testing.assert_array_equal(subset["train_images"], full["train_images"][full["train_labels"] == 3])
