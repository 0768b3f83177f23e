"""`tf.layers` convolutions and pooling: conv1d, conv2d, conv2d_transpose, and max/average
pooling in 1-D and 2-D, with TF1's variable names ('conv2d/kernel', 'conv2d/bias'), default
initializers and arguments ('valid' padding, channels_last)."""
from __future__ import annotations

from typing import Sequence, Tuple

from flowjit import errors
from flowjit.initializers import Zeros
from flowjit.layers.core import _float_input, add_weight, apply_activity, layer_scope
from flowjit.ops import conv, nn


def _pair(value, n: int, what: str) -> Tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    values = tuple(int(v) for v in value)
    if len(values) != n:
        raise errors.InvalidArgumentError(f"{what} must be an int or {n} ints, got {value!r}")
    return values


def _padding(padding: str) -> str:
    if padding.lower() not in ("same", "valid"):
        raise errors.InvalidArgumentError(f"padding must be 'same' or 'valid', got {padding!r}")
    return padding.upper()


def _channels(data_format: str, rank: int) -> Tuple[str, int]:
    """(the op's data_format, the channel axis) of a layer's 'channels_last/first'."""
    if data_format not in ("channels_last", "channels_first"):
        raise errors.InvalidArgumentError(f"data_format must be 'channels_last' or "
                                          f"'channels_first', got {data_format!r}")
    last = data_format == "channels_last"
    if rank == 3:
        return ("NWC" if last else "NCW"), (2 if last else 1)
    return ("NHWC" if last else "NCHW"), (3 if last else 1)


def _conv_layer(kind: str, inputs, filters, kernel_size, strides, padding, data_format,
                dilation_rate, activation, use_bias, kernel_initializer, bias_initializer,
                kernel_regularizer, bias_regularizer, activity_regularizer, trainable, name,
                reuse, output_padding=None):
    spatial = 1 if kind == "conv1d" else 2
    x = _float_input(inputs, kind)
    if x.shape.ndims != spatial + 2:
        raise errors.ShapeError(f"{kind}: inputs {x.describe()} must be {spatial + 2}-D, got "
                                f"shape {x.shape}")
    fmt, channel_axis = _channels(data_format, spatial + 2)
    depth = x.shape.dims[channel_axis]
    if depth is None:
        raise errors.ShapeError(f"{kind}: the channel dimension of {x.describe()} (shape "
                                f"{x.shape}) must be known")
    k = _pair(kernel_size, spatial, "kernel_size")
    s = _pair(strides, spatial, "strides")
    d = _pair(dilation_rate, spatial, "dilation_rate")
    pad = _padding(padding)
    with layer_scope(name, kind, reuse):
        if kind == "conv2d_transpose":
            kernel = add_weight("kernel", list(k) + [filters, depth], x.dtype,
                                kernel_initializer, kernel_regularizer, trainable)
            outputs = _transpose(x, kernel, filters, k, s, pad, fmt)
        else:
            kernel = add_weight("kernel", list(k) + [depth, filters], x.dtype,
                                kernel_initializer, kernel_regularizer, trainable)
            if spatial == 1:
                outputs = conv.conv1d(x, kernel, s[0], pad, data_format=fmt, dilations=d[0])
            else:
                outputs = conv.conv2d(x, kernel, list(s), pad, data_format=fmt,
                                      dilations=list(d))
        if use_bias:
            bias = add_weight("bias", [filters], x.dtype, bias_initializer, bias_regularizer,
                              trainable)
            outputs = nn.bias_add(outputs, bias) if fmt.endswith("C") else \
                outputs + _channels_first_bias(bias, spatial)
        return apply_activity(outputs, activation, activity_regularizer)


def _channels_first_bias(bias, spatial: int):
    from flowjit.ops import array
    return array.reshape(bias, [-1] + [1] * spatial)


def _transpose(x, kernel, filters: int, k: Sequence[int], s: Sequence[int], pad: str, fmt: str):
    """conv2d_transpose's output size per spatial dimension: in * stride ('same'), or
    in * stride + max(k - stride, 0) ('valid')."""
    dims = x.shape.dims
    h, w = (dims[1], dims[2]) if fmt == "NHWC" else (dims[2], dims[3])
    if h is None or w is None:
        raise errors.ShapeError(f"conv2d_transpose: the spatial dimensions of {x.describe()} "
                                f"(shape {x.shape}) must be known")

    def size(n, kk, ss):
        return n * ss if pad == "SAME" else n * ss + max(kk - ss, 0)
    oh, ow = size(h, k[0], s[0]), size(w, k[1], s[1])
    batch = dims[0] if dims[0] is not None else -1
    shape = [batch, oh, ow, filters] if fmt == "NHWC" else [batch, filters, oh, ow]
    if batch == -1:
        raise errors.UnimplementedError(f"conv2d_transpose needs the batch size of "
                                        f"{x.describe()} known when the graph is built")
    return conv.conv2d_transpose(x, kernel, shape, list(s), pad, data_format=fmt)


def _conv_api(kind: str):
    def layer(inputs, filters, kernel_size, strides=1, padding="valid",
              data_format="channels_last", dilation_rate=1, activation=None, use_bias=True,
              kernel_initializer=None, bias_initializer=Zeros(), kernel_regularizer=None,
              bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
              bias_constraint=None, trainable=True, name=None, reuse=None):
        return _conv_layer(kind, inputs, filters, kernel_size, strides, padding, data_format,
                           dilation_rate, activation, use_bias, kernel_initializer,
                           bias_initializer, kernel_regularizer, bias_regularizer,
                           activity_regularizer, trainable, name, reuse)
    layer.__name__ = kind
    layer.__doc__ = f"`tf.layers.{kind}`: variables '{kind}/kernel' and '{kind}/bias'."
    return layer


conv1d = _conv_api("conv1d")
conv2d = _conv_api("conv2d")
conv2d_transpose = _conv_api("conv2d_transpose")


def _pool_api(op, spatial: int, api: str):
    def layer(inputs, pool_size, strides, padding="valid", data_format="channels_last",
              name=None):
        x = _float_input(inputs, api)
        fmt, _ = _channels(data_format, spatial + 2)
        k, s = _pair(pool_size, spatial, "pool_size"), _pair(strides, spatial, "strides")
        return op(x, list(k), list(s), _padding(padding), data_format=fmt, name=name or api)
    layer.__name__ = api
    layer.__doc__ = f"`tf.layers.{api}`."
    return layer


max_pooling1d = _pool_api(conv.max_pool1d, 1, "max_pooling1d")
average_pooling1d = _pool_api(conv.avg_pool1d, 1, "average_pooling1d")
max_pooling2d = _pool_api(conv.max_pool, 2, "max_pooling2d")
average_pooling2d = _pool_api(conv.avg_pool, 2, "average_pooling2d")
