"""Fed values: each is checked against the tensor it feeds and converted to an array of the
tensor's dtype, as TF1 does (`convert_feed_value`); errors name the tensor and where it was
created. `number_range` says which Python numbers the Session's fast path (graph/fast_path.py)
may convert itself, exactly as `convert_feed_value` would."""
from __future__ import annotations

from typing import Any, Optional, Tuple

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import Operation, Tensor

# Python ints a float32 (so float64) holds exactly: larger ones are rounded, and the
# general conversion's rounding (through int64) is the one to keep.
_EXACT_FLOAT_INT = 1 << 24


def _shape_fits(dims, shape) -> bool:
    if dims is None:
        return True
    if len(dims) != len(shape):
        return False
    for d, s in zip(dims, shape):
        if d is not None and d != s:
            return False
    return True


def convert_feed_value(tensor: Tensor, value) -> np.ndarray:
    """Checks and converts one fed value; errors name the tensor and where it was created."""
    np_dtype = tensor.dtype.np_dtype
    if tensor.dtype is dtypes.string:
        return _convert_strings(tensor, value)
    if type(value) is np.ndarray and value.dtype == np_dtype:  # the common case, fast
        if _shape_fits(tensor._shape.dims, value.shape):
            return value
    elif type(value) is float and tensor.dtype.is_floating and \
            _shape_fits(tensor._shape.dims, ()):
        return np.array(value, np_dtype)
    try:
        array = np.asarray(value)
        ragged = None
    except ValueError as e:
        array, ragged = None, e
    if array is None or (array.dtype.kind in "OUS" and tensor.dtype is not dtypes.string):
        raise _unfeedable_error(tensor, value, ragged)
    array = _convert_dtype(tensor, array, value)
    if not tensor.shape.is_compatible_with(array.shape):
        raise errors.FeedError(
            f"Cannot feed value of shape {tuple(array.shape)} for Tensor {tensor.describe()}, "
            f"which has shape {tensor.shape}", tensor.op)
    return array


def number_range(value, dtype: dtypes.DType) -> Optional[Tuple[Any, Any]]:
    """For a Python number (or numpy scalar) fed to a tensor of `dtype`: the range of values
    of its type that `buffer[()] = value` converts exactly as `convert_feed_value` does, as
    (low, high), (None, None) when there is no bound; None when numbers of its type need
    `convert_feed_value` (a float fed to an int tensor: NaN and range are checked)."""
    kind = type(value)
    if kind is bool:
        return (None, None) if dtype is not dtypes.string else None
    if kind is float:
        return (None, None) if dtype.is_floating else None
    if kind is int:
        if dtype.is_integer:
            info = np.iinfo(dtype.np_dtype)
            return max(int(info.min), -(1 << 63)), min(int(info.max), (1 << 63) - 1)
        if dtype.np_dtype in (np.float32, np.float64):
            return -_EXACT_FLOAT_INT, _EXACT_FLOAT_INT
        return None
    if isinstance(value, np.generic) and value.dtype == dtype.np_dtype:
        return (None, None)  # (its own dtype: nothing to convert)
    return None


def _convert_strings(tensor: Tensor, value) -> np.ndarray:
    """A value fed to a string tensor: str/bytes, lists of them, numpy string or object
    arrays; an object array of bytes, as TF1 holds strings."""
    from flowjit.ops.strings import to_string_array
    try:
        array = to_string_array(value)
    except TypeError as e:
        raise errors.FeedError(f"Cannot feed {_describe(value)} to Tensor "
                               f"{tensor.describe()}, which has dtype string: {e}",
                               tensor.op) from None
    if not tensor.shape.is_compatible_with(array.shape):
        raise errors.FeedError(
            f"Cannot feed value of shape {tuple(array.shape)} for Tensor {tensor.describe()}, "
            f"which has shape {tensor.shape}", tensor.op)
    return array


def _unfeedable_error(tensor: Tensor, value, ragged: Optional[ValueError]
                      ) -> errors.FeedError:
    """Says which part of a fed value cannot be a number, and what it is."""
    found = _first_non_number(value, "")
    if found is not None:
        where, part = found
        what = _describe(part) if not where else f"{_describe(value)} whose item {where} is " \
            f"{_describe(part)}"
        hint = "; to use a tensor's value, fetch it with sess.run first" \
            if _is_graph_element(part) else ""
    else:
        what, hint = _describe(value), f": it is ragged ({ragged})" if ragged else ""
    return errors.FeedError(
        f"Cannot feed {what} to Tensor {tensor.describe()}, which has dtype "
        f"{tensor.dtype.name}{hint}. Feed values are Python numbers, (nested) lists of "
        f"numbers or numpy arrays.", tensor.op)


def _is_graph_element(value) -> bool:
    return isinstance(value, (Tensor, Operation)) or hasattr(value, "_as_graph_element")


def _describe(value) -> str:
    """What a fed value is, in a few words."""
    if value is None:
        return "None"
    if _is_graph_element(value):
        return f"the graph element {value!r}"
    if isinstance(value, (str, bytes)):
        text = repr(value)
        return f"the string {text if len(text) < 40 else text[:37] + '...'}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} items"
    if isinstance(value, np.ndarray) and value.dtype.kind in "OUS":
        what = "objects" if value.dtype.kind == "O" else "strings"
        return f"a numpy array of {what} (dtype {value.dtype})"
    return f"a value of type {type(value).__name__}"


def _first_non_number(value, where: str) -> Optional[Tuple[str, Any]]:
    """(index path, item) of the first item of a fed value, searching nested lists in order,
    that is not a number; None if all are. Only called to explain an error; iterative, so
    any nesting depth is fine."""
    stack = [(where, value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, (list, tuple)):
            stack.extend((f"{path}[{i}]", x) for i, x in reversed(list(enumerate(item))))
        elif not (isinstance(item, (bool, int, float, complex, np.generic, np.ndarray)) and
                  np.asarray(item).dtype.kind not in "OUS"):
            return path, item
    return None


def _convert_dtype(tensor: Tensor, array: np.ndarray, value) -> np.ndarray:
    """TF1's conversion, `np.asarray(value, dtype=tensor's dtype)`: numbers and bools
    convert to any numeric or bool dtype (float data fed to an int32 placeholder is
    truncated, as TF1 does); what TF1 refuses fails here, naming the tensor: values outside
    an integer dtype's range (NaN and infinities included)."""
    target = tensor.dtype
    source = array.dtype
    if source == target.np_dtype:
        return array
    if source.kind not in "biuf":
        raise errors.FeedError(
            f"Cannot feed a value of dtype {_dtype_name(source)} to Tensor {tensor.describe()}, "
            f"which has dtype {target.name}", tensor.op)
    if target.is_integer and source.kind in "iuf" and array.size:
        info = np.iinfo(target.np_dtype)
        if source.kind == "f" and not np.all(np.isfinite(array)):
            raise errors.FeedError(
                f"The value fed to {tensor.describe()} has NaN or infinite entries, which "
                f"{target.name} cannot hold", tensor.op)
        low, high = array.min(), array.max()
        if source.kind == "f":  # truncated toward zero: (min - 1, max + 1) fits
            bad = low <= float(info.min) - 1 or high >= float(info.max) + 1
        else:
            bad = low < info.min or high > info.max
        if bad:
            raise errors.FeedError(
                f"The value fed to {tensor.describe()} has entries outside the range of "
                f"{target.name} ([{low}, {high}])", tensor.op)
    return array.astype(target.np_dtype)


def _dtype_name(np_dtype: np.dtype) -> str:
    try:
        return dtypes.as_dtype(np_dtype).name
    except TypeError:
        return str(np_dtype)
