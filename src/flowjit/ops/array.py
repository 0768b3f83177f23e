"""Shape ops: identity, reshape, transpose, squeeze/expand_dims, concat/stack/split, tile,
pad, shape queries, select, broadcast_to. (Slicing and gather are in indexing.py; tensors
made from nothing, placeholders, range, fill, zeros, in creation.py.)"""
from __future__ import annotations

import builtins
from typing import Any, List, Optional

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import Tensor
from flowjit.graph.registry import (ALIAS, CONCAT, LAYOUT, ShapeInferenceError, TensorSpec,
                                    register_op)
from flowjit.graph.shape import TensorShape, broadcast_shapes, broadcast_strides, row_major_strides
from flowjit.ops.base import (apply_op, check_dtype, check_same_dtype, constant,
                              convert_operands, convert_to_tensor, convert_value,
                              normalize_axis, static_int, static_int_list)
from flowjit.ops.shape_values import (int_tuple, known_dims, partial_value,
                                      register_dynamic_form, shape_argument)

INDEX_DTYPES = (dtypes.int32, dtypes.int64)


def _known_size(dims) -> Optional[int]:
    if dims is None or any(d is None for d in dims):
        return None
    return int(np.prod(dims, dtype=np.int64))


def _as_build_error(fn):
    """API helpers raise ShapeInferenceError like rules do; present it as a ShapeError."""
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ShapeInferenceError as e:
            raise errors.ShapeError(str(e)) from None
    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


# -- identity-like --------------------------------------------------------------------------
def _same_spec(inputs):
    return [TensorSpec(inputs[0].dtype, inputs[0].shape)]


register_op("Identity", "identity", _same_spec, lambda x: x)
register_op("StopGradient", "stop_gradient", _same_spec, lambda x: x)


def identity(input, name=None):
    return apply_op("Identity", [convert_to_tensor(input)], name=name, default_name="Identity")


def stop_gradient(input, name=None):
    return apply_op("StopGradient", [convert_to_tensor(input)], name=name,
                    default_name="StopGradient")


# -- reshape / transpose / squeeze / expand_dims ---------------------------------------------
def _reshape_infer(inputs, *, shape):
    (x,) = inputs
    if shape.count(-1) > 1:
        raise ShapeInferenceError(f"reshape target {list(shape)} has more than one -1")
    size = _known_size(x.shape.dims)
    if -1 not in shape:
        if size is not None and size != int(np.prod(shape, dtype=np.int64)):
            raise ShapeInferenceError(f"Cannot reshape a tensor with {size} elements to shape "
                                      f"{list(shape)} ({int(np.prod(shape))} elements)")
        return [TensorSpec(x.dtype, TensorShape(shape))]
    known = int(np.prod([d for d in shape if d != -1], dtype=np.int64))
    if size is None:
        return [TensorSpec(x.dtype, TensorShape([None if d == -1 else d for d in shape]))]
    if known == 0 or size % known:
        raise ShapeInferenceError(f"Cannot reshape a tensor with {size} elements to shape "
                                  f"{list(shape)}")
    return [TensorSpec(x.dtype, TensorShape([size // known if d == -1 else d for d in shape]))]


def _reshape_kernel(x, *, shape):
    try:
        return x.reshape(shape)
    except ValueError:
        raise errors.InvalidArgumentError(
            f"Input to reshape is a tensor with {x.size} values (shape {list(x.shape)}), but "
            f"the requested shape is {list(shape)}") from None


register_op("Reshape", "reshape", _reshape_infer, _reshape_kernel, role=ALIAS)


def _reshape_partial(inputs, known):
    (x,) = inputs
    if known is None:
        return [TensorSpec(x.dtype, TensorShape(None))]
    if sum(1 for d in known if d == -1) > 1:
        raise ShapeInferenceError(f"reshape target {list(known)} has more than one -1")
    dims = list(known_dims(known, minus_one_unknown=True).dims)
    size = _known_size(x.shape.dims)
    unknown = [i for i, d in enumerate(dims) if d is None]
    if size is not None and len(unknown) == 1:  # the one dim the element count leaves
        rest = int(np.prod([d for d in dims if d is not None], dtype=np.int64))
        if rest == 0 or size % rest:
            raise ShapeInferenceError(f"Cannot reshape a tensor with {size} elements to a "
                                      f"shape of the form {list(TensorShape(dims))}")
        dims[unknown[0]] = size // rest
    return [TensorSpec(x.dtype, TensorShape(dims))]


register_dynamic_form("Reshape", 1, ("shape",), lambda name, v: int_tuple(name, v, -1),
                      _reshape_partial)


def reshape(tensor, shape, name=None):
    """`tf.reshape`; `shape` may hold one -1, and may be a tensor computed from shapes
    (`[tf.shape(x)[0], -1]`): see ops/shape_values.py."""
    x = convert_to_tensor(tensor)
    shape, shape_tensor = shape_argument(shape, "reshape's shape")
    if shape_tensor is not None:
        return apply_op("DynamicReshape", [x, shape_tensor],
                        {"known": partial_value(shape_tensor)}, name=name,
                        default_name="Reshape")
    if any(d < -1 for d in shape):
        raise errors.ShapeError(f"reshape target {list(shape)} has a negative dimension")
    return apply_op("Reshape", [x], {"shape": shape}, name=name, default_name="Reshape")


def _transpose_infer(inputs, *, perm):
    (x,) = inputs
    if x.shape.dims is None:
        return [TensorSpec(x.dtype, TensorShape([None] * len(perm)) if perm else TensorShape(None))]
    if sorted(perm) != list(builtins.range(len(x.shape.dims))):
        raise ShapeInferenceError(f"perm {list(perm)} is not a permutation of the "
                                  f"{len(x.shape.dims)} dimensions")
    return [TensorSpec(x.dtype, TensorShape([x.shape.dims[p] for p in perm]))]


def _transpose_map(in_shape, out_shape, *, perm):
    strides = row_major_strides(in_shape)
    return 0, [strides[p] for p in perm]


register_op("Transpose", "transpose", _transpose_infer, lambda x, *, perm: np.transpose(x, perm),
            role=LAYOUT, affine_map=_transpose_map)


def transpose(a, perm=None, name="transpose", conjugate=False):
    x = convert_to_tensor(a)
    if perm is None:
        if x.shape.ndims is None:
            raise errors.UnimplementedError(f"transpose without perm needs the rank of "
                                            f"{x.describe()}")
        perm = tuple(reversed(builtins.range(x.shape.ndims)))
    perm = tuple(p % x.shape.ndims if x.shape.ndims else p
                 for p in static_int_list(perm, "perm"))
    return apply_op("Transpose", [x], {"perm": perm}, name=name)


def _squeeze_infer(inputs, *, axis):
    (x,) = inputs
    dims = x.shape.dims
    if dims is None:
        return [TensorSpec(x.dtype, TensorShape(None))]
    if axis is None:
        if any(d is None for d in dims):
            raise ShapeInferenceError(f"squeeze without axis needs a fully known shape, "
                                      f"got {x.shape}")
        return [TensorSpec(x.dtype, TensorShape([d for d in dims if d != 1]))]
    for a in axis:
        if dims[a] not in (1, None):
            raise ShapeInferenceError(f"Can not squeeze dim[{a}], expected a dimension of 1, "
                                      f"got {dims[a]}")
    return [TensorSpec(x.dtype, TensorShape([d for i, d in enumerate(dims) if i not in axis]))]


def _squeeze_kernel(x, *, axis):
    try:
        return np.squeeze(x, axis=axis)
    except ValueError:
        raise errors.InvalidArgumentError(f"Can not squeeze axes {axis} of a tensor of shape "
                                          f"{list(x.shape)}") from None


register_op("Squeeze", "squeeze", _squeeze_infer, _squeeze_kernel)


@_as_build_error
def squeeze(input, axis=None, name=None, squeeze_dims=None):
    x = convert_to_tensor(input)
    axis = squeeze_dims if axis is None else axis
    if axis is not None:
        axis = tuple(sorted(normalize_axis(a, x.shape.ndims)
                            for a in static_int_list(axis, "axis")))
    return apply_op("Squeeze", [x], {"axis": axis}, name=name, default_name="Squeeze")


def _expand_dims_infer(inputs, *, axis):
    (x,) = inputs
    if x.shape.dims is None:
        return [TensorSpec(x.dtype, TensorShape(None))]
    dims = list(x.shape.dims)
    dims.insert(axis, 1)
    return [TensorSpec(x.dtype, TensorShape(dims))]


register_op("ExpandDims", "expand_dims", _expand_dims_infer,
            lambda x, *, axis: np.expand_dims(x, axis))


@_as_build_error
def expand_dims(input, axis=None, name=None, dim=None):
    x = convert_to_tensor(input)
    axis = static_int(dim if axis is None else axis, "axis")
    rank = x.shape.ndims
    if rank is not None:
        axis = normalize_axis(axis, rank + 1)
    elif axis < 0:
        raise errors.UnimplementedError("expand_dims with a negative axis needs a known rank")
    return apply_op("ExpandDims", [x], {"axis": axis}, name=name, default_name="ExpandDims")


# -- concat / stack / unstack / split --------------------------------------------------------
def _concat_infer(inputs, *, axis):
    dtype = check_same_dtype(inputs)
    ranks = {s.shape.ndims for s in inputs if s.shape.ndims is not None}
    if len(ranks) > 1:
        raise ShapeInferenceError(f"concat inputs have different ranks {sorted(ranks)}")
    if not ranks:
        return [TensorSpec(dtype, TensorShape(None))]
    rank = ranks.pop()
    axis = normalize_axis(axis, rank)
    dims: List[Optional[int]] = [None] * rank
    total: Optional[int] = 0
    for spec in inputs:
        if spec.shape.dims is None:
            total = None
            continue
        for i, d in enumerate(spec.shape.dims):
            if i == axis:
                total = None if (total is None or d is None) else total + d
            elif d is not None:
                if dims[i] is not None and dims[i] != d:
                    raise ShapeInferenceError(f"Dimension {i} of concat inputs must be equal "
                                              f"(concatenating on axis {axis}), got {dims[i]} "
                                              f"and {d}")
                dims[i] = d
    dims[axis] = total
    return [TensorSpec(dtype, TensorShape(dims))]


register_op("ConcatV2", "concatenate", _concat_infer,
            lambda *xs, axis: np.concatenate(xs, axis=axis), role=CONCAT)


@_as_build_error
def concat(values, axis, name="concat"):
    tensors = [convert_to_tensor(v) for v in values]
    if not tensors:
        raise ValueError("concat needs at least one tensor")
    axis = static_int(axis, "axis")
    rank = next((t.shape.ndims for t in tensors if t.shape.ndims is not None), None)
    if rank is not None:
        axis = normalize_axis(axis, rank)
    if len(tensors) == 1:
        return identity(tensors[0], name=name)
    return apply_op("ConcatV2", tensors, {"axis": axis}, name=name)


def _pack_infer(inputs, *, axis):
    dtype = check_same_dtype(inputs)
    shape = inputs[0].shape
    for spec in inputs[1:]:
        if not shape.is_compatible_with(spec.shape):
            raise ShapeInferenceError(f"Shapes of all inputs to stack must match: {shape} "
                                      f"vs. {spec.shape}")
        shape = shape.merge_with(spec.shape)
    if shape.dims is None:
        return [TensorSpec(dtype, TensorShape(None))]
    dims = list(shape.dims)
    dims.insert(normalize_axis(axis, len(dims) + 1), len(inputs))
    return [TensorSpec(dtype, TensorShape(dims))]


def _pack_kernel(*xs, axis):
    if len({x.shape for x in xs}) > 1:
        raise errors.InvalidArgumentError(f"Shapes of all inputs to stack must match, got "
                                          f"{[list(x.shape) for x in xs]}")
    return np.stack(xs, axis=axis)


register_op("Pack", "stack", _pack_infer, _pack_kernel)


@_as_build_error
def stack(values, axis=0, name="stack"):
    tensors = [convert_to_tensor(v) for v in values]
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    dtype = tensors[0].dtype
    tensors = [t if t.dtype is dtype or t.op.type != "Const" else
               constant(t._value, dtype) for t in tensors]
    rank = next((t.shape.ndims for t in tensors if t.shape.ndims is not None), None)
    axis = normalize_axis(axis, rank + 1) if rank is not None else axis
    return apply_op("Pack", tensors, {"axis": axis}, name=name)


pack = stack


def _unpack_infer(inputs, *, num, axis):
    (x,) = inputs
    if x.shape.dims is None:
        return [TensorSpec(x.dtype, TensorShape(None))] * num
    if x.shape.dims[axis] not in (None, num):
        raise ShapeInferenceError(f"Cannot unstack {num} values from dimension {axis} of "
                                  f"size {x.shape.dims[axis]}")
    dims = x.shape.dims[:axis] + x.shape.dims[axis + 1:]
    return [TensorSpec(x.dtype, TensorShape(dims))] * num


def _unpack_kernel(x, *, num, axis):
    if x.shape[axis] != num:
        raise errors.InvalidArgumentError(f"Cannot unstack {num} values from dimension "
                                          f"{axis} of size {x.shape[axis]}")
    return tuple(np.take(x, i, axis=axis) for i in builtins.range(num))


register_op("Unpack", "unstack", _unpack_infer, _unpack_kernel)


@_as_build_error
def unstack(value, num=None, axis=0, name="unstack"):
    x = convert_to_tensor(value)
    if x.shape.ndims is None:
        raise errors.UnimplementedError(f"unstack needs the rank of {x.describe()}")
    axis = normalize_axis(axis, x.shape.ndims)
    num = x.shape.dims[axis] if num is None else num
    if num is None:
        raise ValueError(f"Cannot infer num from shape {x.shape} of {x.describe()}")
    outputs = apply_op("Unpack", [x], {"num": num, "axis": axis}, name=name)
    return list(outputs) if isinstance(outputs, tuple) else [outputs]


unpack = unstack


def _split_infer(inputs, *, sizes, axis):
    (x,) = inputs
    if x.shape.dims is None:
        return [TensorSpec(x.dtype, TensorShape(None))] * len(sizes)
    d = x.shape.dims[axis]
    if d is not None and sum(sizes) != d:
        raise ShapeInferenceError(f"split sizes {list(sizes)} do not add up to dimension "
                                  f"{axis} of size {d}")
    out = []
    for s in sizes:
        dims = list(x.shape.dims)
        dims[axis] = s
        out.append(TensorSpec(x.dtype, TensorShape(dims)))
    return out


def _split_kernel(x, *, sizes, axis):
    if sum(sizes) != x.shape[axis]:
        raise errors.InvalidArgumentError(f"split sizes {list(sizes)} do not add up to "
                                          f"dimension {axis} of size {x.shape[axis]}")
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


register_op("SplitV", "split", _split_infer, _split_kernel)


@_as_build_error
def split(value, num_or_size_splits, axis=0, num=None, name="split"):
    x = convert_to_tensor(value)
    if x.shape.ndims is None:
        raise errors.UnimplementedError(f"split needs the rank of {x.describe()}")
    axis = normalize_axis(static_int(axis, "axis"), x.shape.ndims)
    if isinstance(num_or_size_splits, int):
        if num_or_size_splits <= 0:
            raise errors.ShapeError(f"split needs a positive number of parts, got "
                                    f"{num_or_size_splits} for {x.describe()}")
        d = x.shape.dims[axis]
        if d is None:
            raise errors.UnimplementedError(f"splitting an unknown dimension {axis} of "
                                            f"{x.describe()} evenly is not supported")
        if d % num_or_size_splits:
            raise errors.ShapeError(f"Dimension {axis} of size {d} of {x.describe()} is not "
                                    f"divisible into {num_or_size_splits} equal parts")
        sizes = (d // num_or_size_splits,) * num_or_size_splits
    else:
        sizes = static_int_list(num_or_size_splits, "size_splits")
        if -1 in sizes:
            d = x.shape.dims[axis]
            if d is None:
                raise errors.UnimplementedError("a -1 split size needs a known dimension")
            sizes = tuple(d - (sum(sizes) + 1) if s == -1 else s for s in sizes)
    outputs = apply_op("SplitV", [x], {"sizes": tuple(sizes), "axis": axis}, name=name)
    return list(outputs) if isinstance(outputs, tuple) else [outputs]


def _scalar_value(value: Any, dtype: dtypes.DType):
    if isinstance(value, Tensor):
        if value._value is None:
            raise errors.UnimplementedError("one_hot on/off values must be known at build time")
        value = value._value
    return convert_value(value, dtype).item()


# -- tile / pad -----------------------------------------------------------------------------
def _tile_infer(inputs, *, multiples):
    (x,) = inputs
    if x.shape.dims is None:
        return [TensorSpec(x.dtype, TensorShape([None] * len(multiples)))]
    if len(multiples) != len(x.shape.dims):
        raise ShapeInferenceError(f"tile multiples {list(multiples)} must have one entry per "
                                  f"dimension of shape {x.shape}")
    return [TensorSpec(x.dtype, TensorShape(None if d is None else d * m
                                            for d, m in zip(x.shape.dims, multiples)))]


register_op("Tile", "tile", _tile_infer, lambda x, *, multiples: np.tile(x, multiples))


def _tile_partial(inputs, known):
    (x,) = inputs
    if known is None or x.shape.dims is None:
        return [TensorSpec(x.dtype, TensorShape(None if known is None else [None] * len(known)))]
    if len(known) != len(x.shape.dims):
        raise ShapeInferenceError(f"tile multiples {list(known)} must have one entry per "
                                  f"dimension of shape {x.shape}")
    return [TensorSpec(x.dtype, TensorShape(None if d is None or m is None else d * m
                                            for d, m in zip(x.shape.dims, known)))]


register_dynamic_form("Tile", 1, ("multiples",), int_tuple, _tile_partial)


def tile(input, multiples, name=None):
    multiples, tensor = shape_argument(multiples, "multiples")
    if tensor is not None:
        return apply_op("DynamicTile", [convert_to_tensor(input), tensor],
                        {"known": partial_value(tensor)}, name=name, default_name="Tile")
    if any(m < 0 for m in multiples):
        raise errors.ShapeError(f"tile multiples must be non-negative, got {list(multiples)}")
    return apply_op("Tile", [convert_to_tensor(input)], {"multiples": multiples}, name=name,
                    default_name="Tile")


def _pad_infer(inputs, *, paddings, mode, constant_value):
    (x,) = inputs
    if x.shape.dims is None:
        return [TensorSpec(x.dtype, TensorShape([None] * len(paddings)))]
    if len(paddings) != len(x.shape.dims):
        raise ShapeInferenceError(f"paddings must have one [before, after] pair per dimension "
                                  f"of shape {x.shape}")
    for (lo, hi), d in zip(paddings, x.shape.dims):
        if mode != "CONSTANT" and d is not None and max(lo, hi) > d - (mode == "REFLECT"):
            raise ShapeInferenceError(f"{mode} padding ({lo}, {hi}) is too large for a "
                                      f"dimension of size {d}")
    return [TensorSpec(x.dtype, TensorShape(None if d is None else d + lo + hi
                                            for (lo, hi), d in zip(paddings, x.shape.dims)))]


def _pad_kernel(x, *, paddings, mode, constant_value):
    if x.ndim == 0:  # nothing to pad (np.pad refuses scalars)
        return x.copy()
    if mode == "CONSTANT":
        return np.pad(x, paddings, mode="constant", constant_values=constant_value)
    return np.pad(x, paddings, mode="reflect" if mode == "REFLECT" else "symmetric")


register_op("Pad", "pad", _pad_infer, _pad_kernel)


def pad(tensor, paddings, mode="CONSTANT", name=None, constant_values=0):
    x = convert_to_tensor(tensor)
    flat = static_int_list(paddings, "paddings")
    if len(flat) % 2 or any(p < 0 for p in flat):
        raise errors.ShapeError(f"paddings must be non-negative [before, after] pairs, got "
                                f"{paddings!r}")
    mode = mode.upper()
    if mode not in ("CONSTANT", "REFLECT", "SYMMETRIC"):
        raise ValueError(f"Unknown padding mode {mode!r}")
    pairs = tuple((flat[i], flat[i + 1]) for i in builtins.range(0, len(flat), 2))
    if _is_python_zero(constant_values):  # TF1 pads with the dtype's zero (False for bool)
        constant_values = np.zeros((), x.dtype.np_dtype)
    return apply_op("Pad", [x], {"paddings": pairs, "mode": mode,
                                 "constant_value": _scalar_value(constant_values, x.dtype)},
                    name=name, default_name="Pad")


def _is_python_zero(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0


# -- shape queries --------------------------------------------------------------------------
# TF1 answers a shape query whose answer the static shape already knows with a constant, so
# `sess.run(tf.shape(x))` of a [3, 4] placeholder needs no feed; the ops below answer the rest
# at run time.
def _shape_value(dims, out_type: dtypes.DType, what: str) -> np.ndarray:
    """`dims` as an `out_type` array; a value that type cannot hold is an error, not a wrap."""
    value = np.array(dims, np.int64)
    if value.size and int(value.max()) > np.iinfo(out_type.np_dtype).max:
        raise ShapeInferenceError(f"the {what} {dims} does not fit in {out_type.name}; "
                                  f"pass out_type=tf.int64")
    return value.astype(out_type.np_dtype)


def _shape_infer(inputs, *, out_type):
    (x,) = inputs
    rank = x.shape.ndims
    value = _shape_value(x.shape.dims, out_type, "shape") if x.shape.is_fully_defined() \
        else None
    return [TensorSpec(out_type, TensorShape([rank]), value)]


def _size_infer(inputs, *, out_type):
    n = inputs[0].shape.num_elements()
    return [TensorSpec(out_type, TensorShape([]),
                       None if n is None else _shape_value(n, out_type, "size"))]


def _rank_infer(inputs):
    r = inputs[0].shape.ndims
    return [TensorSpec(dtypes.int32, TensorShape([]),
                       None if r is None else np.array(r, np.int32))]


def _check_size(x, *, out_type):
    if x.size > np.iinfo(out_type.np_dtype).max:
        raise errors.InvalidArgumentError(f"the size {x.size} does not fit in {out_type.name}; "
                                          f"pass out_type=tf.int64")


register_op("Shape", "shape_of", _shape_infer,
            lambda x, *, out_type: _shape_value(x.shape, out_type, "shape"))
register_op("Size", "size_of", _size_infer,
            lambda x, *, out_type: np.array(x.size, out_type.np_dtype), check_inputs=_check_size)
register_op("Rank", "rank_of", _rank_infer, lambda x: np.array(x.ndim, np.int32))


def _static_answer(x: Tensor, op_type: str, out_type: dtypes.DType) -> Optional[np.ndarray]:
    """The answer of a shape query that the static shape already knows, else None."""
    if op_type == "Rank":
        return None if x.shape.ndims is None else np.array(x.shape.ndims, np.int32)
    if not x.shape.is_fully_defined():
        return None
    what = "shape" if op_type == "Shape" else "size"
    try:
        return _shape_value(x.shape.dims if op_type == "Shape" else x.shape.num_elements(),
                            out_type, what)
    except ShapeInferenceError as e:
        raise errors.ShapeError(f"tf.{what} of {x.describe()}: {e}") from None


def _shape_query(op_type: str, input, name, out_type: Optional[dtypes.DType]) -> Tensor:
    x = convert_to_tensor(input)
    answer = _static_answer(x, op_type, out_type)
    if answer is not None:
        return constant(answer, name=name or op_type)
    attrs = {"out_type": out_type} if out_type is not None else None
    return apply_op(op_type, [x], attrs, name=name, default_name=op_type)


def shape(input, name=None, out_type=dtypes.int32):
    return _shape_query("Shape", input, name, dtypes.as_dtype(out_type))


def size(input, name=None, out_type=dtypes.int32):
    return _shape_query("Size", input, name, dtypes.as_dtype(out_type))


def rank(input, name=None):
    return _shape_query("Rank", input, name, None)


# -- select / where -------------------------------------------------------------------------
def _select_infer(inputs):
    cond, x, y = inputs
    check_dtype(cond, (dtypes.bool_,), "condition")
    dtype = check_same_dtype([x, y])
    shape = broadcast_shapes(x.shape, y.shape)
    shape = shape and broadcast_shapes(cond.shape, shape)
    if shape is None:
        raise ShapeInferenceError(f"where: condition {cond.shape}, x {x.shape} and y {y.shape} "
                                  f"do not broadcast together")
    return [TensorSpec(dtype, shape)]


register_op("Select", "select", _select_infer, np.where, elementwise=True)


def _where_coords_infer(inputs):
    (cond,) = inputs
    return [TensorSpec(dtypes.int64, TensorShape([None, cond.shape.ndims]))]


register_op("Where", "where_coords", _where_coords_infer,
            lambda cond: np.argwhere(cond).astype(np.int64))


def where_v2(condition, x=None, y=None, name=None):
    """`tf.where_v2(cond, x, y)` selects elementwise (with broadcasting); `tf.where(cond)`
    returns the int64 coordinates of the true elements."""
    cond = convert_to_tensor(condition)
    if x is None and y is None:
        return apply_op("Where", [cond], name=name, default_name="Where")
    if x is None or y is None:
        raise ValueError("x and y must both be given, or neither")
    x, y = convert_operands(x, y)
    return apply_op("Select", [cond, x, y], name=name, default_name="Select")


def where(condition, x=None, y=None, name=None):
    """TF1's `tf.where`: as `where_v2`, except that a rank-1 `cond` picks whole rows (entries
    of the first dimension) of higher-rank x and y."""
    cond = convert_to_tensor(condition)
    if x is not None and y is not None:
        x, y = convert_operands(x, y)
        rank = max(x.shape.ndims or 0, y.shape.ndims or 0)
        if cond.shape.ndims == 1 and rank > 1:
            cond = reshape(cond, [-1] + [1] * (rank - 1))
    return where_v2(cond, x, y, name=name)


# -- broadcasting -----------------------------------------------------------------------------
def _broadcast_to_infer(inputs, *, shape):
    (x,) = inputs
    if broadcast_shapes(x.shape, TensorShape(shape)) != TensorShape(shape):
        raise ShapeInferenceError(f"cannot broadcast shape {x.shape} to {list(shape)}")
    return [TensorSpec(x.dtype, TensorShape(shape))]


register_op("BroadcastTo", "broadcast_to", _broadcast_to_infer,
            lambda x, *, shape: np.array(np.broadcast_to(x, shape)), role=LAYOUT,
            affine_map=lambda in_shape, out_shape, *, shape: (0, broadcast_strides(in_shape,
                                                                                   out_shape)))


def _broadcast_to_partial(inputs, known):
    (x,) = inputs
    return [TensorSpec(x.dtype, known_dims(known))]


register_dynamic_form("BroadcastTo", 1, ("shape",), int_tuple, _broadcast_to_partial)


def broadcast_to(input, shape, name=None):
    shape, tensor = shape_argument(shape, "shape")
    if tensor is not None:
        return apply_op("DynamicBroadcastTo", [convert_to_tensor(input), tensor],
                        {"known": partial_value(tensor)}, name=name,
                        default_name="BroadcastTo")
    return apply_op("BroadcastTo", [convert_to_tensor(input)], {"shape": shape}, name=name,
                    default_name="BroadcastTo")
