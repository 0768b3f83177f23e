"""`tf.layers` (also `tf.compat.v1.layers`): TF1's functional layers."""
from flowjit.layers.convolutional import (average_pooling1d, average_pooling2d,  # noqa: F401
                                          conv1d, conv2d, conv2d_transpose, max_pooling1d,
                                          max_pooling2d)
from flowjit.layers.core import batch_normalization, dense, dropout, flatten  # noqa: F401

