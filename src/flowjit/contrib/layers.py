"""`tf.contrib.layers` basics: fully_connected, flatten, xavier_initializer and the l1/l2
regularizers (variables 'fully_connected/weights' and 'fully_connected/biases')."""
from __future__ import annotations

from flowjit import errors
from flowjit.graph.core import get_default_graph
from flowjit.initializers import VarianceScaling, Zeros
from flowjit.layers.core import add_weight, layer_scope
from flowjit.layers.core import flatten as _flatten
from flowjit.ops import math, nn
from flowjit.ops.base import convert_to_tensor


def xavier_initializer(uniform=True, seed=None, dtype=None):
    """Glorot's initializer: variance 2 / (fan_in + fan_out)."""
    return VarianceScaling(1.0, "fan_avg", "uniform" if uniform else "truncated_normal", seed)


xavier_initializer_conv2d = xavier_initializer


def variance_scaling_initializer(factor=2.0, mode="FAN_IN", uniform=False, seed=None,
                                 dtype=None):
    return VarianceScaling(factor, mode.lower(), "uniform" if uniform else "truncated_normal",
                           seed)


def l2_regularizer(scale, scope=None):
    """weights -> scale * sum(weights^2) / 2 (None when scale is 0)."""
    if scale < 0:
        raise ValueError(f"Setting a scale less than 0 on a regularizer: {scale}")

    def regularizer(weights):
        if not scale:
            return None
        with get_default_graph().name_scope(scope or "l2_regularizer") as name:
            return math.multiply(nn.l2_loss(weights), scale, name=name)
    return regularizer


def l1_regularizer(scale, scope=None):
    """weights -> scale * sum(|weights|)."""
    if scale < 0:
        raise ValueError(f"Setting a scale less than 0 on a regularizer: {scale}")

    def regularizer(weights):
        if not scale:
            return None
        with get_default_graph().name_scope(scope or "l1_regularizer") as name:
            return math.multiply(math.reduce_sum(math.abs(weights)), scale, name=name)
    return regularizer


def fully_connected(inputs, num_outputs, activation_fn=nn.relu, normalizer_fn=None,
                    normalizer_params=None, weights_initializer=None,
                    weights_regularizer=None, biases_initializer=Zeros(),
                    biases_regularizer=None, reuse=None, variables_collections=None,
                    outputs_collections=None, trainable=True, scope=None):
    """activation_fn(inputs @ weights + biases); no biases when a normalizer_fn is given
    or biases_initializer is None."""
    x = convert_to_tensor(inputs)
    depth = x.shape.dims[-1] if x.shape.dims else None
    if depth is None:
        raise errors.ShapeError(f"fully_connected: the last dimension of {x.describe()} must "
                                f"be known, got shape {x.shape}")
    with layer_scope(scope, "fully_connected", reuse):
        weights = add_weight("weights", [depth, num_outputs], x.dtype,
                             weights_initializer or xavier_initializer(), weights_regularizer,
                             trainable)
        if x.shape.ndims == 2:
            outputs = math.matmul(x, weights)
        else:
            outputs = math.tensordot(x, weights, [[x.shape.ndims - 1], [0]])
        if normalizer_fn is not None:
            outputs = normalizer_fn(outputs, **(normalizer_params or {}))
        elif biases_initializer is not None:
            biases = add_weight("biases", [num_outputs], x.dtype, biases_initializer,
                                biases_regularizer, trainable)
            outputs = nn.bias_add(outputs, biases)
        return activation_fn(outputs) if activation_fn is not None else outputs


def flatten(inputs, outputs_collections=None, scope=None):
    return _flatten(inputs, name=scope or "Flatten")
