"""Draw seeded train/val/test index splits from a loaded MNIST-format source.

With an official test set, train and val are disjoint draws from the official
train pool and test is drawn from the official test set. Without one (the
embedded sample), all three are disjoint draws from the single pool. Val and
test are drawn before train, so changing ``n_train_max`` leaves them unchanged.
Each split's indices are sorted ascending.
"""

import logging

import numpy as np

from neurosql.data.mnist import MnistSource

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def split_pool(source: MnistSource, split: str) -> str:
    """Return the pool ("train" or "test") that a split's indices refer to."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return "test" if split == "test" and source.has_test_set else "train"


def _check_count(name: str, value: int | None, allow_none: bool = False) -> None:
    """Raise ValueError unless value is a non-negative int (or None where allowed)."""
    if value is None and allow_none:
        return
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def make_splits(
    source: MnistSource,
    n_train_max: int = 2000,
    n_val: int = 500,
    n_test: int | None = 2000,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Draw sorted int64 index arrays for "train", "val" and "test" with numpy default_rng(seed).

    Train takes up to ``n_train_max`` of the pool left after val (and test,
    for a source with no test set). ``n_test=None`` takes the whole official
    test set. Raises ValueError, with the numbers, when the pool is too small.
    """
    _check_count("n_train_max", n_train_max)
    _check_count("n_val", n_val)
    _check_count("n_test", n_test, allow_none=True)
    rng = np.random.default_rng(seed)
    pool_size = len(source.train_labels)

    # Test: from the official test set, or carved from the pool with the sample.
    if source.has_test_set:
        test_size = len(source.test_labels)
        if n_test is None:
            n_test = test_size
        if n_test > test_size:
            raise ValueError(
                f"n_test={n_test} exceeds the {test_size} images of the official test set ({source.source})"
            )
        test = rng.permutation(test_size)[:n_test]
        held_out = n_val
    else:
        if n_test is None:
            raise ValueError(f"n_test must be set: {source.source} has no official test set to take whole")
        held_out = n_val + n_test

    # Val (and the sample's test) come first in one permutation, so they are disjoint from train.
    if held_out >= pool_size:
        raise ValueError(
            f"pool of {pool_size} images ({source.source}) is too small for n_val={n_val}"
            + ("" if source.has_test_set else f" + n_test={n_test}")
            + " plus at least one training image; lower n_val/n_test or supply the full IDX download"
        )
    order = rng.permutation(pool_size)
    val = order[:n_val]
    if not source.has_test_set:
        test = order[n_val:held_out]

    # Train: whatever the cap allows from the rest of the pool.
    n_train = min(n_train_max, pool_size - held_out)
    if n_train < 1:
        raise ValueError(f"n_train_max={n_train_max} leaves no training images; set it to at least 1")
    if n_train < n_train_max:
        log.warning(
            "train split capped at %d images: pool of %d minus %d held out is below n_train_max=%d",
            n_train,
            pool_size,
            held_out,
            n_train_max,
        )
    train = order[held_out : held_out + n_train]

    splits = {name: np.sort(indices).astype(np.int64) for name, indices in zip(SPLITS, (train, val, test))}
    log.info(
        "splits (seed %d): train %d, val %d, test %d",
        seed,
        len(splits["train"]),
        len(splits["val"]),
        len(splits["test"]),
    )
    return splits


def split_groups(groups: list[str], fractions: dict[str, float], seed: int) -> dict[str, list[str]]:
    """Assign whole groups (e.g. subjects) to "train", "val" and "test" by fraction, with a seeded shuffle.

    The sorted unique groups are permuted with numpy default_rng(seed); val
    takes round(n * fractions["val"]) of them, test the next
    round(n * fractions["test"]), and train the rest. Val and test get at
    least one group each. Raises ValueError for bad fractions or fewer than
    three groups. Each returned list is sorted.
    """
    if set(fractions) != set(SPLITS):
        raise ValueError(f"fractions must have the keys {SPLITS}, got {sorted(fractions)}")
    if any(value <= 0 for value in fractions.values()) or abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be positive and sum to 1, got {fractions}")
    unique = sorted(set(groups))
    if len(unique) < 3:
        raise ValueError(f"{len(unique)} groups cannot fill train, val and test; need at least 3")

    order = [unique[i] for i in np.random.default_rng(seed).permutation(len(unique))]
    n_val = max(1, round(len(unique) * fractions["val"]))
    n_test = max(1, round(len(unique) * fractions["test"]))
    if n_val + n_test >= len(unique):
        raise ValueError(f"{len(unique)} groups leave none for train after {n_val} val and {n_test} test")
    assigned = {"val": order[:n_val], "test": order[n_val : n_val + n_test], "train": order[n_val + n_test :]}
    return {split: sorted(assigned[split]) for split in SPLITS}
