"""Builds IR instructions with their types inferred from the op table.

    b = Builder(loc)
    dy = b.mul(g, b.sub(b.constant(1.0, f32), b.square(y)))    # one instruction each

`b.<mnemonic>(*operands, **attrs)` emits any registered op; the helpers below cover the
patterns gradient rules need (constants, broadcasting back to a shape, zeros).
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from flowjit import dtypes
from flowjit.graph.registry import get_op_def_by_mnemonic
from flowjit.ir.core import Instr, Location, TensorType, Value, infer_results


class Builder:
    def __init__(self, loc: Optional[Location] = None) -> None:
        self.instrs: List[Instr] = []
        self.loc = loc

    def emit(self, mnemonic: str, operands: Sequence[Value], **attrs) -> List[Value]:
        op_def = get_op_def_by_mnemonic(mnemonic)
        attrs = {**op_def.attr_defaults, **attrs}
        results = [Value(t) for t in infer_results(op_def, operands, attrs)]
        self.instrs.append(Instr(mnemonic, list(operands), attrs, results, self.loc))
        return results

    def __getattr__(self, mnemonic: str):
        if mnemonic.startswith("_"):
            raise AttributeError(mnemonic)
        get_op_def_by_mnemonic(mnemonic)  # unknown ops fail here, by name

        def build(*operands: Value, **attrs) -> Value:
            (result,) = self.emit(mnemonic, operands, **attrs)
            return result
        return build

    # -- helpers ----------------------------------------------------------------------------
    def constant(self, value, dtype: dtypes.DType) -> Value:
        array = np.asarray(value, dtype=dtype.np_dtype)
        (result,) = self.emit("constant", [], value=array, dtype=dtype)
        return result

    def scalar_like(self, value: float, like: Value) -> Value:
        return self.constant(value, like.type.dtype)

    def zeros(self, type: TensorType) -> Value:
        zero = self.constant(0, type.dtype)
        if type.shape == ():
            return zero
        return self.broadcast_to(zero, shape=_full_shape(type))

    def sum_to(self, g: Value, type: TensorType) -> Value:
        """Sums `g` over the axes along which a value of `type` was broadcast to g's shape
        (the adjoint of numpy broadcasting)."""
        g_shape, shape = g.type.shape, type.shape
        if g_shape == shape:
            return g
        lead = len(g_shape) - len(shape)
        axes = list(range(lead)) + [lead + i for i, d in enumerate(shape)
                                    if d == 1 and g_shape[lead + i] != 1]
        if axes:
            g = self.reduce_sum(g, axis=tuple(axes), keepdims=False)
        if g.type.shape != shape:
            g = self.reshape(g, shape=_static_shape(type))
        return g

    def broadcast_back(self, g: Value, reduced_axes: Optional[Tuple[int, ...]], keepdims: bool,
                       type: TensorType) -> Value:
        """The adjoint of a reduction: g (the reduced shape) broadcast back to `type`."""
        rank = len(type.shape)
        axes = tuple(range(rank)) if reduced_axes is None else reduced_axes
        if not keepdims:
            kept = tuple(1 if i in axes else d for i, d in enumerate(type.shape))
            g = self.reshape(g, shape=_static_shape(TensorType(type.dtype, kept)))
        return self.broadcast_to(g, shape=_full_shape(type))


def _static_shape(type: TensorType) -> Tuple[int, ...]:
    """A shape attribute for reshape/broadcast; one unknown dim becomes -1."""
    if type.shape is None:
        raise ValueError(f"gradient needs a known rank, got {type}")
    unknown = [i for i, d in enumerate(type.shape) if d is None]
    if len(unknown) > 1:
        raise ValueError(f"gradient needs at most one unknown dimension, got {type}; "
                         f"run with concrete feeds (sess.run specializes shapes)")
    return tuple(-1 if d is None else d for d in type.shape)


def _full_shape(type: TensorType) -> Tuple[int, ...]:
    if type.shape is None or any(d is None for d in type.shape):
        raise ValueError(f"gradient needs a fully known shape here, got {type}; run with "
                         f"concrete feeds (sess.run specializes shapes)")
    return tuple(type.shape)
