"""MNIST as TF1's tutorials read it: `read_data_sets(train_dir, one_hot, ...)`.

The four IDX files are read from `train_dir`, gzipped (`train-images-idx3-ubyte.gz`) or not
(`train-images-idx3-ubyte`). Missing ones are downloaded from `source_url` (TF1's source by
default, `FLOWJIT_MNIST_URL` to change it), checked against their known size and MD5, and
renamed into place only when they match. With `FLOWJIT_MNIST=digits`, or offline with the
files absent, see `load_digits` (the error says both ways out).

An IDX file is a big-endian header - two zero bytes, a type byte (0x08: uint8), the number
of dimensions - then each dimension as a 32-bit integer, then the data.
"""
from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
import uuid
from typing import Dict, Optional, Tuple

import numpy as np

from flowjit import dtypes, errors
from flowjit.config import config
from flowjit.datasets.dataset import DataSet, Datasets, dense_to_one_hot

DEFAULT_SOURCE_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
# name -> (size in bytes, MD5) of the files TF1 downloaded
CHECKSUMS: Dict[str, Tuple[int, str]] = {
    TRAIN_IMAGES: (9912422, "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    TRAIN_LABELS: (28881, "d53e105ee54ea40749a09fcbcd1e9432"),
    TEST_IMAGES: (1648877, "9fb629c4189551a2d022fa330f9573f3"),
    TEST_LABELS: (4542, "ec29112dd5afa0611ce80d1b7f02629c"),
}
_IDX_UINT8 = 0x08


# -- IDX files ------------------------------------------------------------------------------------
def read_idx(path: str) -> np.ndarray:
    """The uint8 array of an IDX file (gzipped or not); DataLossError names a bad file."""
    try:
        opener = gzip.open if path.endswith(".gz") else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:  # gzip: truncated stream, bad magic
        raise errors.DataLossError(f"Cannot read IDX file '{path}': {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise errors.DataLossError(f"'{path}' is not an IDX file (bad magic number)")
    if data[2] != _IDX_UINT8:
        raise errors.UnimplementedError(f"IDX file '{path}' holds type 0x{data[2]:02x}; "
                                        f"flowjit reads uint8 (0x08) files")
    ndims = data[3]
    header = 4 + 4 * ndims
    if len(data) < header:
        raise errors.DataLossError(f"IDX file '{path}' is truncated in its header")
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], ">u4"))
    expected = int(np.prod(shape, dtype=np.int64))
    if len(data) - header != expected:
        raise errors.DataLossError(
            f"IDX file '{path}' should hold {expected} bytes of data for shape {list(shape)}, "
            f"it holds {len(data) - header}: truncated or corrupted")
    return np.frombuffer(data, np.uint8, offset=header).reshape(shape)


def extract_images(path: str) -> np.ndarray:
    """[N, rows, cols, 1] uint8 images of an IDX image file."""
    images = read_idx(path)
    if images.ndim != 3:
        raise errors.DataLossError(f"'{path}' holds a {images.ndim}-D array, not images "
                                   f"(3-D: count, rows, cols)")
    return images[..., None]


def extract_labels(path: str, one_hot: bool = False, num_classes: int = 10) -> np.ndarray:
    labels = read_idx(path)
    if labels.ndim != 1:
        raise errors.DataLossError(f"'{path}' holds a {labels.ndim}-D array, not labels (1-D)")
    return dense_to_one_hot(labels, num_classes) if one_hot else labels


# -- finding and downloading ------------------------------------------------------------------------
def _md5(path: str) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def maybe_download(filename: str, work_directory: str, source_url: str,
                   checksums: Optional[Dict[str, Tuple[int, str]]] = None) -> str:
    """The path of `filename` in `work_directory` (or its unzipped form), downloading it from
    `source_url + filename` when absent; a download whose size or MD5 differs from
    `checksums[filename]` is discarded with a DataLossError."""
    path = os.path.join(work_directory, filename)
    for candidate in (path, path[:-3] if path.endswith(".gz") else None):
        if candidate and os.path.exists(candidate):
            return candidate
    os.makedirs(work_directory, exist_ok=True)
    url = source_url + filename
    temp = f"{path}.download-{uuid.uuid4().hex[:8]}"
    try:
        try:
            with urllib.request.urlopen(url, timeout=30) as response, open(temp, "wb") as f:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    f.write(chunk)
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", e)
            raise errors.UnavailableError(
                f"MNIST file '{filename}' is not in '{work_directory}' and could not be "
                f"downloaded from {url} ({reason}). Put the four MNIST files ({TRAIN_IMAGES}, "
                f"{TRAIN_LABELS}, {TEST_IMAGES}, {TEST_LABELS}; gzipped or not) in "
                f"'{work_directory}', set FLOWJIT_MNIST_URL to a mirror, or set "
                f"FLOWJIT_MNIST=digits to use scikit-learn's digits offline.") from None
        expected = (checksums if checksums is not None else CHECKSUMS).get(filename)
        if expected is not None:
            size, md5 = os.path.getsize(temp), _md5(temp)
            if (size, md5) != expected:
                raise errors.DataLossError(
                    f"Downloaded '{url}' has {size} bytes and MD5 {md5}; expected "
                    f"{expected[0]} bytes and MD5 {expected[1]}. Discarded it.")
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)
    return path


def read_data_sets(train_dir: str, fake_data: bool = False, one_hot: bool = False,
                   dtype=dtypes.float32, reshape: bool = True, validation_size: int = 5000,
                   seed: Optional[int] = None, source_url: Optional[str] = None,
                   checksums: Optional[Dict[str, Tuple[int, str]]] = None) -> Datasets:
    """TF1's `input_data.read_data_sets`: MNIST's train (less the first `validation_size`
    images, which are the validation set) and test sets as `DataSet`s.

    With `FLOWJIT_MNIST=digits` it returns `load_digits(28, ...)` instead, its validation set
    `validation_size` scaled by the data's size (5000 of MNIST's 60000: 1/12)."""
    if fake_data:
        raise NotImplementedError("fake_data is not supported; use FLOWJIT_MNIST=digits for "
                                  "small offline data")
    if config.mnist == "digits":
        from flowjit.datasets.digits import load_digits
        return load_digits(28, one_hot=one_hot, dtype=dtype, reshape=reshape,
                           validation_size=round(validation_size / 12),
                           seed=0 if seed is None else seed)
    if config.mnist != "mnist":
        raise ValueError(f"FLOWJIT_MNIST is {config.mnist!r}; expected 'mnist' or 'digits'")
    source_url = source_url or config.mnist_url or DEFAULT_SOURCE_URL
    if not source_url.endswith("/"):
        source_url += "/"

    def fetch(name: str) -> str:
        return maybe_download(name, train_dir, source_url, checksums)

    train_images = extract_images(fetch(TRAIN_IMAGES))
    train_labels = extract_labels(fetch(TRAIN_LABELS), one_hot=one_hot)
    test_images = extract_images(fetch(TEST_IMAGES))
    test_labels = extract_labels(fetch(TEST_LABELS), one_hot=one_hot)
    if not 0 <= validation_size <= len(train_images):
        raise ValueError(f"Validation size should be between 0 and {len(train_images)}. "
                         f"Received: {validation_size}.")
    options = dict(one_hot=one_hot, dtype=dtype, reshape=reshape, seed=seed)
    return Datasets(
        train=DataSet(train_images[validation_size:], train_labels[validation_size:], **options),
        validation=DataSet(train_images[:validation_size], train_labels[:validation_size],
                           **options),
        test=DataSet(test_images, test_labels, **options))


def load_mnist(train_dir: str = "MNIST-data") -> Datasets:
    return read_data_sets(train_dir)
