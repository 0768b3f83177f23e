"""Element types: the TF1 `DType` objects (`tf.float32`, ...) and conversions to numpy.

A DType is a thin, interned wrapper around a numpy dtype that also carries the short IR
spelling (`f32`, `i64`, ...) used by the printer and the compiler.
"""
from __future__ import annotations

from typing import Any

import numpy as np


class DType:
    """A tensor element type. Interned: compare with `is` or `==`."""

    __slots__ = ("name", "np_dtype", "ir_name")

    def __init__(self, name: str, np_dtype: np.dtype, ir_name: str) -> None:
        self.name = name
        self.np_dtype = np.dtype(np_dtype)
        self.ir_name = ir_name

    @property
    def as_numpy_dtype(self) -> type:
        return self.np_dtype.type

    @property
    def is_floating(self) -> bool:
        return self.np_dtype.kind == "f"

    @property
    def is_integer(self) -> bool:
        return self.np_dtype.kind in "iu"

    @property
    def is_bool(self) -> bool:
        return self.np_dtype.kind == "b"

    @property
    def is_numeric(self) -> bool:
        return not self.is_bool

    @property
    def base_dtype(self) -> "DType":
        return self

    @property
    def min(self) -> Any:
        return np.finfo(self.np_dtype).min if self.is_floating else np.iinfo(self.np_dtype).min

    @property
    def max(self) -> Any:
        return np.finfo(self.np_dtype).max if self.is_floating else np.iinfo(self.np_dtype).max

    def __repr__(self) -> str:
        return f"tf.{self.name}"

    def __reduce__(self):
        return (as_dtype, (self.name,))


float16 = DType("float16", np.float16, "f16")
float32 = DType("float32", np.float32, "f32")
float64 = DType("float64", np.float64, "f64")
int8 = DType("int8", np.int8, "i8")
int16 = DType("int16", np.int16, "i16")
int32 = DType("int32", np.int32, "i32")
int64 = DType("int64", np.int64, "i64")
uint8 = DType("uint8", np.uint8, "u8")
bool_ = DType("bool", np.bool_, "i1")
# Strings: numpy object arrays of `bytes` (TF1 fetches them so); they only run in the host
# part of an executable, never in native kernels.
string = DType("string", np.object_, "string")
half = float16
double = float64

ALL_DTYPES = (float16, float32, float64, int8, int16, int32, int64, uint8, bool_)
_BY_NP = {d.np_dtype: d for d in ALL_DTYPES + (string,)}
_BY_NAME = {d.name: d for d in ALL_DTYPES + (string,)}
_BY_NAME.update({d.ir_name: d for d in ALL_DTYPES})
_BY_NAME.update({"float": float32, "double": float64, "half": float16, "int": int32})


def as_dtype(value: Any) -> DType:
    """Converts a DType, a numpy dtype/type, a Python type or a name ('float', 'int32') to a DType."""
    if isinstance(value, DType):
        return value
    if isinstance(value, str):
        if value in _BY_NAME:
            return _BY_NAME[value]
        raise TypeError(f"Unknown dtype name {value!r}; expected one of {sorted(_BY_NAME)}")
    if value is float:
        return float32
    if value is int:
        return int32
    if value is bool:
        return bool_
    try:
        np_dtype = np.dtype(value)
    except TypeError:
        raise TypeError(f"Cannot convert {value!r} to a flowjit dtype") from None
    if np_dtype in _BY_NP:
        return _BY_NP[np_dtype]
    if np_dtype.kind in "SU":  # numpy's fixed-width strings
        return string
    raise TypeError(f"Unsupported dtype {np_dtype} (flowjit supports "
                    f"{', '.join(d.name for d in ALL_DTYPES)})")


def from_ir_name(name: str) -> DType:
    """The DType whose IR spelling is `name` (`f32` -> float32)."""
    for d in ALL_DTYPES + (string,):
        if d.ir_name == name:
            return d
    raise ValueError(f"unknown IR element type {name!r}")


def infer_dtype_of_value(value: Any) -> DType:
    """The dtype TF1 gives a Python/numpy constant: floats -> float32, ints -> int32."""
    if isinstance(value, (str, bytes)):
        return string
    if isinstance(value, np.ndarray) or isinstance(value, np.generic):
        arr_dtype = np.asarray(value).dtype
        return as_dtype(arr_dtype)
    arr = np.asarray(value)
    if arr.dtype.kind == "f":
        return float32
    if arr.dtype.kind in "iu":
        if arr.size and (arr.max() > np.iinfo(np.int32).max or arr.min() < np.iinfo(np.int32).min):
            return int64
        return int32
    if arr.dtype.kind == "b":
        return bool_
    if arr.dtype.kind in "SU" or (arr.dtype.kind == "O" and arr.size and all(
            isinstance(v, (str, bytes)) for v in arr.reshape(-1))):
        return string
    raise TypeError(f"Cannot make a tensor from {type(value).__name__} value {value!r}")
