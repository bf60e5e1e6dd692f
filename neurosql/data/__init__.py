"""Data sources, splits and the prepare stage for MNIST-format digits."""

from neurosql.data.idx import read_idx, write_idx
from neurosql.data.mnist import MnistSource, load_mnist
from neurosql.data.prepare import load_prepared, prepare_mnist, to_float
from neurosql.data.splits import make_splits

__all__ = [
    "MnistSource",
    "load_mnist",
    "load_prepared",
    "make_splits",
    "prepare_mnist",
    "read_idx",
    "to_float",
    "write_idx",
]
