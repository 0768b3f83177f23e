"""TF1's `tensorflow.examples.tutorials.mnist.input_data`:

    from flowjit.examples.tutorials.mnist import input_data
    mnist = input_data.read_data_sets("MNIST_data/", one_hot=True)
    batch_xs, batch_ys = mnist.train.next_batch(100)

See `flowjit.datasets.mnist` (and FLOWJIT_MNIST=digits for offline use).
"""
from flowjit.datasets.dataset import DataSet, Datasets, dense_to_one_hot  # noqa: F401
from flowjit.datasets.mnist import (DEFAULT_SOURCE_URL, extract_images,  # noqa: F401
                                    extract_labels, maybe_download, read_data_sets)
