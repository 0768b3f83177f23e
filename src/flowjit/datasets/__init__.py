"""Data for examples and tutorials: the `DataSet` TF1's MNIST tutorials iterate, MNIST itself
(`flowjit.datasets.mnist`), and `load_digits`, an offline stand-in for MNIST.

`load_digits(size=28)` is the 1,797 handwritten digits scikit-learn ships (8x8 pixels, 0..16),
drawn the way MNIST draws its digits: upsampled (bilinear) into the central 20x20 of a 28x28
image and scaled to 0..255. It comes split into train, validation and test `DataSet`s, so a
program written for `read_data_sets` runs unchanged on it (`FLOWJIT_MNIST=digits`).
"""
from __future__ import annotations

from flowjit.datasets.dataset import DataSet, Datasets, dense_to_one_hot  # noqa: F401
from flowjit.datasets.digits import load_digits  # noqa: F401
