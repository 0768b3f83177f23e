"""`tf.nn`: activations, softmax, losses, convolutions, pooling, normalization, embeddings,
ranking, and the recurrent networks (`tf.nn.rnn_cell`, `dynamic_rnn`, ...)."""
from flowjit.ops.math import sigmoid, tanh  # noqa: F401
from flowjit.ops.nn import (bias_add, crelu, dropout, elu, embedding_lookup, l2_loss,  # noqa: F401
                            leaky_relu, log_poisson_loss, log_softmax, relu, relu6, selu,
                            sigmoid_cross_entropy_with_logits, silu, softmax,
                            softmax_cross_entropy_with_logits,
                            softmax_cross_entropy_with_logits_v2, softplus, softsign,
                            sparse_softmax_cross_entropy_with_logits, swish,
                            weighted_cross_entropy_with_logits)
from flowjit.ops.conv import (avg_pool, avg_pool1d, avg_pool2d, conv1d, conv2d,  # noqa: F401
                              conv2d_backprop_filter, conv2d_backprop_input, conv2d_transpose,
                              convolution, depthwise_conv2d, max_pool, max_pool1d, max_pool2d)
from flowjit.ops.normalization import (batch_normalization, fused_batch_norm,  # noqa: F401
                                       l2_normalize, local_response_normalization, lrn,
                                       moments)
from flowjit.ops.ranking import in_top_k, top_k  # noqa: F401
from flowjit.nn import rnn_cell  # noqa: F401,E402
from flowjit.nn.rnn import (bidirectional_dynamic_rnn, dynamic_rnn,  # noqa: F401,E402
                            static_bidirectional_rnn, static_rnn)
