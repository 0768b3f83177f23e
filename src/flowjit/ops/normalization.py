"""Normalization in `tf.nn`: moments, batch_normalization, fused_batch_norm, l2_normalize
and local_response_normalization, composed of registered ops (so their gradients, fusion
and code generation come from those ops' entries in the op table)."""
from __future__ import annotations

import numpy as np

from flowjit import errors
from flowjit.graph.core import get_default_graph
from flowjit.ops import array, math
from flowjit.ops.base import constant, convert_to_tensor, normalize_axis
from flowjit.graph.registry import ShapeInferenceError
from flowjit.ops import indexing


def _axes(x, axes, what="axes"):
    rank = x.shape.ndims
    values = [axes] if isinstance(axes, int) else list(axes)
    if rank is None:
        return values
    try:
        return sorted({normalize_axis(int(a), rank, what) for a in values})
    except ShapeInferenceError as e:
        raise errors.ShapeError(f"{e}: {x.describe()} with shape {x.shape}") from None


def moments(x, axes, shift=None, name=None, keep_dims=None, keepdims=None):
    """(mean, variance) of `x` over `axes`; the variance is mean((x - stop_gradient(mean))^2),
    as TF1 computes it."""
    x = convert_to_tensor(x)
    keep = bool(keepdims if keepdims is not None else keep_dims)
    with get_default_graph().name_scope(name or "moments"):
        axes = _axes(x, axes)
        mean = math.reduce_mean(x, axes, keepdims=True, name="mean")
        variance = math.reduce_mean(
            math.squared_difference(x, array.stop_gradient(mean)), axes, keepdims=True,
            name="variance")
        if not keep:
            mean = array.squeeze(mean, axes)
            variance = array.squeeze(variance, axes)
        return mean, variance


def batch_normalization(x, mean, variance, offset, scale, variance_epsilon, name=None):
    """(x - mean) * scale / sqrt(variance + epsilon) + offset, as x * inv + (offset -
    mean * inv) with inv = scale * rsqrt(variance + epsilon) (TF1's arrangement)."""
    x = convert_to_tensor(x)
    with get_default_graph().name_scope(name or "batchnorm"):
        inv = math.rsqrt(math.add(variance, variance_epsilon))
        if scale is not None:
            inv = math.multiply(inv, scale)
        shift = math.multiply(mean, inv)
        bias = math.subtract(offset, shift) if offset is not None else math.negative(shift)
        return math.add(math.multiply(x, inv), bias)


def fused_batch_norm(x, scale, offset, mean=None, variance=None, epsilon=0.001,
                     data_format="NHWC", is_training=True, name=None,
                     exponential_avg_factor=1.0):
    """(y, batch_mean, batch_variance) of a 4-D input normalized per channel. Training
    normalizes with the batch's own statistics and returns the variance with Bessel's
    correction (n / (n - 1)), as TF's kernel does, for the moving averages."""
    x = convert_to_tensor(x)
    if x.shape.ndims not in (4, None):
        raise errors.ShapeError(f"fused_batch_norm needs a 4-D input, got {x.describe()} with "
                                f"shape {x.shape}")
    if data_format not in ("NHWC", "NCHW"):
        raise errors.InvalidArgumentError(f"data_format must be NHWC or NCHW, got "
                                          f"{data_format!r}")
    channel = 3 if data_format == "NHWC" else 1
    axes = [a for a in range(4) if a != channel]
    with get_default_graph().name_scope(name or "FusedBatchNorm"):
        scale, offset = convert_to_tensor(scale), convert_to_tensor(offset)
        shape = [1, 1, 1, -1] if data_format == "NHWC" else [1, -1, 1, 1]

        def per_channel(v):
            return array.reshape(v, shape)
        if is_training:
            batch_mean, batch_var = moments(x, axes)
            dims = x.shape.dims
            if dims is not None and all(dims[a] is not None for a in axes):
                n = int(np.prod([dims[a] for a in axes]))
                factor = n / max(n - 1, 1)
            else:
                count = math.cast(math.reduce_prod(
                    indexing.gather(array.shape(x), axes)), x.dtype)
                factor = math.truediv(count, math.maximum(math.subtract(count, 1.0), 1.0))
            y = batch_normalization(x, per_channel(batch_mean), per_channel(batch_var),
                                    per_channel(offset), per_channel(scale), epsilon)
            return y, batch_mean, math.multiply(batch_var, factor)
        if mean is None or variance is None:
            raise errors.InvalidArgumentError("fused_batch_norm with is_training=False needs "
                                              "mean and variance")
        mean, variance = convert_to_tensor(mean), convert_to_tensor(variance)
        y = batch_normalization(x, per_channel(mean), per_channel(variance),
                                per_channel(offset), per_channel(scale), epsilon)
        return y, array.identity(mean), array.identity(variance)


def l2_normalize(x, axis=None, epsilon=1e-12, name=None, dim=None):
    """x / sqrt(max(sum(x^2, axis), epsilon))."""
    x = convert_to_tensor(x)
    axis = dim if axis is None else axis
    with get_default_graph().name_scope(name or "l2_normalize") as scope:
        axes = None if axis is None else _axes(x, axis, "axis")
        square_sum = math.reduce_sum(math.square(x), axes, keepdims=True)
        inv = math.rsqrt(math.maximum(square_sum, epsilon))
        return math.multiply(x, inv, name=scope)


def local_response_normalization(input, depth_radius=5, bias=1.0, alpha=1.0, beta=0.5,
                                 name=None):
    """x / (bias + alpha * sum of x^2 over the depth window [d - r, d + r]) ** beta, on a 4-D
    NHWC input. The window sums are one matmul with a 0/1 band matrix over the depth."""
    x = convert_to_tensor(input)
    if x.shape.ndims not in (4, None):
        raise errors.ShapeError(f"local_response_normalization needs a 4-D input, got "
                                f"{x.describe()} with shape {x.shape}")
    depth = x.shape.dims[3] if x.shape.dims else None
    if depth is None:
        raise errors.UnimplementedError(f"local_response_normalization needs the depth of "
                                        f"{x.describe()} known when the graph is built")
    with get_default_graph().name_scope(name or "LRN") as scope:
        d = np.arange(depth)
        band = (np.abs(d[:, None] - d[None, :]) <= depth_radius).astype(x.dtype.np_dtype)
        squares = array.reshape(math.square(x), [-1, depth])
        window = array.reshape(math.matmul(squares, constant(band)), array.shape(x))
        base = math.add(math.multiply(window, alpha), bias)
        return math.multiply(x, math.pow(base, -float(beta)), name=scope)


lrn = local_response_normalization
