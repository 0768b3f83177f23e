"""`tf.layers` core layers: dense, flatten, dropout and batch_normalization, as TF1's
functional layers build them: a variable scope named after the layer ('dense', 'dense_1',
... or `name`), variables made by `get_variable` with TF1's names and default initializers
(kernel: glorot_uniform, bias: zeros), regularizer losses in REGULARIZATION_LOSSES, and
batch normalization's moving-average updates in UPDATE_OPS."""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Optional

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import GraphKeys, Tensor, get_default_graph
from flowjit.initializers import Ones, Zeros
from flowjit.ops import array, creation, math, nn, normalization, state
from flowjit.ops.base import convert_to_tensor
from flowjit.ops.normalization import fused_batch_norm, moments
from flowjit.variables import get_variable, variable_scope


@contextlib.contextmanager
def layer_scope(name: Optional[str], default_name: str, reuse: Any = None) -> Iterator[None]:
    """The variable scope of one layer: `name`, or `default_name` made unique."""
    with variable_scope(name, default_name=default_name, reuse=reuse):
        yield


def add_weight(name: str, shape, dtype, initializer, regularizer=None, trainable=True):
    return get_variable(name, shape, dtype=dtype, initializer=initializer,
                        regularizer=regularizer, trainable=trainable)


def apply_activity(outputs: Tensor, activation, activity_regularizer) -> Tensor:
    if activation is not None:
        outputs = activation(outputs)
    if activity_regularizer is not None:
        loss = activity_regularizer(outputs)
        if loss is not None:
            get_default_graph().add_to_collection(GraphKeys.REGULARIZATION_LOSSES, loss)
    return outputs


def _float_input(inputs, layer: str) -> Tensor:
    x = convert_to_tensor(inputs)
    if not x.dtype.is_floating:
        raise errors.DTypeError(f"{layer}: inputs {x.describe()} must be floating point, got "
                                f"{x.dtype.name}")
    return x


def dense(inputs, units, activation=None, use_bias=True, kernel_initializer=None,
          bias_initializer=Zeros(), kernel_regularizer=None, bias_regularizer=None,
          activity_regularizer=None, kernel_constraint=None, bias_constraint=None,
          trainable=True, name=None, reuse=None):
    """outputs = activation(inputs @ kernel + bias), over the last axis of `inputs`."""
    x = _float_input(inputs, "dense")
    depth = x.shape.dims[-1] if x.shape.dims else None
    if depth is None:
        raise errors.ShapeError(f"dense: the last dimension of {x.describe()} must be known, "
                                f"got shape {x.shape}")
    with layer_scope(name, "dense", reuse):
        kernel = add_weight("kernel", [depth, units], x.dtype, kernel_initializer,
                            kernel_regularizer, trainable)
        if x.shape.ndims == 2:
            outputs = math.matmul(x, kernel)
        else:
            outputs = math.tensordot(x, kernel, [[x.shape.ndims - 1], [0]])
        if use_bias:
            bias = add_weight("bias", [units], x.dtype, bias_initializer, bias_regularizer,
                              trainable)
            outputs = nn.bias_add(outputs, bias)
        return apply_activity(outputs, activation, activity_regularizer)


def flatten(inputs, name=None, data_format="channels_last"):
    """[batch, ...] -> [batch, prod(...)]."""
    x = convert_to_tensor(inputs)
    if x.shape.ndims is None:
        raise errors.ShapeError(f"flatten: {x.describe()} must have a known rank")
    if data_format == "channels_first" and x.shape.ndims > 2:
        x = array.transpose(x, [0] + list(range(2, x.shape.ndims)) + [1])
    rest = x.shape.dims[1:]
    with get_default_graph().name_scope(name or "flatten") as scope:
        if all(d is not None for d in rest):
            return array.reshape(x, [-1, int(np.prod(rest, dtype=np.int64))], name=scope)
        return array.reshape(x, [array.shape(x)[0], -1], name=scope)


def _is_tensor(value) -> bool:
    return isinstance(value, Tensor) or hasattr(value, "_as_graph_element")


def dropout(inputs, rate=0.5, noise_shape=None, seed=None, training=False, name=None):
    """Drops a `rate` fraction of the inputs (scaling the rest by 1 / (1 - rate)) when
    `training` (a Python bool, or a bool tensor: both branches are built and one selected)."""
    x = convert_to_tensor(inputs)
    with get_default_graph().name_scope(name or "dropout") as scope:
        if not _is_tensor(training):
            if not training:
                return array.identity(x, name=scope)
            return nn.dropout(x, rate=rate, noise_shape=noise_shape, seed=seed)
        dropped = nn.dropout(x, rate=rate, noise_shape=noise_shape, seed=seed)
        return array.where_v2(convert_to_tensor(training), dropped, x, name=scope)


def batch_normalization(inputs, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True,
                        beta_initializer=Zeros(), gamma_initializer=Ones(),
                        moving_mean_initializer=Zeros(), moving_variance_initializer=Ones(),
                        beta_regularizer=None, gamma_regularizer=None, beta_constraint=None,
                        gamma_constraint=None, training=False, trainable=True, name=None,
                        reuse=None, renorm=False, renorm_clipping=None, renorm_momentum=0.99,
                        fused=None, virtual_batch_size=None, adjustment=None):
    """Normalizes over every axis but `axis` with the batch's statistics when `training`
    (a bool or a bool tensor), else with the moving averages, whose updates (moving =
    moving * momentum + batch * (1 - momentum)) go to UPDATE_OPS. A 4-D input normalized
    over its channels takes the fused path, whose batch variance has Bessel's correction
    (as TF1's default fused=None does); other inputs update with the biased variance."""
    if renorm or virtual_batch_size or adjustment:
        raise errors.UnimplementedError("batch_normalization: renorm, virtual_batch_size and "
                                        "adjustment are not supported")
    x = _float_input(inputs, "batch_normalization")
    rank = x.shape.ndims
    if rank is None:
        raise errors.ShapeError(f"batch_normalization: {x.describe()} must have a known rank")
    axis = axis % rank
    depth = x.shape.dims[axis]
    if depth is None:
        raise errors.ShapeError(f"batch_normalization: axis {axis} of {x.describe()} (shape "
                                f"{x.shape}) must be known")
    param_dtype = dtypes.float32 if x.dtype is dtypes.float16 else x.dtype
    with layer_scope(name, "batch_normalization", reuse):
        gamma = add_weight("gamma", [depth], param_dtype, gamma_initializer, gamma_regularizer,
                           trainable) if scale else None
        beta = add_weight("beta", [depth], param_dtype, beta_initializer, beta_regularizer,
                          trainable) if center else None
        moving_mean = add_weight("moving_mean", [depth], param_dtype, moving_mean_initializer,
                                 trainable=False)
        moving_var = add_weight("moving_variance", [depth], param_dtype,
                                moving_variance_initializer, trainable=False)
        reduce_axes = [a for a in range(rank) if a != axis]
        fused_path = rank == 4 and axis in (1, 3)
        if fused_path:
            gamma_t = gamma if gamma is not None else creation.ones_like(moving_mean)
            beta_t = beta if beta is not None else creation.zeros_like(moving_mean)
            y, batch_mean, batch_var = fused_batch_norm(
                x, gamma_t, beta_t, epsilon=epsilon,
                data_format="NHWC" if axis == 3 else "NCHW")
        else:
            batch_mean, batch_var = moments(x, reduce_axes)
            y = None
        if not _is_tensor(training) and not training:
            return _normalize(x, moving_mean, moving_var, beta, gamma, epsilon, axis, rank)
        if y is None:
            y = _normalize(x, batch_mean, batch_var, beta, gamma, epsilon, axis, rank)
        decay = 1.0 - momentum
        if _is_tensor(training):
            training = convert_to_tensor(training)
            decay = array.where_v2(training, convert_to_tensor(decay, dtype=param_dtype),
                                   convert_to_tensor(0.0, dtype=param_dtype))
            y = array.where_v2(training, y, _normalize(x, moving_mean, moving_var, beta, gamma,
                                                       epsilon, axis, rank))
        graph = get_default_graph()
        for var, value, what in ((moving_mean, batch_mean, "AssignMovingAvg"),
                                 (moving_var, batch_var, "AssignMovingAvg_1")):
            with graph.name_scope(what):
                step = math.multiply(math.subtract(var, value), decay)
                graph.add_to_collection(GraphKeys.UPDATE_OPS, state.assign_sub(var, step))
        return y


def _normalize(x, mean, var, beta, gamma, epsilon, axis, rank):
    shape = [1] * rank
    shape[axis] = -1

    def broadcast(v):
        return None if v is None else array.reshape(v, shape)
    return normalization.batch_normalization(x, broadcast(mean), broadcast(var),
                                             broadcast(beta), broadcast(gamma), epsilon)
