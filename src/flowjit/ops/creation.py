"""Ops that make tensors: placeholders, range, fill, zeros/ones and their `_like` forms."""
from __future__ import annotations

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.registry import ShapeInferenceError, TensorSpec, register_op
from flowjit.graph.shape import TensorShape, as_shape
from flowjit.ops.array import _same_spec
from flowjit.ops.base import apply_op, constant, convert_to_tensor
from flowjit.ops.shape_values import (int_tuple, known_dims, partial_value,
                                      register_dynamic_form, scalar_argument, shape_argument)


# -- placeholders ---------------------------------------------------------------------------
def _placeholder_infer(inputs, *, dtype, shape):
    return [TensorSpec(dtype, shape)]


# No kernel: the executor supplies the fed value (and reports a missing feed by name).
register_op("Placeholder", "placeholder", _placeholder_infer, None)


def placeholder(dtype, shape=None, name=None):
    """`tf.placeholder(dtype, shape=None, name=None)`; `None` dims accept any size."""
    return apply_op("Placeholder", [], {"dtype": dtypes.as_dtype(dtype),
                                        "shape": as_shape(shape)},
                    name=name, default_name="Placeholder")


def _placeholder_with_default_infer(inputs, *, shape):
    (default,) = inputs
    if not shape.is_compatible_with(default.shape):
        raise ShapeInferenceError(f"default value of shape {default.shape} is not compatible "
                                  f"with the placeholder shape {shape}")
    return [TensorSpec(default.dtype, shape)]


register_op("PlaceholderWithDefault", "placeholder_with_default",
            _placeholder_with_default_infer, lambda x, *, shape: x, stateful=True)


def placeholder_with_default(input, shape, name=None):
    default = convert_to_tensor(input)
    return apply_op("PlaceholderWithDefault", [default], {"shape": as_shape(shape)}, name=name,
                    default_name="PlaceholderWithDefault")


# -- range / fill / zeros / ones ------------------------------------------------------------
def _range_infer(inputs, *, start, limit, delta, dtype):
    n = len(np.arange(start, limit, delta))
    return [TensorSpec(dtype, TensorShape([n]))]


register_op("Range", "iota", _range_infer,
            lambda *, start, limit, delta, dtype: np.arange(start, limit, delta,
                                                            dtype=dtype.np_dtype))


def _range_bound(name: str, value: np.ndarray):
    if value.ndim:
        raise ValueError(f"range's {name} must be a scalar, got shape {list(value.shape)}")
    if name == "delta" and value == 0:
        raise ValueError("range delta must not be zero")
    return value.item()


def _range_partial(inputs, known, *, dtype):
    return [TensorSpec(dtype, TensorShape([None]))]


register_dynamic_form("Range", 0, ("start", "limit", "delta"), _range_bound, _range_partial)


def range(start, limit=None, delta=1, dtype=None, name="range"):  # noqa: A001
    """`tf.range`; bounds may be tensors computed from shapes (`tf.shape(x)[0]`)."""
    if limit is None:
        start, limit = 0, start
    args = [scalar_argument(v, "range bound") for v in (start, limit, delta)]
    if args[2][0] == 0:
        raise ValueError("range delta must not be zero")
    if dtype is None:
        floating = any(isinstance(v, float) or (t is not None and t.dtype.is_floating)
                       for v, t in args)
        dtype = dtypes.float32 if floating else dtypes.int32
    dtype = dtypes.as_dtype(dtype)
    cast = float if dtype.is_floating else int
    if any(t is not None for _, t in args):
        from flowjit.ops.math import cast as cast_op
        bounds = [convert_to_tensor(cast(v), dtype) if t is None else
                  t if t.dtype is dtype else cast_op(t, dtype) for v, t in args]
        return apply_op("DynamicRange", bounds, {"dtype": dtype, "known": None}, name=name)
    start, limit, delta = (cast(v) for v, _ in args)
    return apply_op("Range", [], {"start": start, "limit": limit, "delta": delta,
                                  "dtype": dtype}, name=name)


def _fill_infer(inputs, *, shape):
    (value,) = inputs
    if value.shape.ndims not in (0, None):
        raise ShapeInferenceError(f"fill value must be a scalar, got shape {value.shape}")
    return [TensorSpec(value.dtype, TensorShape(shape))]


register_op("Fill", "broadcast_scalar", _fill_infer,
            lambda value, *, shape: np.full(shape, value, dtype=value.dtype))


def _fill_partial(inputs, known):
    (value,) = inputs
    if value.shape.ndims not in (0, None):
        raise ShapeInferenceError(f"fill value must be a scalar, got shape {value.shape}")
    return [TensorSpec(value.dtype, known_dims(known))]


register_dynamic_form("Fill", 1, ("shape",), int_tuple, _fill_partial)


def fill(dims, value, name=None):
    """`tf.fill`; `dims` may be a tensor or a list mixing tensors and ints."""
    shape, tensor = shape_argument(dims, "fill dims")
    if tensor is not None:
        return apply_op("DynamicFill", [convert_to_tensor(value), tensor],
                        {"known": partial_value(tensor)}, name=name, default_name="Fill")
    if any(d < 0 for d in shape):
        raise errors.ShapeError(f"fill dims must be non-negative, got {list(shape)}")
    return apply_op("Fill", [convert_to_tensor(value)], {"shape": shape}, name=name,
                    default_name="Fill")


def zeros(shape, dtype=dtypes.float32, name=None):
    dtype = dtypes.as_dtype(dtype)
    return fill(shape, constant(np.zeros((), dtype.np_dtype), dtype), name=name or "zeros")


def ones(shape, dtype=dtypes.float32, name=None):
    dtype = dtypes.as_dtype(dtype)
    return fill(shape, constant(np.ones((), dtype.np_dtype), dtype), name=name or "ones")


register_op("ZerosLike", "zeros_like", _same_spec, np.zeros_like)
register_op("OnesLike", "ones_like", _same_spec, np.ones_like)


def zeros_like(tensor, dtype=None, name=None, optimize=True):
    x = convert_to_tensor(tensor)
    if dtype is not None and dtypes.as_dtype(dtype) is not x.dtype:
        x = _cast(x, dtype)
    return apply_op("ZerosLike", [x], name=name, default_name="zeros_like")


def ones_like(tensor, dtype=None, name=None, optimize=True):
    x = convert_to_tensor(tensor)
    if dtype is not None and dtypes.as_dtype(dtype) is not x.dtype:
        x = _cast(x, dtype)
    return apply_op("OnesLike", [x], name=name, default_name="ones_like")


def _cast(x, dtype):
    from flowjit.ops.math import cast
    return cast(x, dtype)
