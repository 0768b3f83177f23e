"""The op table: one `OpDef` per op type, holding everything flowjit knows about the op.

An op is described once, where it is registered (see `flowjit/ops/`):
  - `infer`:  the shape/dtype rule, run at graph-build time on `TensorSpec`s;
  - `kernel`: the numpy reference implementation, the spec every backend is checked against;
  - `grad`, `lowering`: filled in by the autodiff and codegen layers as they land.
Nothing else in flowjit switches on op types.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Sequence

import numpy as np

from flowjit import dtypes
from flowjit.graph.shape import TensorShape


@dataclass(frozen=True)
class TensorSpec:
    """What is statically known of a tensor: dtype, shape and, for constants, the value."""

    dtype: dtypes.DType
    shape: TensorShape
    value: Optional[np.ndarray] = field(default=None, compare=False)


class ShapeInferenceError(Exception):
    """Raised by a shape rule; the graph adds the op's name, site and operands to it."""


class OpDef:
    """Everything about one op type. `kernel(*inputs, **attrs)` returns an array or tuple."""

    __slots__ = ("type", "mnemonic", "infer", "kernel", "stateful", "uses_rng",
                 "assigns_variable", "elementwise", "check_inputs", "grad", "lowering",
                 "attr_defaults", "has_effects")

    def __init__(self, type: str, mnemonic: str, infer: Callable[..., Sequence[TensorSpec]],
                 kernel: Optional[Callable[..., Any]], *, stateful: bool = False,
                 uses_rng: bool = False, assigns_variable: bool = False,
                 elementwise: bool = False, check_inputs: Optional[Callable] = None,
                 has_effects: bool = False,
                 attr_defaults: Optional[Dict[str, Any]] = None) -> None:
        self.type = type
        self.mnemonic = mnemonic
        self.infer = infer
        self.kernel = kernel
        # Effects outside the values it computes (printing, writing a summary, a collective
        # with other processes): never removed by DCE, even when no result is used.
        self.has_effects = has_effects
        # Stateful ops (random, variable access, effects) are never CSE'd or constant-folded.
        self.stateful = stateful or uses_rng or has_effects
        self.uses_rng = uses_rng
        # Elementwise: output[i] depends only on input[i] (after broadcasting); fusible (an
        # op with effects is not: a fused loop would perform them once per element).
        self.elementwise = elementwise and not has_effects
        # check_inputs(*inputs, **attrs) raises the op's error for bad values (indices out of
        # range); the numpy kernel and every compiled backend call it before computing.
        self.check_inputs = check_inputs
        # Assign-like ops: input 0 is a variable; the output is that variable's new value.
        self.assigns_variable = assigns_variable
        if assigns_variable:
            self.stateful = True
        self.grad: Optional[Callable[..., Any]] = None
        self.lowering: Optional[Callable[..., Any]] = None
        self.attr_defaults = dict(attr_defaults or {})

    def __repr__(self) -> str:
        return f"OpDef({self.type})"


OP_DEFS: Dict[str, OpDef] = {}
_BY_MNEMONIC: Dict[str, OpDef] = {}


def register_op(type: str, mnemonic: str, infer: Callable[..., Sequence[TensorSpec]],
                kernel: Optional[Callable[..., Any]], **kwargs: Any) -> OpDef:
    if type in OP_DEFS:
        raise ValueError(f"op type {type!r} registered twice")
    if mnemonic in _BY_MNEMONIC:
        raise ValueError(f"op mnemonic {mnemonic!r} registered twice")
    op_def = OpDef(type, mnemonic, infer, kernel, **kwargs)
    OP_DEFS[type] = op_def
    _BY_MNEMONIC[mnemonic] = op_def
    return op_def


def get_op_def(type: str) -> OpDef:
    try:
        return OP_DEFS[type]
    except KeyError:
        raise KeyError(f"no op type {type!r} is registered") from None


def get_op_def_by_mnemonic(mnemonic: str) -> OpDef:
    try:
        return _BY_MNEMONIC[mnemonic]
    except KeyError:
        raise KeyError(f"no op {mnemonic!r} is registered") from None


def register_gradient(type: str) -> Callable[[Callable], Callable]:
    """Decorator that attaches a gradient rule to an already registered op."""

    def attach(fn: Callable) -> Callable:
        get_op_def(type).grad = fn
        return fn

    return attach


class DTypeInferenceError(ShapeInferenceError):
    """Raised by a shape rule when operand dtypes do not fit the op."""
