"""Shared machinery of the op modules: tensor conversion, `Const`, and shape-rule helpers."""
from __future__ import annotations

from typing import Any, Optional, Sequence, Tuple, Union

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import Operation, Tensor, get_default_graph
from flowjit.graph.registry import (DTypeInferenceError, ShapeInferenceError, TensorSpec,
                                    register_op)
from flowjit.graph.shape import TensorShape, as_shape


# -- building ops ---------------------------------------------------------------------------
def apply_op(op_type: str, inputs: Sequence[Any], attrs: Optional[dict] = None,
             name: Optional[str] = None, default_name: Optional[str] = None
             ) -> Union[Tensor, Tuple[Tensor, ...], Operation]:
    """Creates an op in the default graph (or the inputs' graph) and returns its output(s)."""
    graph = graph_for(inputs)
    op = graph.create_op(op_type, list(inputs), attrs, name=name, default_name=default_name)
    if len(op.outputs) == 1:
        return op.outputs[0]
    return op.outputs if op.outputs else op


def graph_for(inputs: Sequence[Any]):
    """The graph a new op with `inputs` goes to: the default graph while a control-flow
    function is being built (it captures the outer tensors), else the inputs' graph."""
    default = get_default_graph()
    if default._building_function:
        return default
    for t in inputs:
        if isinstance(t, Tensor):
            return t.graph
    return get_default_graph()


# -- conversion -----------------------------------------------------------------------------
def convert_value(value: Any, dtype: Optional[dtypes.DType]) -> np.ndarray:
    """A Python/numpy value as an array of `dtype`, refusing lossy kind changes
    (0.5 -> int32), as TF1 does."""
    if dtype is dtypes.string or (dtype is None and _is_string_value(value)):
        from flowjit.ops.strings import to_string_array
        return to_string_array(value)
    try:
        arr = np.asarray(value)
    except ValueError as e:  # ragged nested lists
        raise TypeError(f"Cannot convert {value!r} to a tensor: {e}") from None
    if arr.dtype == object and arr.size and all(isinstance(v, int) for v in arr.reshape(-1)):
        raise TypeError(f"Cannot convert {_short(value)} to a tensor: the integer does not fit "
                        f"in int64.")
    if arr.dtype == object or arr.dtype.kind in "USV":
        raise TypeError(f"Cannot convert {_short(value)} to a tensor"
                        f"{' of dtype ' + dtype.name if dtype else ''}: flowjit tensors are "
                        f"numeric.")
    if dtype is None:
        dtype = dtypes.infer_dtype_of_value(value)
    target = dtype.np_dtype
    if arr.dtype.kind == "f" and target.kind in "iub":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise TypeError(f"Cannot convert {_short(value)} to a tensor of dtype "
                            f"{dtype.name}: the value is not integral.")
    if arr.dtype.kind in "iu" and target.kind in "iu" and arr.size:
        info = np.iinfo(target)
        if arr.min() < info.min or arr.max() > info.max:
            raise TypeError(f"Value {_short(value)} is out of range for dtype {dtype.name}.")
    if arr.dtype.kind != "b" and target.kind == "b":
        raise TypeError(f"Cannot convert {_short(value)} to a tensor of dtype bool.")
    return np.array(arr, dtype=target, order="C")  # (ascontiguousarray would make 0-d 1-d)


def _is_string_value(value: Any) -> bool:
    """str/bytes, a numpy string array, or (nested) lists whose first leaf is a string."""
    while isinstance(value, (list, tuple)) and value:
        value = value[0]
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "SU" or (value.dtype == object and value.size > 0 and
                                             isinstance(value.reshape(-1)[0], (str, bytes)))
    return isinstance(value, (str, bytes, np.str_, np.bytes_))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def constant(value: Any, dtype: Any = None, shape: Any = None, name: str = "Const",
             verify_shape: bool = False) -> Tensor:
    """`tf.constant`: a scalar value with `shape` is broadcast, as in TF1."""
    dtype = dtypes.as_dtype(dtype) if dtype is not None else None
    arr = convert_value(value, dtype)
    if shape is not None:
        shape = tuple(as_shape(shape).as_list())
        if arr.shape != shape:
            if arr.size == 1:
                arr = np.full(shape, arr.reshape(())[()], dtype=arr.dtype)
            elif arr.size == int(np.prod(shape)) and not verify_shape:
                arr = arr.reshape(shape)
            else:
                raise errors.ShapeError(f"Expected {int(np.prod(shape))} elements for a "
                                        f"constant of shape {list(shape)}, got {arr.size}.")
    return apply_op("Const", [], {"value": arr, "dtype": dtypes.as_dtype(arr.dtype)},
                    name=name)


def convert_to_tensor(value: Any, dtype: Any = None, name: Optional[str] = None,
                      preferred_dtype: Any = None, dtype_hint: Any = None) -> Tensor:
    """`tf.convert_to_tensor`: Tensors pass through, Variables give their value, lists that
    contain tensors are stacked, anything else becomes a `Const`."""
    dtype = dtypes.as_dtype(dtype) if dtype is not None else None
    if hasattr(value, "_as_graph_element") and not isinstance(value, Tensor):
        value = value._as_graph_element()
    if isinstance(value, Tensor):
        if dtype is not None and value.dtype is not dtype:
            raise errors.DTypeError(f"Tensor conversion requested dtype {dtype.name} for "
                                    f"Tensor {value.describe()} of dtype {value.dtype.name}")
        return value
    if isinstance(value, Operation):
        raise TypeError(f"Operation {value.describe()} has no value to use as a Tensor; use "
                        f"one of its outputs.")
    if isinstance(value, (list, tuple)) and _contains_tensor(value):
        return _pack(value, dtype or _first_tensor_dtype(value), name)
    hint = preferred_dtype if preferred_dtype is not None else dtype_hint
    if dtype is None and hint is not None:
        try:
            return constant(value, dtypes.as_dtype(hint), name=name or "Const")
        except TypeError:
            pass
    return constant(value, dtype, name=name or "Const")


def _pack(value: Any, dtype: dtypes.DType, name: Optional[str]) -> Tensor:
    """A nested list holding tensors, packed as `tf.stack` (TF1's auto-packing): Python
    numbers in it take the dtype of its first tensor."""
    from flowjit.ops.array import stack
    items = [_pack(v, dtype, None) if isinstance(v, (list, tuple)) and _contains_tensor(v)
             else convert_to_tensor(v) if _is_graph_value(v) else _convert_to_match(v, dtype)
             for v in value]
    return stack(items, name=name or "packed")


def _first_tensor_dtype(seq: Any) -> dtypes.DType:
    stack = [iter(seq)]
    while stack:
        for item in stack[-1]:
            if _is_graph_value(item):
                return convert_to_tensor(item).dtype
            if isinstance(item, (list, tuple)):
                stack.append(iter(item))
                break
        else:
            stack.pop()
    raise errors.InternalError("no tensor in a list said to hold one")


def _is_graph_value(value: Any) -> bool:
    return isinstance(value, Tensor) or hasattr(value, "_as_graph_element")


def is_tensor_like(value: Any) -> bool:
    """A tensor, a variable, or a (nested) list holding one: converts to a tensor without
    help from another operand's dtype."""
    return _is_graph_value(value) or (isinstance(value, (list, tuple)) and
                                      _contains_tensor(value))


def _contains_tensor(seq: Any) -> bool:
    for item in seq:
        if isinstance(item, Tensor) or hasattr(item, "_as_graph_element"):
            return True
        if isinstance(item, (list, tuple)) and _contains_tensor(item):
            return True
    return False


def convert_operands(x: Any, y: Any) -> Tuple[Tensor, Tensor]:
    """Two operands of a binary op: a non-tensor side takes the tensor side's dtype."""
    x_is_tensor = is_tensor_like(x)
    y_is_tensor = is_tensor_like(y)
    if x_is_tensor:
        x = convert_to_tensor(x)
        y = y if y_is_tensor else _convert_to_match(y, x.dtype)
        return x, convert_to_tensor(y)
    if y_is_tensor:
        y = convert_to_tensor(y)
        return convert_to_tensor(_convert_to_match(x, y.dtype)), y
    x = convert_to_tensor(x)
    return x, convert_to_tensor(_convert_to_match(y, x.dtype))


def _convert_to_match(value: Any, dtype: dtypes.DType) -> Tensor:
    try:
        return constant(value, dtype)
    except TypeError as e:
        raise errors.DTypeError(f"{e} (the other operand has dtype {dtype.name})") from None


# -- the Const op ---------------------------------------------------------------------------
def _const_infer(inputs, *, value, dtype):
    return [TensorSpec(dtype, TensorShape(value.shape), value)]


def _const_kernel(*, value, dtype):
    return value


register_op("Const", "constant", _const_infer, _const_kernel)


# -- shape-rule helpers ---------------------------------------------------------------------
FLOATS = (dtypes.float16, dtypes.float32, dtypes.float64)
INTS = (dtypes.int8, dtypes.int16, dtypes.int32, dtypes.int64, dtypes.uint8)
NUMERIC = FLOATS + INTS


def check_dtype(spec: TensorSpec, allowed: Sequence[dtypes.DType], what: str = "x") -> None:
    if spec.dtype not in allowed:
        names = ", ".join(d.name for d in allowed)
        raise DTypeInferenceError(f"Value passed to parameter '{what}' has dtype "
                                  f"{spec.dtype.name}, not one of the allowed dtypes: {names}")


def check_same_dtype(specs: Sequence[TensorSpec]) -> dtypes.DType:
    first = specs[0].dtype
    for i, spec in enumerate(specs[1:], 1):
        if spec.dtype is not first:
            raise DTypeInferenceError(f"Operand {i} has dtype {spec.dtype.name} that does not "
                                      f"match dtype {first.name} of operand 0")
    return first


def normalize_axis(axis: int, rank: Optional[int], what: str = "axis") -> int:
    if rank is None:
        return axis
    if not -rank <= axis < max(rank, 1):
        raise ShapeInferenceError(f"{what} {axis} is out of range for a tensor of rank {rank}")
    return axis % rank if rank else 0


def static_int_list(value: Any, what: str) -> Optional[Tuple[int, ...]]:
    """A list of ints from a Python sequence, scalar or constant-valued Tensor."""
    if value is None:
        return None
    if isinstance(value, Tensor) or hasattr(value, "_as_graph_element"):
        tensor = convert_to_tensor(value)
        if tensor._value is None:
            raise errors.UnimplementedError(
                f"{what} must be known when the graph is built, but {tensor.describe()} is "
                f"computed at run time. Pass a Python list or a constant.")
        value = tensor._value
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu" and arr.size:
        if arr.dtype.kind == "f" and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{what} must be integers, got {value!r}")
    return tuple(int(v) for v in arr.reshape(-1))


def static_int(value: Any, what: str) -> int:
    values = static_int_list(value, what)
    if len(values) != 1:
        raise TypeError(f"{what} must be a single integer, got {value!r}")
    return values[0]

