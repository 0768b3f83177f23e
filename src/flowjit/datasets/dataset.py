"""`DataSet`: images and labels held in memory, served in (shuffled) mini-batches, with the
behaviour of TF1's `tensorflow.contrib.learn.python.learn.datasets.mnist.DataSet`."""
from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import numpy as np

from flowjit import dtypes


def dense_to_one_hot(labels_dense: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """Class indices [N] -> one-hot rows [N, num_classes] (float64, as TF1's)."""
    labels_dense = np.asarray(labels_dense).reshape(-1)
    one_hot = np.zeros((labels_dense.shape[0], num_classes))
    one_hot[np.arange(labels_dense.shape[0]), labels_dense] = 1
    return one_hot


class DataSet:
    """`DataSet(images, labels, one_hot=False, dtype=tf.float32, reshape=True, seed=None)`.

    `images` are [N, rows, cols, 1] uint8 (0..255). With `reshape` they become [N, rows*cols];
    with `dtype=float32` they are scaled to [0, 1] (uint8 keeps them). Shuffling uses a
    generator of the DataSet's own, seeded by `seed` (TF1 reseeded numpy's global one)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, fake_data: bool = False,
                 one_hot: bool = False, dtype=dtypes.float32, reshape: bool = True,
                 seed: Optional[int] = None) -> None:
        dtype = dtypes.as_dtype(dtype)
        if dtype not in (dtypes.uint8, dtypes.float32):
            raise TypeError(f"Invalid image dtype {dtype!r}, expected uint8 or float32")
        if fake_data:
            raise NotImplementedError("fake_data is not supported by flowjit's DataSet")
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.shape[0] != labels.shape[0]:
            raise ValueError(f"images.shape: {images.shape} labels.shape: {labels.shape}: "
                             f"they must have as many rows")
        if reshape:
            if images.ndim == 4 and images.shape[3] != 1:
                raise ValueError(f"reshape=True needs one channel, images have shape "
                                 f"{images.shape}")
            images = images.reshape(images.shape[0], int(np.prod(images.shape[1:])))
        if dtype is dtypes.float32:
            images = images.astype(np.float32) * np.float32(1.0 / 255.0)
        self._images = images
        self._labels = labels
        self._num_examples = images.shape[0]
        self._epochs_completed = 0
        self._index_in_epoch = 0
        self._rng = np.random.RandomState(seed)

    @property
    def images(self) -> np.ndarray:
        return self._images

    @property
    def labels(self) -> np.ndarray:
        return self._labels

    @property
    def num_examples(self) -> int:
        return self._num_examples

    @property
    def epochs_completed(self) -> int:
        return self._epochs_completed

    def _shuffle(self) -> None:
        order = self._rng.permutation(self._num_examples)
        self._images = self._images[order]
        self._labels = self._labels[order]

    def next_batch(self, batch_size: int, fake_data: bool = False,
                   shuffle: bool = True) -> Tuple[np.ndarray, np.ndarray]:
        """The next `batch_size` examples. The data is shuffled before the first epoch and
        between epochs; a batch that crosses the end of an epoch is the rest of that epoch
        followed by the start of the next one."""
        if not 0 < batch_size <= self._num_examples:
            raise ValueError(f"batch_size must be in 1..{self._num_examples} "
                             f"(the examples of this DataSet), got {batch_size}")
        start = self._index_in_epoch
        if self._epochs_completed == 0 and start == 0 and shuffle:
            self._shuffle()
        if start + batch_size <= self._num_examples:
            self._index_in_epoch = start + batch_size
            return self._images[start:start + batch_size], self._labels[start:start + batch_size]
        rest_images, rest_labels = self._images[start:], self._labels[start:]
        self._epochs_completed += 1
        if shuffle:
            self._shuffle()
        self._index_in_epoch = batch_size - rest_images.shape[0]
        end = self._index_in_epoch
        return (np.concatenate([rest_images, self._images[:end]]),
                np.concatenate([rest_labels, self._labels[:end]]))


class Datasets(NamedTuple):
    train: DataSet
    validation: DataSet
    test: DataSet
