"""Elementwise math, comparisons, casts, matmul, reductions and arg-reductions.

Elementwise ops are registered from tables (one row per op: TF type, IR mnemonic, allowed
dtypes, numpy kernel), so adding an op is adding a row.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import Tensor
from flowjit.graph.registry import (CONTRACTION, REDUCTION, ShapeInferenceError, TensorSpec,
                                    register_op)
from flowjit.graph.shape import TensorShape, broadcast_shapes
from flowjit.ops.base import (FLOATS, NUMERIC, apply_op, check_dtype, check_same_dtype,
                              convert_operands, convert_to_tensor, normalize_axis,
                              static_int_list)

BOOL = (dtypes.bool_,)
ANY = NUMERIC + BOOL


# -- elementwise rules ----------------------------------------------------------------------
def unary_rule(allowed, out_dtype=None):
    def infer(inputs):
        (x,) = inputs
        check_dtype(x, allowed)
        return [TensorSpec(out_dtype or x.dtype, x.shape)]
    return infer


def binary_rule(allowed, out_dtype=None):
    def infer(inputs):
        x, y = inputs
        dtype = check_same_dtype(inputs)
        check_dtype(x, allowed)
        shape = broadcast_shapes(x.shape, y.shape)
        if shape is None:
            raise ShapeInferenceError(
                f"Dimensions must be broadcast-compatible, but shapes {list(x.shape.dims)} "
                f"and {list(y.shape.dims)} are not")
        return [TensorSpec(out_dtype or dtype, shape)]
    return infer


def _sigmoid(x):
    # Stable on both tails: never exponentiates a large positive number.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype)


def _rsqrt(x):
    return (1 / np.sqrt(x)).astype(x.dtype)


def _round_half_even(x):
    return np.round(x) if x.dtype.kind == "f" else x


def _int_safe(fn, name):
    """Integer division by zero is an error in TF (numpy would return 0 with a warning)."""
    def kernel(x, y):
        if x.dtype.kind in "iu" and np.any(y == 0):
            raise errors.InvalidArgumentError(f"Integer division by zero in {name}")
        return fn(x, y)
    return kernel


def _floordiv(x, y):
    # TF floors the quotient for floats: 1.0 // 0.1 is 10 (numpy's fmod-based rule gives 9).
    return np.floor(x / y) if x.dtype.kind == "f" else np.floor_divide(x, y)


def _pow(x, y):
    if x.dtype.kind in "iu" and np.any(y < 0):
        raise errors.InvalidArgumentError("Integers to negative integer powers are not allowed")
    return np.power(x, y)


#   TF type        mnemonic       allowed  kernel
UNARY_OPS = [
    ("Neg",        "neg",         NUMERIC, np.negative),
    ("Abs",        "abs",         NUMERIC, np.abs),
    ("Sign",       "sign",        NUMERIC, np.sign),
    ("Reciprocal", "reciprocal",  FLOATS,  np.reciprocal),  # TF1 has no integer kernel
    ("Square",     "square",      NUMERIC, np.square),
    ("Sqrt",       "sqrt",        FLOATS,  np.sqrt),
    ("Rsqrt",      "rsqrt",       FLOATS,  _rsqrt),
    ("Exp",        "exp",         FLOATS,  np.exp),
    ("Expm1",      "expm1",       FLOATS,  np.expm1),
    ("Log",        "log",         FLOATS,  np.log),
    ("Log1p",      "log1p",       FLOATS,  np.log1p),
    ("Sin",        "sin",         FLOATS,  np.sin),
    ("Cos",        "cos",         FLOATS,  np.cos),
    ("Tanh",       "tanh",        FLOATS,  np.tanh),
    ("Sigmoid",    "sigmoid",     FLOATS,  _sigmoid),
    ("Floor",      "floor",       FLOATS,  np.floor),
    ("Ceil",       "ceil",        FLOATS,  np.ceil),
    ("Round",      "round",       NUMERIC, _round_half_even),
    ("LogicalNot", "not",         BOOL,    np.logical_not),
]

BINARY_OPS = [
    ("Add",        "add",         NUMERIC, np.add),
    ("Sub",        "sub",         NUMERIC, np.subtract),
    ("Mul",        "mul",         NUMERIC, np.multiply),
    ("RealDiv",    "div",         FLOATS,  np.true_divide),
    ("FloorDiv",   "floordiv",    NUMERIC, _int_safe(_floordiv, "floordiv")),
    ("FloorMod",   "mod",         NUMERIC, _int_safe(np.mod, "mod")),
    ("Pow",        "pow",         NUMERIC, _pow),
    ("Maximum",    "maximum",     NUMERIC, np.maximum),
    ("Minimum",    "minimum",     NUMERIC, np.minimum),
    ("LogicalAnd", "and",         BOOL,    np.logical_and),
    ("LogicalOr",  "or",          BOOL,    np.logical_or),
]

COMPARISON_OPS = [
    ("Equal",        "eq", ANY,     np.equal),
    ("NotEqual",     "ne", ANY,     np.not_equal),
    ("Less",         "lt", NUMERIC, np.less),
    ("LessEqual",    "le", NUMERIC, np.less_equal),
    ("Greater",      "gt", NUMERIC, np.greater),
    ("GreaterEqual", "ge", NUMERIC, np.greater_equal),
]

for _type, _mnemonic, _allowed, _kernel in UNARY_OPS:
    register_op(_type, _mnemonic, unary_rule(_allowed), _kernel, elementwise=True)
for _type, _mnemonic, _allowed, _kernel in BINARY_OPS:
    register_op(_type, _mnemonic, binary_rule(_allowed), _kernel, elementwise=True)
for _type, _mnemonic, _allowed, _kernel in COMPARISON_OPS:
    register_op(_type, _mnemonic, binary_rule(_allowed, dtypes.bool_), _kernel,
                elementwise=True)


def _unary(op_type: str, default_name: Optional[str] = None):
    def fn(x, name=None):
        return apply_op(op_type, [convert_to_tensor(x)], name=name,
                        default_name=default_name or op_type)
    fn.__name__ = op_type.lower()
    fn.__doc__ = f"Elementwise `{op_type}` (TF1 `tf.{op_type.lower()}`)."
    return fn


def _binary(op_type: str):
    def fn(x, y, name=None):
        x, y = convert_operands(x, y)
        return apply_op(op_type, [x, y], name=name, default_name=op_type)
    fn.__name__ = op_type.lower()
    fn.__doc__ = f"Elementwise `{op_type}` with numpy broadcasting (TF1 `tf.{op_type.lower()}`)."
    return fn


negative = _unary("Neg")
abs = _unary("Abs")  # noqa: A001 - TF1 name
sign = _unary("Sign")
reciprocal = _unary("Reciprocal")
square = _unary("Square")
sqrt = _unary("Sqrt")
rsqrt = _unary("Rsqrt")
exp = _unary("Exp")
expm1 = _unary("Expm1")
log = _unary("Log")
log1p = _unary("Log1p")
sin = _unary("Sin")
cos = _unary("Cos")
tanh = _unary("Tanh")
sigmoid = _unary("Sigmoid")
floor = _unary("Floor")
ceil = _unary("Ceil")
round = _unary("Round")  # noqa: A001
logical_not = _unary("LogicalNot")

add = _binary("Add")
subtract = _binary("Sub")
multiply = _binary("Mul")
floordiv = _binary("FloorDiv")
floormod = _binary("FloorMod")
pow = _binary("Pow")  # noqa: A001
maximum = _binary("Maximum")
minimum = _binary("Minimum")
logical_and = _binary("LogicalAnd")
logical_or = _binary("LogicalOr")
equal = _binary("Equal")
not_equal = _binary("NotEqual")
less = _binary("Less")
less_equal = _binary("LessEqual")
greater = _binary("Greater")
greater_equal = _binary("GreaterEqual")
mod = floormod


def logical_xor(x, y, name="LogicalXor"):
    return logical_and(logical_or(x, y), logical_not(logical_and(x, y)), name=name)


def truediv(x, y, name=None):
    """`x / y`: integers are converted to floating point first (TF1 semantics)."""
    x, y = convert_operands(x, y)
    if x.dtype.is_integer and x.dtype is y.dtype:
        target = dtypes.float32 if x.dtype.np_dtype.itemsize <= 2 else dtypes.float64
        x, y = cast(x, target), cast(y, target)
    return apply_op("RealDiv", [x, y], name=name, default_name="truediv")


divide = truediv


def realdiv(x, y, name=None):
    x, y = convert_operands(x, y)
    return apply_op("RealDiv", [x, y], name=name, default_name="RealDiv")


def div(x, y, name=None):
    """TF1's `tf.div`: floor division for integers, true division for floats."""
    x, y = convert_operands(x, y)
    op_type = "FloorDiv" if x.dtype.is_integer else "RealDiv"
    return apply_op(op_type, [x, y], name=name, default_name="div")


def squared_difference(x, y, name=None):
    x, y = convert_operands(x, y)
    return square(subtract(x, y), name=name or "SquaredDifference")


def scalar_mul(scalar, x, name=None):
    return multiply(scalar, x, name=name)


# -- cast -----------------------------------------------------------------------------------
def _cast_infer(inputs, *, dtype):
    return [TensorSpec(dtype, inputs[0].shape)]


def _cast_kernel(x, *, dtype):
    return x.astype(dtype.np_dtype)


register_op("Cast", "convert", _cast_infer, _cast_kernel, elementwise=True)


def cast(x, dtype, name=None):
    x = convert_to_tensor(x)
    dtype = dtypes.as_dtype(dtype)
    if dtype is dtypes.string:
        raise errors.DTypeError(f"Cannot cast {x.describe()} to string: flowjit tensors are "
                                f"numeric")
    if x.dtype is dtype:
        return x
    return apply_op("Cast", [x], {"dtype": dtype}, name=name, default_name="Cast")


def to_float(x, name="ToFloat"):
    return cast(x, dtypes.float32, name=name)


def to_int32(x, name="ToInt32"):
    return cast(x, dtypes.int32, name=name)


def to_int64(x, name="ToInt64"):
    return cast(x, dtypes.int64, name=name)


# -- matmul ---------------------------------------------------------------------------------
def _matmul_infer(inputs, *, transpose_a, transpose_b):
    a, b = inputs
    dtype = check_same_dtype(inputs)
    check_dtype(a, NUMERIC, "a")
    if a.shape.dims is None or b.shape.dims is None:
        return [TensorSpec(dtype, TensorShape(None))]
    if len(a.shape.dims) < 2 or len(b.shape.dims) < 2:
        raise ShapeInferenceError(f"matmul needs operands of rank >= 2, got ranks "
                                  f"{len(a.shape.dims)} and {len(b.shape.dims)}")
    m, k = a.shape.dims[-2:][::-1] if transpose_a else a.shape.dims[-2:]
    k2, n = b.shape.dims[-2:][::-1] if transpose_b else b.shape.dims[-2:]
    if k is not None and k2 is not None and k != k2:
        raise ShapeInferenceError(f"Dimensions must be equal, but are {k} and {k2} (the "
                                  f"inner dimensions of the matmul)")
    batch = broadcast_shapes(TensorShape(a.shape.dims[:-2]), TensorShape(b.shape.dims[:-2]))
    if batch is None:
        raise ShapeInferenceError("matmul batch dimensions do not broadcast")
    return [TensorSpec(dtype, TensorShape(batch.dims + (m, n)))]


def _matmul_kernel(a, b, *, transpose_a, transpose_b):
    if transpose_a:
        a = np.swapaxes(a, -1, -2)
    if transpose_b:
        b = np.swapaxes(b, -1, -2)
    return np.matmul(a, b)


register_op("MatMul", "matmul", _matmul_infer, _matmul_kernel, role=CONTRACTION,
            attr_defaults={"transpose_a": False, "transpose_b": False})


def matmul(a, b, transpose_a=False, transpose_b=False, adjoint_a=False, adjoint_b=False,
           a_is_sparse=False, b_is_sparse=False, name=None):
    a, b = convert_operands(a, b)
    return apply_op("MatMul", [a, b], {"transpose_a": bool(transpose_a or adjoint_a),
                                       "transpose_b": bool(transpose_b or adjoint_b)},
                    name=name, default_name="MatMul")


def tensordot(a, b, axes, name=None):
    """Contraction over `axes`, built from transpose + reshape + matmul (static shapes)."""
    from flowjit.ops.array import reshape, transpose
    a, b = convert_operands(a, b)
    ra, rb = a.shape.ndims, b.shape.ndims
    if ra is None or rb is None:
        raise errors.UnimplementedError("tensordot needs operands of known rank")
    if isinstance(axes, int):
        axes_a, axes_b = list(range(ra - axes, ra)), list(range(axes))
    else:
        axes_a, axes_b = ([axes[0]] if isinstance(axes[0], int) else list(axes[0]),
                          [axes[1]] if isinstance(axes[1], int) else list(axes[1]))
    axes_a = [x % ra for x in axes_a]
    axes_b = [x % rb for x in axes_b]
    free_a = [i for i in range(ra) if i not in axes_a]
    free_b = [i for i in range(rb) if i not in axes_b]
    dims_a, dims_b = a.shape.dims, b.shape.dims

    def prod(ds):
        out = 1
        for d in ds:
            if d is None:
                return -1
            out *= d
        return out

    a2 = reshape(transpose(a, free_a + axes_a), [prod(dims_a[i] for i in free_a),
                                                 prod(dims_a[i] for i in axes_a)])
    b2 = reshape(transpose(b, axes_b + free_b), [prod(dims_b[i] for i in axes_b),
                                                 prod(dims_b[i] for i in free_b)])
    out_shape = [dims_a[i] if dims_a[i] is not None else -1 for i in free_a] + \
                [dims_b[i] if dims_b[i] is not None else -1 for i in free_b]
    return reshape(matmul(a2, b2), out_shape, name=name or "Tensordot")


# -- add_n ----------------------------------------------------------------------------------
def _add_n_infer(inputs):
    dtype = check_same_dtype(inputs)
    check_dtype(inputs[0], NUMERIC, "inputs")
    shape = inputs[0].shape
    for spec in inputs[1:]:
        if not shape.is_compatible_with(spec.shape):
            raise ShapeInferenceError(f"add_n inputs must have the same shape, got {shape} "
                                      f"and {spec.shape}")
        shape = shape.merge_with(spec.shape)
    return [TensorSpec(dtype, shape)]


def _add_n_kernel(*xs):
    shapes = {x.shape for x in xs}
    if len(shapes) > 1:
        raise errors.InvalidArgumentError(f"add_n inputs must have the same shape, got "
                                          f"{sorted(shapes)}")
    out = xs[0].copy()
    for x in xs[1:]:
        out += x
    return out


register_op("AddN", "add_n", _add_n_infer, _add_n_kernel)


def add_n(inputs, name=None):
    if not inputs:
        raise ValueError("add_n needs at least one input")
    tensors = [convert_to_tensor(x) for x in inputs]
    if len(tensors) == 1:
        return tensors[0]
    return apply_op("AddN", tensors, name=name, default_name="AddN")


# -- reductions -----------------------------------------------------------------------------
def _reduced_shape(shape: TensorShape, axis, keepdims) -> TensorShape:
    if axis is None and not keepdims:  # a full reduction is a scalar, whatever the rank
        return TensorShape([])
    if shape.dims is None:
        return TensorShape(None)
    if axis is None:
        return TensorShape([1] * len(shape.dims))
    if keepdims:
        return TensorShape([1 if i in axis else d for i, d in enumerate(shape.dims)])
    return TensorShape([d for i, d in enumerate(shape.dims) if i not in axis])


def reduction_rule(allowed, out_dtype=None):
    def infer(inputs, *, axis, keepdims):
        (x,) = inputs
        check_dtype(x, allowed)
        if axis is not None and x.shape.ndims is not None:
            if x.shape.ndims == 0 and axis:  # TF1: "Invalid reduction dimension"
                raise ShapeInferenceError(f"axis {list(axis)} is out of range for a tensor of "
                                          f"rank 0")
            # Axes stay negative when the graph did not know the rank; resolve them now.
            axis = tuple(normalize_axis(a, x.shape.ndims) for a in axis)
        return [TensorSpec(out_dtype or x.dtype, _reduced_shape(x.shape, axis, keepdims))]
    return infer


def _reduction_kernel(np_fn, identity_for_empty=None):
    def kernel(x, *, axis, keepdims):
        if identity_for_empty is not None and x.size == 0:
            return np.full(_empty_reduced_shape(x.shape, axis, keepdims),
                           identity_for_empty(x.dtype), dtype=x.dtype)
        return np.asarray(np_fn(x, axis=axis, keepdims=keepdims)).astype(x.dtype, copy=False)
    return kernel


def _empty_reduced_shape(shape, axis, keepdims):
    axes = range(len(shape)) if axis is None else [a % len(shape) for a in axis]
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _lowest(dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def _highest(dtype):
    return np.inf if dtype.kind == "f" else np.iinfo(dtype).max


def _sum(x, axis, keepdims):
    """float32 sums accumulate in float64, as the compiled kernels do: numpy's pairwise
    summation covers only the innermost axis, and a column sum of 2048 rows of 0.1 was off
    by 1.6e-5 relative."""
    if x.dtype == np.float32:
        return np.sum(x, axis=axis, keepdims=keepdims, dtype=np.float64).astype(np.float32)
    return np.sum(x, axis=axis, keepdims=keepdims)


def _mean(x, axis, keepdims):
    if x.dtype.kind in "iu":  # integer mean truncates, as in TF
        total = np.sum(x, axis=axis, keepdims=keepdims, dtype=np.int64)
        count = x.size // max(np.asarray(total).size, 1) if x.size else 1
        return np.trunc(total / count)
    axes = range(x.ndim) if axis is None else axis
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    # sum / count, not np.mean: an empty axis gives NaN silently, as in TF
    if x.dtype == np.float32:
        total = np.sum(x, axis=axis, keepdims=keepdims, dtype=np.float64)
        with np.errstate(invalid="ignore"):
            return (total / count).astype(np.float32)
    return np.sum(x, axis=axis, keepdims=keepdims) / x.dtype.type(count)


REDUCTION_OPS = [
    ("Sum",  "reduce_sum",  NUMERIC, _reduction_kernel(_sum)),
    ("Mean", "reduce_mean", NUMERIC, _reduction_kernel(_mean)),
    ("Prod", "reduce_prod", NUMERIC, _reduction_kernel(np.prod)),
    ("Max",  "reduce_max",  NUMERIC, _reduction_kernel(np.max, _lowest)),
    ("Min",  "reduce_min",  NUMERIC, _reduction_kernel(np.min, _highest)),
    ("Any",  "reduce_any",  BOOL,    _reduction_kernel(np.any)),
    ("All",  "reduce_all",  BOOL,    _reduction_kernel(np.all)),
]
for _type, _mnemonic, _allowed, _kernel in REDUCTION_OPS:
    register_op(_type, _mnemonic, reduction_rule(_allowed), _kernel, role=REDUCTION,
                combiner=_mnemonic[len("reduce_"):],
                attr_defaults={"axis": None, "keepdims": False})


def _axis_attr(x: Tensor, axis: Any, reduction_indices: Any) -> Optional[tuple]:
    if axis is None:
        axis = reduction_indices
    if axis is None:
        return None
    axes = static_int_list(axis, "axis")
    rank = x.shape.ndims
    if rank is not None:
        try:
            axes = tuple(normalize_axis(a, rank) for a in axes)
        except ShapeInferenceError as e:
            raise errors.ShapeError(f"{e}: reducing {x.describe()} of shape {x.shape}") from None
        if len(set(axes)) != len(axes):
            raise errors.ShapeError(f"Duplicate axes {list(axes)} in a reduction of "
                                    f"{x.describe()}")
    return tuple(sorted(axes))


def _reduction(op_type: str, default_name: str):
    def fn(input_tensor, axis=None, keepdims=None, name=None, reduction_indices=None,
           keep_dims=None):
        x = convert_to_tensor(input_tensor)
        keep = bool(keepdims if keepdims is not None else keep_dims)
        attrs = {"axis": _axis_attr(x, axis, reduction_indices), "keepdims": keep}
        return apply_op(op_type, [x], attrs, name=name, default_name=default_name)
    fn.__name__ = default_name.lower()
    fn.__doc__ = f"`tf.{default_name.lower()}` over `axis` (all axes when None)."
    return fn


reduce_sum = _reduction("Sum", "Sum")
reduce_mean = _reduction("Mean", "Mean")
reduce_prod = _reduction("Prod", "Prod")
reduce_max = _reduction("Max", "Max")
reduce_min = _reduction("Min", "Min")
reduce_any = _reduction("Any", "Any")
reduce_all = _reduction("All", "All")


def count_nonzero(input_tensor, axis=None, keepdims=None, dtype=dtypes.int64, name=None,
                  reduction_indices=None, keep_dims=None):
    x = convert_to_tensor(input_tensor)
    nonzero = cast(not_equal(x, zeros_like_value(x)), dtype)
    return reduce_sum(nonzero, axis, keepdims, name or "count_nonzero", reduction_indices,
                      keep_dims)


def zeros_like_value(x: Tensor):
    return np.zeros((), dtype=x.dtype.np_dtype)


# -- argmax / argmin ------------------------------------------------------------------------
def _arg_infer(inputs, *, axis, output_type):
    (x,) = inputs
    check_dtype(x, NUMERIC)
    if output_type not in (dtypes.int32, dtypes.int64):
        raise ShapeInferenceError("output_type must be int32 or int64")
    if x.shape.dims is None:
        return [TensorSpec(output_type, TensorShape(None))]
    if x.shape.ndims == 0:
        raise ShapeInferenceError("argmax/argmin need an input of rank >= 1, got a scalar")
    axis = normalize_axis(axis, x.shape.ndims)
    return [TensorSpec(output_type, TensorShape(x.shape.dims[:axis] + x.shape.dims[axis + 1:]))]


def _arg_kernel(np_fn):
    def kernel(x, *, axis, output_type):
        if not -x.ndim <= axis < x.ndim:  # (a fed value of a rank the graph did not know)
            raise errors.InvalidArgumentError(f"argmax/argmin over axis {axis} of an input of "
                                              f"rank {x.ndim}")
        if x.shape[axis] == 0:
            raise errors.InvalidArgumentError("Reduction axis of argmax/argmin is empty")
        return np_fn(x, axis=axis).astype(output_type.np_dtype)
    return kernel


register_op("ArgMax", "argmax", _arg_infer, _arg_kernel(np.argmax))
register_op("ArgMin", "argmin", _arg_infer, _arg_kernel(np.argmin))


def _arg(op_type: str):
    def fn(input, axis=None, name=None, dimension=None, output_type=dtypes.int64):
        x = convert_to_tensor(input)
        axis = dimension if axis is None else axis
        axis = 0 if axis is None else static_int_list(axis, "axis")[0]
        if x.shape.ndims is not None:
            try:
                axis = normalize_axis(axis, x.shape.ndims)
            except ShapeInferenceError as e:
                raise errors.ShapeError(f"{e}: {op_type} of {x.describe()}") from None
        return apply_op(op_type, [x], {"axis": axis, "output_type": dtypes.as_dtype(output_type)},
                        name=name, default_name=op_type)
    fn.__name__ = op_type.lower()
    return fn


argmax = _arg("ArgMax")
argmin = _arg("ArgMin")


def clip_by_value(t, clip_value_min, clip_value_max, name=None):
    t = convert_to_tensor(t)
    return minimum(maximum(t, clip_value_min), clip_value_max, name=name or "clip_by_value")
