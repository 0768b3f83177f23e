"""Indexing ops: slice, strided slicing (`x[1:, ::-1, None]`), gather, one_hot, and the
adjoints gradients use (strided_slice_grad, unsorted_segment_sum)."""
from __future__ import annotations

import builtins
from typing import Any, List, Optional

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import Tensor
from flowjit.graph.registry import (GATHER, LAYOUT, ShapeInferenceError, TensorSpec,
                                    register_op)
from flowjit.graph.shape import TensorShape, row_major_strides
from flowjit.ops.array import INDEX_DTYPES, _as_build_error, _scalar_value
from flowjit.ops.base import (INTS, apply_op, check_dtype, convert_to_tensor, normalize_axis,
                              static_int, static_int_list)
from flowjit.ops.shape_values import (int_tuple, partial_value, register_dynamic_form,
                                      shape_argument)


# -- slicing ----------------------------------------------------------------------------------
def _slice_infer(inputs, *, begin, size):
    (x,) = inputs
    if x.shape.dims is None:
        return [TensorSpec(x.dtype, TensorShape([None if s == -1 else s for s in size]))]
    if len(begin) != len(x.shape.dims) or len(size) != len(x.shape.dims):
        raise ShapeInferenceError(f"slice begin {list(begin)} and size {list(size)} must "
                                  f"have one entry per dimension of shape {x.shape}")
    dims = []
    for b, s, d in zip(begin, size, x.shape.dims):
        if b < 0 or (d is not None and (b > d or (s != -1 and b + s > d))):
            raise ShapeInferenceError(f"slice [{b}, {b}+{s}) is out of range for a dimension "
                                      f"of size {d}")
        dims.append((None if d is None else d - b) if s == -1 else s)
    return [TensorSpec(x.dtype, TensorShape(dims))]


def _slice_kernel(x, *, begin, size):
    index = []
    for b, s, d in zip(begin, size, x.shape):
        end = d if s == -1 else b + s
        if b > d or end > d:
            raise errors.IndexOutOfRangeError(f"slice [{b}, {end}) is out of range for a "
                                              f"dimension of size {d} (input shape "
                                              f"{list(x.shape)})")
        index.append(builtins.slice(b, end))
    return x[tuple(index)]


def _slice_map(in_shape, out_shape, *, begin, size):
    strides = row_major_strides(in_shape)
    return sum(b * s for b, s in zip(begin, strides)), strides


register_op("Slice", "slice", _slice_infer, _slice_kernel, role=LAYOUT, affine_map=_slice_map)


def _slice_partial(inputs, known):
    (x,) = inputs
    begin, size = known
    rank = x.shape.ndims
    for part in (begin, size):
        if part is not None:
            if rank is not None and len(part) != rank:
                raise ShapeInferenceError(f"slice begin and size must have one entry per "
                                          f"dimension of shape {x.shape}")
            rank = len(part)
    if rank is None:
        return [TensorSpec(x.dtype, TensorShape(None))]
    begin = begin or (None,) * rank
    size = size or (None,) * rank
    dims_in = x.shape.dims or (None,) * rank
    dims = [s if s is not None and s >= 0 else
            (d - b if s == -1 and None not in (b, d) else None)
            for b, s, d in zip(begin, size, dims_in)]
    return [TensorSpec(x.dtype, TensorShape(dims))]


register_dynamic_form("Slice", 1, ("begin", "size"),
                      lambda name, v: int_tuple(name, v, -1 if name == "size" else 0),
                      _slice_partial)


@_as_build_error
def slice(input_, begin, size, name=None):  # noqa: A001 - TF1 name
    """`tf.slice`; begin and size may be tensors computed from shapes."""
    x = convert_to_tensor(input_)
    begin, begin_tensor = shape_argument(begin, "begin")
    size, size_tensor = shape_argument(size, "size")
    if begin_tensor is not None or size_tensor is not None:
        begin_tensor = begin_tensor if begin_tensor is not None else \
            convert_to_tensor(np.array(begin, np.int32))
        size_tensor = size_tensor if size_tensor is not None else \
            convert_to_tensor(np.array(size, np.int32))
        if begin_tensor.dtype is not size_tensor.dtype:
            from flowjit.ops.math import cast
            begin_tensor = cast(begin_tensor, size_tensor.dtype)
        return apply_op("DynamicSlice", [x, begin_tensor, size_tensor],
                        {"known": (partial_value(begin_tensor), partial_value(size_tensor))},
                        name=name, default_name="Slice")
    return apply_op("Slice", [x], {"begin": begin, "size": size}, name=name,
                    default_name="Slice")


# A strided slice is described by a tuple of index entries, each one of
#   ("index", i)  ("range", start, stop, step)  ("newaxis",)
# with Ellipsis already expanded (so the rank must be known), None meaning "to the end".
def _strided_slice_infer(inputs, *, spec):
    (x,) = inputs
    dims_in = list(x.shape.dims)
    dims: List[Optional[int]] = []
    axis = 0
    for entry in spec:
        if entry[0] == "newaxis":
            dims.append(1)
            continue
        d = dims_in[axis]
        if entry[0] == "index":
            i = entry[1]
            if d is not None and not -d <= i < d:
                raise ShapeInferenceError(f"index {i} is out of bounds for dimension {axis} "
                                          f"with size {d}")
        else:
            _, start, stop, step = entry
            dims.append(None if d is None else len(builtins.range(*builtins.slice(start, stop, step)
                                                         .indices(d))))
        axis += 1
    dims.extend(dims_in[axis:])
    return [TensorSpec(x.dtype, TensorShape(dims))]


def _strided_slice_kernel(x, *, spec):
    index = []
    for axis, entry in enumerate(e for e in spec if e[0] != "newaxis"):
        if entry[0] == "index" and not -x.shape[axis] <= entry[1] < x.shape[axis]:
            raise errors.IndexOutOfRangeError(
                f"index {entry[1]} is out of bounds for dimension {axis} with size "
                f"{x.shape[axis]} (input shape {list(x.shape)})")
    for entry in spec:
        if entry[0] == "newaxis":
            index.append(None)
        elif entry[0] == "index":
            index.append(entry[1])
        else:
            index.append(builtins.slice(*entry[1:]))
    return x[tuple(index)]


def _strided_slice_map(in_shape, out_shape, *, spec):
    """Walks the index entries: an index moves the base, a slice scales a stride, a new
    axis has stride 0."""
    st = row_major_strides(in_shape)
    base, strides, axis = 0, [], 0
    for entry in spec:
        if entry[0] == "newaxis":
            strides.append(0)
            continue
        if entry[0] == "index":
            base += (entry[1] % in_shape[axis]) * st[axis]
        else:
            start, _stop, step = builtins.slice(*entry[1:]).indices(in_shape[axis])
            base += start * st[axis]
            strides.append(step * st[axis])
        axis += 1
    return base, strides + st[axis:]


register_op("StridedSlice", "strided_slice", _strided_slice_infer, _strided_slice_kernel,
            role=LAYOUT, affine_map=_strided_slice_map)


def _index_entry(item: Any) -> tuple:
    if item is None:
        return ("newaxis",)
    if isinstance(item, builtins.slice):
        parts = []
        for part in (item.start, item.stop, item.step):
            parts.append(None if part is None else static_int(part, "slice bound"))
        if parts[2] == 0:
            raise ValueError("slice step cannot be zero")
        return ("range", *parts)
    if isinstance(item, (bool, np.bool_)):
        raise TypeError("boolean indexing of tensors is not supported; use tf.boolean_mask")
    if isinstance(item, Tensor) and item._value is None:
        raise TypeError(f"Indexing with a run-time Tensor {item.describe()} is not supported "
                        f"by __getitem__; use tf.gather(x, indices).")
    return ("index", static_int(item, "index"))


def strided_slice_by_index(x: Tensor, key: Any, name: str = "strided_slice") -> Tensor:
    """`x[key]` for ints, slices, `...` and `tf.newaxis`, as numpy basic indexing."""
    items = list(key) if isinstance(key, tuple) else [key]
    n_ellipsis = sum(1 for k in items if k is Ellipsis)
    if n_ellipsis > 1:
        raise ValueError("an index can only have a single ellipsis ('...')")
    rank = x.shape.ndims
    consumed = sum(1 for k in items if k is not None and k is not Ellipsis)
    if n_ellipsis:
        if rank is None:
            raise errors.UnimplementedError(f"'...' indexing needs the rank of {x.describe()}")
        pos = items.index(Ellipsis)
        items[pos:pos + 1] = [builtins.slice(None, None, None)] * (rank - consumed)
    if rank is not None and consumed > rank:
        raise errors.IndexOutOfRangeError(f"Too many indices ({consumed}) for {x.describe()} "
                                          f"of rank {rank}")
    if rank is None:
        raise errors.UnimplementedError(f"Indexing needs the rank of {x.describe()}")
    spec = tuple(_index_entry(k) for k in items)
    try:
        return apply_op("StridedSlice", [x], {"spec": spec}, name=name)
    except errors.ShapeError as e:
        raise errors.IndexOutOfRangeError(e.message, e.op) from None


def strided_slice(input_, begin, end, strides=None, begin_mask=0, end_mask=0,
                  ellipsis_mask=0, new_axis_mask=0, shrink_axis_mask=0, var=None, name=None):
    """`tf.strided_slice`: bit i of a mask applies to entry i of begin/end/strides."""
    x = convert_to_tensor(input_)
    begin = static_int_list(begin, "begin")
    end = static_int_list(end, "end")
    strides = static_int_list(strides, "strides") if strides is not None else (1,) * len(begin)
    key = []
    for i, (b, e, s) in enumerate(zip(begin, end, strides)):
        bit = 1 << i
        if ellipsis_mask & bit:
            key.append(Ellipsis)
        elif new_axis_mask & bit:
            key.append(None)
        elif shrink_axis_mask & bit:
            key.append(b)
        else:
            key.append(builtins.slice(None if begin_mask & bit else b,
                                      None if end_mask & bit else e, s))
    return strided_slice_by_index(x, tuple(key), name=name or "StridedSlice")


# -- gather / one_hot -----------------------------------------------------------------------
def _gather_infer(inputs, *, axis):
    params, indices = inputs
    check_dtype(indices, INDEX_DTYPES, "indices")
    if params.shape.dims is None or indices.shape.dims is None:
        return [TensorSpec(params.dtype, TensorShape(None))]
    d = params.shape.dims
    axis = normalize_axis(axis, len(d))
    return [TensorSpec(params.dtype, TensorShape(d[:axis] + indices.shape.dims + d[axis + 1:]))]


def check_gather_indices(params_shape, indices: np.ndarray, axis: int) -> None:
    """Out-of-range indices are an error (TF1's CPU message); every backend checks first."""
    n = params_shape[axis]
    bad = (indices < 0) | (indices >= n)
    if np.any(bad):
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise errors.IndexOutOfRangeError(
            f"indices{list(where)} = {int(indices[where])} is not in [0, {n}) "
            f"(gathering along axis {axis} of a tensor of shape {list(params_shape)})")


def _check_gather(params, indices, *, axis):
    check_gather_indices(params.shape, indices, axis)


def _gather_kernel(params, indices, *, axis):
    _check_gather(params, indices, axis=axis)
    return np.take(params, indices, axis=axis)


register_op("GatherV2", "gather", _gather_infer, _gather_kernel, check_inputs=_check_gather,
            role=GATHER)


@_as_build_error
def gather(params, indices, validate_indices=None, name=None, axis=0, batch_dims=0):
    params = convert_to_tensor(params)
    indices = convert_to_tensor(indices, dtype_hint=dtypes.int32)
    if batch_dims:
        raise errors.UnimplementedError("gather with batch_dims is not supported yet")
    axis = static_int(axis, "axis")
    if params.shape.ndims is not None:
        axis = normalize_axis(axis, params.shape.ndims)
    return apply_op("GatherV2", [params, indices], {"axis": axis}, name=name,
                    default_name="GatherV2")


def _one_hot_infer(inputs, *, depth, on_value, off_value, axis, dtype):
    (indices,) = inputs
    check_dtype(indices, INTS + (dtypes.uint8,), "indices")
    if indices.shape.dims is None:
        return [TensorSpec(dtype, TensorShape(None))]
    dims = list(indices.shape.dims)
    dims.insert(len(dims) if axis == -1 else axis, depth)
    return [TensorSpec(dtype, TensorShape(dims))]


def _one_hot_kernel(indices, *, depth, on_value, off_value, axis, dtype):
    # Out-of-range (and negative) indices give an all-off row, as in TF1.
    hot = indices[..., None] == np.arange(depth)
    out = np.where(hot, on_value, off_value).astype(dtype.np_dtype)
    if axis != -1:
        out = np.moveaxis(out, -1, axis)
    return out


register_op("OneHot", "one_hot", _one_hot_infer, _one_hot_kernel)


def one_hot(indices, depth, on_value=None, off_value=None, axis=None, dtype=None, name=None):
    indices = convert_to_tensor(indices, dtype_hint=dtypes.int32)
    dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.float32
    depth = static_int(depth, "depth")
    if depth < 0:
        raise errors.ShapeError(f"one_hot depth must be non-negative, got {depth}")
    rank = indices.shape.ndims
    axis = -1 if axis is None else axis
    if axis != -1 and rank is not None and not 0 <= axis <= rank:
        raise errors.ShapeError(f"one_hot axis {axis} is out of range for indices of rank {rank}")
    attrs = {"depth": depth, "axis": axis, "dtype": dtype,
             "on_value": _scalar_value(1 if on_value is None else on_value, dtype),
             "off_value": _scalar_value(0 if off_value is None else off_value, dtype)}
    return apply_op("OneHot", [indices], attrs, name=name, default_name="one_hot")


# -- scattering: the adjoints of gather and strided slicing ---------------------------
def _segment_sum_infer(inputs, *, num_segments):
    data, ids = inputs
    check_dtype(ids, INDEX_DTYPES, "segment_ids")
    if data.shape.dims is None or ids.shape.dims is None:
        return [TensorSpec(data.dtype, TensorShape(None))]
    if not TensorShape(data.shape.dims[:len(ids.shape.dims)]).is_compatible_with(ids.shape):
        raise ShapeInferenceError(f"segment_ids shape {ids.shape} must be a prefix of the "
                                  f"data shape {data.shape}")
    return [TensorSpec(data.dtype,
                       TensorShape((num_segments,) + data.shape.dims[len(ids.shape.dims):]))]


def _segment_sum_kernel(data, ids, *, num_segments):
    bad = (ids < 0) | (ids >= num_segments)
    if np.any(bad):
        raise errors.IndexOutOfRangeError(f"segment id {int(ids[bad][0])} is not in "
                                          f"[0, {num_segments})")
    out = np.zeros((num_segments,) + data.shape[ids.ndim:], dtype=data.dtype)
    np.add.at(out, ids, data)
    return out


register_op("UnsortedSegmentSum", "segment_sum", _segment_sum_infer, _segment_sum_kernel)


def unsorted_segment_sum(data, segment_ids, num_segments, name=None):
    """out[i] = sum of data[j] over j with segment_ids[j] == i (the adjoint of gather)."""
    return apply_op("UnsortedSegmentSum",
                    [convert_to_tensor(data),
                     convert_to_tensor(segment_ids, dtype_hint=dtypes.int32)],
                    {"num_segments": static_int(num_segments, "num_segments")}, name=name,
                    default_name="UnsortedSegmentSum")


def _strided_slice_grad_infer(inputs, *, spec, shape):
    return [TensorSpec(inputs[0].dtype, TensorShape(shape))]


def _strided_slice_grad_kernel(g, *, spec, shape):
    """Zeros of the sliced tensor's shape with `g` written where the slice read."""
    out = np.zeros(shape, dtype=g.dtype)
    index = tuple(None if e[0] == "newaxis" else e[1] if e[0] == "index"
                  else builtins.slice(*e[1:]) for e in spec if e[0] != "newaxis")
    squeezed = g.reshape([d for d, e in zip(g.shape, _output_entries(spec, g.ndim))
                          if e != "newaxis"])
    out[index] = squeezed
    return out


def _output_entries(spec, rank):
    """For each output dimension of a strided slice, the kind of entry that made it."""
    kinds = [e[0] for e in spec if e[0] != "index"]
    return kinds + ["range"] * (rank - len(kinds))


register_op("StridedSliceGrad", "strided_slice_grad", _strided_slice_grad_infer,
            _strided_slice_grad_kernel)
