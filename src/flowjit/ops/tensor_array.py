"""`tf.TensorArray`: a list of same-shaped tensors written and read by index, as TF1's, held
as one dense tensor [size, *element_shape] (its `flow`).

A Session compiles per feed signature, so the array's size is known whenever a run is
compiled; the array is then a plain value: `write(i, v)` is `index_update(buffer, i, v)`
(a new TensorArray over the new buffer, as TF1's write returns a new flow), `read(i)` a
gather, `stack()` the buffer itself, `unstack(t)` an array over `t`. Everything on it is
ordinary IR, differentiable, and native where its ops are.

As a `tf.while_loop` variable the array is its buffer (function_graph.flatten/pack_as know it).
An array that enters a loop before any write has no element shape yet: the loop traces its
body once to find the shape of the first write, then starts the array as zeros of that shape
(TF1 infers it the same way, from the first write). Not supported: `dynamic_size=True`
arrays that grow past their size (the buffer's shape is fixed: a write past the end fails the
run with an IndexOutOfRangeError), `split`, and element shapes that differ between writes.
"""
from __future__ import annotations

from typing import Any, List, Optional

from flowjit import dtypes, errors
from flowjit.graph.core import Tensor
from flowjit.graph.shape import TensorShape, as_shape
from flowjit.ops.base import convert_to_tensor


class _Meta:
    """What every array derived from one `TensorArray(...)` shares: the element shape, once
    known (from `element_shape`, or the first write)."""

    def __init__(self, dtype: dtypes.DType, size: Any, element_shape: TensorShape,
                 name: str) -> None:
        self.dtype = dtype
        self.size = size
        self.element_shape = element_shape
        self.name = name


class TensorArray:
    """TF1's TensorArray over a dense buffer; see the module docstring."""

    def __init__(self, dtype, size=None, dynamic_size=None, clear_after_read=None,
                 tensor_array_name=None, handle=None, flow=None, infer_shape=True,
                 element_shape=None, colocate_with_first_write_call=True, name=None) -> None:
        dtype = dtypes.as_dtype(dtype)
        if flow is not None:
            flow = convert_to_tensor(flow, dtype=dtype)
            size = flow.shape.dims[0] if flow.shape.dims else size
            element_shape = flow.shape[1:] if flow.shape.dims is not None else element_shape
        if size is None:
            raise ValueError("tf.TensorArray: size must be given (flowjit's arrays have the "
                             "size they are created with)")
        if dynamic_size and isinstance(size, int) and size == 0:
            raise errors.UnimplementedError(
                f"tf.TensorArray '{tensor_array_name or name or 'TensorArray'}': "
                f"dynamic_size=True with size=0 grows with every write; flowjit's arrays have "
                f"a fixed size: give size= the number of elements (e.g. the loop's trip "
                f"count, or tf.shape(x)[0])")
        if not isinstance(size, int):
            size = convert_to_tensor(size, dtype=dtypes.int32)
            if size._value is not None:
                size = int(size._value)
        self._meta = _Meta(dtype, size, as_shape(element_shape) if element_shape is not None
                           else TensorShape(None), tensor_array_name or name or "TensorArray")
        self._dynamic_size = bool(dynamic_size)
        self._buffer: Optional[Tensor] = flow
        if self._buffer is None and self._meta.element_shape.is_fully_defined():
            self._buffer = self._zeros()

    # -- state ------------------------------------------------------------------------------
    @property
    def dtype(self) -> dtypes.DType:
        return self._meta.dtype

    @property
    def element_shape(self) -> TensorShape:
        return self._meta.element_shape

    @property
    def flow(self) -> Tensor:
        """The dense [size, *element_shape] buffer."""
        return self._materialized()

    @property
    def handle(self) -> Tensor:
        return self.flow

    def _with_buffer(self, buffer: Tensor) -> "TensorArray":
        new = object.__new__(TensorArray)
        new._meta, new._dynamic_size, new._buffer = self._meta, self._dynamic_size, buffer
        return new

    def _zeros(self) -> Tensor:
        from flowjit.ops.array import concat
        from flowjit.ops.creation import zeros
        meta = self._meta
        if isinstance(meta.size, int):
            return zeros([meta.size] + meta.element_shape.as_list(), meta.dtype)
        return zeros(concat([[meta.size], meta.element_shape.as_list()], 0), meta.dtype)

    def _materialized(self) -> Tensor:
        if self._buffer is None:
            if not self._meta.element_shape.is_fully_defined():
                raise errors.UnimplementedError(
                    f"TensorArray '{self._meta.name}' is read before any write and its "
                    f"element shape is unknown: give tf.TensorArray an element_shape")
            self._buffer = self._zeros()
        return self._buffer

    # -- TF1's methods ----------------------------------------------------------------------
    def size(self, name=None) -> Tensor:
        from flowjit.ops.array import shape
        size = self._meta.size
        if isinstance(size, int):
            return convert_to_tensor(size, dtype=dtypes.int32)
        return shape(self._materialized(), out_type=dtypes.int32)[0]

    def write(self, index, value, name=None) -> "TensorArray":
        from flowjit.ops.functional import index_update
        value = convert_to_tensor(value, dtype=self.dtype)
        self._learn_shape(value.shape)
        buffer = self._buffer if self._buffer is not None else self._zeros()
        return self._with_buffer(index_update(buffer, convert_to_tensor(index), value,
                                              name=name or "TensorArrayWrite"))

    def read(self, index, name=None) -> Tensor:
        from flowjit.ops.indexing import gather
        return gather(self._materialized(), index, name=name or "TensorArrayRead")

    def gather(self, indices, element_shape=None, name=None) -> Tensor:
        from flowjit.ops.indexing import gather
        return gather(self._materialized(), indices, name=name or "TensorArrayGather")

    def stack(self, name=None) -> Tensor:
        from flowjit.ops.array import identity
        return identity(self._materialized(), name=name or "TensorArrayStack")

    def concat(self, name=None) -> Tensor:
        from flowjit.ops.array import reshape
        buffer = self._materialized()
        rest = self._meta.element_shape.as_list()[1:]
        return reshape(buffer, [-1] + rest, name=name or "TensorArrayConcat")

    def unstack(self, value, name=None) -> "TensorArray":
        value = convert_to_tensor(value, dtype=self.dtype)
        if value.shape.dims is not None and isinstance(self._meta.size, int) and \
                value.shape.dims[0] is not None and value.shape.dims[0] != self._meta.size:
            raise errors.InvalidArgumentError(
                f"TensorArray '{self._meta.name}' has size {self._meta.size}; cannot unstack "
                f"a tensor of shape {value.shape} into it")
        self._learn_shape(value.shape[1:] if value.shape.dims is not None else
                          TensorShape(None))
        return self._with_buffer(value)

    def scatter(self, indices, value, name=None) -> "TensorArray":
        value = convert_to_tensor(value, dtype=self.dtype)
        indices = convert_to_tensor(indices, dtype=dtypes.int32)
        count = value.shape.dims[0] if value.shape.dims else None
        if count is None:
            raise errors.UnimplementedError("TensorArray.scatter needs a value whose leading "
                                            "dimension is known when the graph is built")
        from flowjit.ops.indexing import gather
        array = self
        for k in range(count):
            array = array.write(gather(indices, k), gather(value, k))
        return array

    def identity(self) -> "TensorArray":
        return self

    def close(self, name=None):
        from flowjit.ops.state import no_op
        return no_op(name=name)

    def _learn_shape(self, shape: TensorShape) -> None:
        known = self._meta.element_shape
        if not known.is_compatible_with(shape):
            raise errors.ShapeError(f"TensorArray '{self._meta.name}' holds elements of shape "
                                    f"{known}; cannot write a value of shape {shape}")
        if known.dims is None or not known.is_fully_defined():
            self._meta.element_shape = known.merge_with(shape) if known.dims is not None \
                else shape

    def __repr__(self) -> str:
        return (f"<tf.TensorArray '{self._meta.name}' size={self._meta.size} "
                f"dtype={self.dtype.name} element_shape={self._meta.element_shape}>")


def is_deferred(value: Any) -> bool:
    """An array with no buffer yet (no write, element shape unknown)."""
    return isinstance(value, TensorArray) and value._buffer is None
