"""The string dtype's values and ops: `tf.as_string`, `tf.strings.join` / `tf.string_join`.

A string tensor's value is a numpy object array of `bytes` (Python `str` given by the user
is encoded as UTF-8), which is what TF1 fetches. Shape ops (identity, reshape, concat,
gather, stack, ...) take strings as they take numbers; the runtime keeps every instruction
that touches a string in the host part of an executable (runtime/cpu.py).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.registry import ShapeInferenceError, TensorSpec, register_op
from flowjit.graph.shape import broadcast_shapes
from flowjit.ops.base import apply_op, check_dtype, convert_to_tensor


def to_string_array(value: Any) -> np.ndarray:
    """`value` (str, bytes, nested lists of them, numpy string or object arrays) as an
    object array of bytes; TypeError naming the first item that is not a string."""
    try:
        array = np.array(value, dtype=object)
    except ValueError as e:  # ragged
        raise TypeError(f"Cannot convert {_short(value)} to a string tensor: {e}") from None
    flat = array.reshape(-1)
    out = np.empty(flat.shape, dtype=object)
    for i, item in enumerate(flat.tolist()):
        if isinstance(item, bytes):
            out[i] = item
        elif isinstance(item, str):
            out[i] = item.encode("utf-8")
        elif isinstance(item, np.bytes_):
            out[i] = bytes(item)
        else:
            raise TypeError(f"Cannot convert {_short(value)} to a string tensor: item "
                            f"{_short(item)} of type {type(item).__name__} is not a string")
    return out.reshape(array.shape)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


# -- as_string ------------------------------------------------------------------------------
_AS_STRING_DTYPES = (dtypes.float16, dtypes.float32, dtypes.float64, dtypes.int8,
                     dtypes.int16, dtypes.int32, dtypes.int64, dtypes.uint8, dtypes.bool_)


def _as_string_infer(inputs, *, precision, scientific, shortest, width, fill):
    (x,) = inputs
    check_dtype(x, _AS_STRING_DTYPES, "input")
    return [TensorSpec(dtypes.string, x.shape)]


def _format_spec(dtype: np.dtype, precision: int, scientific: bool, shortest: bool,
                 width: int, fill: str) -> str:
    """The printf format TF1's AsString uses for one element."""
    flags = fill if fill in ("0", "-", " ", "+") else ""
    spec = "%" + flags + (str(width) if width >= 0 else "")
    if dtype.kind == "f":
        spec += f".{precision}" if precision >= 0 else ""
        return spec + ("e" if scientific else "g" if shortest else "f")
    return spec + "d"


def _as_string_kernel(x, *, precision, scientific, shortest, width, fill):
    if x.dtype.kind == "b":
        text = np.where(x, b"true", b"false").astype(object)
        return np.asarray(text, dtype=object)
    spec = _format_spec(x.dtype, precision, scientific, shortest, width, fill)
    values = x.astype(np.float64) if x.dtype.kind == "f" else x.astype(np.int64)
    out = np.empty(x.shape, dtype=object)
    flat = out.reshape(-1)
    for i, v in enumerate(values.reshape(-1).tolist()):
        flat[i] = (spec % v).encode("ascii")
    return out


register_op("AsString", "as_string", _as_string_infer, _as_string_kernel)


def as_string(input, precision=-1, scientific=False, shortest=False, width=-1, fill="",
              name=None):
    """`tf.as_string`: numbers and bools as strings, printf-formatted as TF1 does (floats
    as %f unless `shortest` (%g) or `scientific` (%e); `width` padded with `fill`)."""
    if scientific and shortest:
        raise ValueError("as_string: cannot set both scientific and shortest")
    if len(fill) > 1:
        raise ValueError(f"as_string: fill must be at most one character, got {fill!r}")
    x = convert_to_tensor(input)
    if fill and fill not in ("0", " ", "-", "+"):
        raise errors.InvalidArgumentError(f"as_string: fill {fill!r} is not supported "
                                          f"(one of '0', ' ', '-', '+')")
    return apply_op("AsString", [x], {"precision": int(precision),
                                      "scientific": bool(scientific),
                                      "shortest": bool(shortest), "width": int(width),
                                      "fill": fill}, name=name, default_name="AsString")


# -- join -----------------------------------------------------------------------------------
def _join_infer(inputs, *, separator):
    shape = inputs[0].shape
    for i, spec in enumerate(inputs):
        if spec.dtype is not dtypes.string:
            raise ShapeInferenceError(f"string_join input {i} has dtype {spec.dtype.name}, "
                                      f"not string")
        joined = broadcast_shapes(shape, spec.shape)
        if joined is None:
            raise ShapeInferenceError(f"string_join inputs of shapes {shape} and "
                                      f"{spec.shape} do not broadcast together")
        shape = joined
    return [TensorSpec(dtypes.string, shape)]


def _join_kernel(*inputs, separator):
    sep = separator.encode("utf-8")
    joined = np.frompyfunc(lambda *parts: sep.join(parts), len(inputs), 1)(*inputs)
    return np.asarray(joined, dtype=object)


register_op("StringJoin", "string_join", _join_infer, _join_kernel)


def string_join(inputs: Sequence[Any], separator: str = "", name=None):
    """`tf.string_join` / `tf.strings.join`: elementwise concatenation (with numpy
    broadcasting), `separator` between the parts."""
    tensors = [convert_to_tensor(x, dtype=dtypes.string) if not hasattr(x, "dtype") else
               convert_to_tensor(x) for x in inputs]
    if not tensors:
        raise ValueError("string_join needs at least one input")
    return apply_op("StringJoin", tensors, {"separator": separator}, name=name,
                    default_name="StringJoin")
