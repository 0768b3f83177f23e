"""`tf.nn`: activations, softmax and losses (the rest of the nn library comes later)."""
from flowjit.ops.math import sigmoid, tanh  # noqa: F401
from flowjit.ops.nn import (bias_add, dropout, elu, l2_loss, leaky_relu, log_softmax,  # noqa: F401
                            relu, relu6, sigmoid_cross_entropy_with_logits, softmax,
                            softmax_cross_entropy_with_logits,
                            softmax_cross_entropy_with_logits_v2, softplus,
                            sparse_softmax_cross_entropy_with_logits)
