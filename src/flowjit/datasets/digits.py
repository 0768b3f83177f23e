"""`load_digits`: scikit-learn's handwritten digits as MNIST-like 28x28 images."""
from __future__ import annotations

import numpy as np

from flowjit import dtypes
from flowjit.datasets.dataset import DataSet, Datasets, dense_to_one_hot

DIGITS_COUNT = 1797


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """[n_out, n_in] weights that resample a row of `n_in` pixels to `n_out` by linear
    interpolation between pixel centres (edges clamped)."""
    centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    centres = np.clip(centres, 0, n_in - 1)
    low = np.floor(centres).astype(int)
    high = np.minimum(low + 1, n_in - 1)
    frac = centres - low
    weights = np.zeros((n_out, n_in))
    weights[np.arange(n_out), low] += 1 - frac
    weights[np.arange(n_out), high] += frac
    return weights


def upsample(images: np.ndarray, size: int) -> np.ndarray:
    """[N, 8, 8] digits (0..16) -> [N, size, size, 1] uint8 (0..255), the digit in the central
    20/28 of the image, as MNIST centres its digits in a 20x20 box of 28x28."""
    inner = max(1, round(size * 20 / 28))
    rows = bilinear_matrix(images.shape[1], inner)
    cols = bilinear_matrix(images.shape[2], inner)
    scaled = np.einsum("ij,njk,lk->nil", rows, images, cols) * (255.0 / 16.0)
    out = np.zeros((images.shape[0], size, size), np.uint8)
    top = (size - inner) // 2
    out[:, top:top + inner, top:top + inner] = np.clip(np.rint(scaled), 0, 255)
    return out[..., None]


def load_digits(size: int = 28, one_hot: bool = False, dtype=dtypes.float32,
                reshape: bool = True, validation_size: int = 100, test_size: int = 297,
                seed: int = 0) -> Datasets:
    """Train, validation and test `DataSet`s of scikit-learn's 1,797 digits, drawn at
    `size` x `size` (train: 1,400 by default). The split is a shuffle by `seed`."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise ImportError("flowjit.datasets.load_digits needs scikit-learn: "
                          "pip install 'flowjit[examples]'") from None
    if validation_size < 0 or test_size < 1 or validation_size + test_size >= DIGITS_COUNT:
        raise ValueError(f"validation_size ({validation_size}) and test_size ({test_size}) "
                         f"must leave training examples of the {DIGITS_COUNT} digits")
    bunch = sklearn_digits()
    order = np.random.RandomState(seed).permutation(len(bunch.target))
    images = upsample(bunch.images[order], size)
    labels = bunch.target[order].astype(np.uint8)
    if one_hot:
        labels = dense_to_one_hot(labels, 10)
    test_end = test_size
    validation_end = test_size + validation_size

    def part(start: int, end: int) -> DataSet:
        return DataSet(images[start:end], labels[start:end], one_hot=one_hot, dtype=dtype,
                       reshape=reshape, seed=seed)

    return Datasets(train=part(validation_end, None), validation=part(test_end, validation_end),
                    test=part(0, test_end))
