"""`tf.nn.top_k` (TopKV2) and `tf.nn.in_top_k` (InTopKV2): the k largest entries of the last
axis, and whether a target class is among them."""
from __future__ import annotations

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.registry import ShapeInferenceError, TensorSpec, register_gradient, register_op
from flowjit.graph.shape import TensorShape
from flowjit.ops.array import INDEX_DTYPES
from flowjit.ops.base import (FLOATS, NUMERIC, apply_op, check_dtype, convert_to_tensor,
                              static_int)


def _top_k_infer(inputs, *, k, sorted):
    (x,) = inputs
    check_dtype(x, NUMERIC, "input")
    if k < 0:
        raise ShapeInferenceError(f"k must be >= 0, got {k}")
    if x.shape.dims is None:
        return [TensorSpec(x.dtype, TensorShape(None)),
                TensorSpec(dtypes.int32, TensorShape(None))]
    if not x.shape.dims:
        raise ShapeInferenceError("top_k needs an input of rank >= 1")
    last = x.shape.dims[-1]
    if last is not None and last < k:
        raise ShapeInferenceError(f"input must have at least k={k} columns, has {last}")
    shape = TensorShape(x.shape.dims[:-1] + (k,))
    return [TensorSpec(x.dtype, shape), TensorSpec(dtypes.int32, shape)]


def _top_k_kernel(x, *, k, sorted):
    """Descending order, the lower index first among equal values (as TF)."""
    if x.shape[-1] < k:
        raise errors.InvalidArgumentError(f"input must have at least k={k} columns, has "
                                          f"{x.shape[-1]}")
    n = x.shape[-1]
    # a stable ascending sort of the reversed row, read backwards: descending, ties in order
    order = np.argsort(x[..., ::-1], axis=-1, kind="stable")[..., ::-1]
    indices = (n - 1 - order[..., :k]).astype(np.int32)
    return np.take_along_axis(x, indices, axis=-1), indices


register_op("TopKV2", "top_k", _top_k_infer, _top_k_kernel, attr_defaults={"sorted": True})


@register_gradient("TopKV2")
def _top_k_grad(b, instr, grads):
    """Each value's gradient back to where it was taken from: a scatter-add."""
    x = instr.operands[0]
    indices = instr.results[1]
    g = grads[0]
    if g is None:
        return [None]
    shape = tuple(x.type.shape)
    n, k = shape[-1], instr.attrs["k"]
    rows = int(np.prod(shape[:-1], dtype=np.int64))
    starts = b.constant((np.arange(rows, dtype=np.int32) * n)[:, None], dtypes.int32)
    flat = b.add(b.reshape(indices, shape=(rows, k)), starts)
    scattered = b.segment_sum(b.reshape(g, shape=(rows * k,)), b.reshape(flat, shape=(rows * k,)),
                              num_segments=rows * n)
    return [b.reshape(scattered, shape=shape)]


def top_k(input, k=1, sorted=True, name=None):
    """(values, indices) of the k largest entries along the last axis."""
    x = convert_to_tensor(input)
    return apply_op("TopKV2", [x], {"k": static_int(k, "k"), "sorted": bool(sorted)},
                    name=name, default_name="TopKV2")


def _in_top_k_infer(inputs, *, k):
    predictions, targets = inputs
    check_dtype(predictions, FLOATS, "predictions")
    check_dtype(targets, INDEX_DTYPES, "targets")
    p, t = predictions.shape, targets.shape
    if p.ndims not in (2, None) or t.ndims not in (1, None):
        raise ShapeInferenceError(f"predictions must be 2-D and targets 1-D, got shapes {p} "
                                  f"and {t}")
    batch = p.dims[0] if p.dims else None
    if t.dims and not TensorShape([batch]).is_compatible_with(t):
        raise ShapeInferenceError(f"targets {t} must have one entry per row of predictions {p}")
    return [TensorSpec(dtypes.bool_, TensorShape([batch if batch is not None else
                                                  (t.dims[0] if t.dims else None)]))]


def _in_top_k_kernel(predictions, targets, *, k):
    """True where fewer than k classes score strictly higher than the target (ties at the
    boundary are all in, as TF); False for a target out of range or a non-finite score."""
    rows, classes = predictions.shape
    t = targets.astype(np.int64)
    valid = (t >= 0) & (t < classes)
    picked = predictions[np.arange(rows), np.where(valid, t, 0)]
    higher = np.sum(predictions > picked[:, None], axis=1)
    return valid & np.isfinite(picked) & (higher < k)


register_op("InTopKV2", "in_top_k", _in_top_k_infer, _in_top_k_kernel)
register_gradient("InTopKV2")(lambda b, instr, grads: [None, None])


def in_top_k(predictions, targets, k, name=None):
    p = convert_to_tensor(predictions)
    t = convert_to_tensor(targets, dtype_hint=dtypes.int32)
    return apply_op("InTopKV2", [p, t], {"k": static_int(k, "k")}, name=name,
                    default_name="in_top_k")
