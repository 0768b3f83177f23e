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


# Codegen roles (OpDef.role): how fusion and code generation treat an op.
ELEMENTWISE = "elementwise"  # out[i] = f(in[i] after broadcasting): fuses into loops
REDUCTION = "reduction"      # folds axes with `combiner`; takes an elementwise prologue
CONTRACTION = "contraction"  # sum over a shared axis (matmul); takes an elementwise epilogue
CONVOLUTION = "convolution"  # a contraction over windows (conv2d: a GEMM of im2col patches)
CONTRACTIONS = (CONTRACTION, CONVOLUTION)  # the roles that run as a GEMM with an epilogue
ROWWISE = "rowwise"          # along the last axis, row by row (softmax, cross-entropy)
LAYOUT = "layout"            # a copy through an affine index map (transpose, slice)
ALIAS = "alias"              # the same buffer seen with another shape (reshape): no copy
GATHER = "gather"            # rows picked by an index tensor
CONCAT = "concat"            # operands side by side along an axis
REGION = "region"            # holds a region of other instructions (fusion)
OPAQUE = "opaque"            # no kernel: runs as its numpy reference
# Reductions' combiners: how two partial results combine.
COMBINERS = ("sum", "mean", "prod", "max", "min", "any", "all")


class OpDef:
    """Everything about one op type. `kernel(*inputs, **attrs)` returns an array or tuple."""

    __slots__ = ("type", "mnemonic", "infer", "kernel", "stateful", "uses_rng",
                 "assigns_variable", "elementwise", "check_inputs", "grad", "lowering",
                 "attr_defaults", "has_effects", "role", "combiner", "affine_map",
                 "emitters")

    def __init__(self, type: str, mnemonic: str, infer: Callable[..., Sequence[TensorSpec]],
                 kernel: Optional[Callable[..., Any]], *, stateful: bool = False,
                 uses_rng: bool = False, assigns_variable: bool = False,
                 elementwise: bool = False, check_inputs: Optional[Callable] = None,
                 has_effects: bool = False, role: Optional[str] = None,
                 combiner: Optional[str] = None, affine_map: Optional[Callable] = None,
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
        # Codegen: the role decides which kernel kind the op becomes (codegen/schedule.py)
        # and what fusion may group it with; a reduction also names its combiner.
        if role is None:
            role = ELEMENTWISE if self.elementwise else OPAQUE
        if has_effects:
            role = OPAQUE
        if (role == REDUCTION) != (combiner is not None) or \
                (combiner is not None and combiner not in COMBINERS):
            raise ValueError(f"op {type}: a reduction and only a reduction has a combiner "
                             f"(one of {COMBINERS}), got role {role}, combiner {combiner}")
        self.role = role
        self.combiner = combiner
        # A layout op's index map: affine_map(in_shape, out_shape, **attrs) -> (base,
        # strides): output index i reads input element base + sum(i[d] * strides[d]).
        if (role == LAYOUT) != (affine_map is not None):
            raise ValueError(f"op {type}: a layout op and only a layout op has an affine map")
        self.affine_map = affine_map
        # target name -> emitter of the op's kernel on that target, registered by the
        # codegen modules (`register_emitter`); elementwise ops' scalar emitters are in
        # codegen/scalar.py, keyed by mnemonic.
        self.emitters: Dict[str, Callable[..., Any]] = {}
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
    for target, by_role in _ROLE_EMITTERS.items():
        if op_def.role in by_role:
            op_def.emitters[target] = by_role[op_def.role]
    OP_DEFS[type] = op_def
    _BY_MNEMONIC[mnemonic] = op_def
    return op_def


# target -> role -> the emitter every op of that role uses there (unless it has its own)
_ROLE_EMITTERS: Dict[str, Dict[str, Callable[..., Any]]] = {}


def register_emitter(target: str, emitter: Callable[..., Any], *, role: Optional[str] = None,
                     op: Optional[str] = None) -> None:
    """Makes `emitter` emit kernels on `target` for the op type `op`, or for every op of
    `role` (also those registered later) that has no emitter of its own there."""
    if (role is None) == (op is None):
        raise ValueError("register_emitter needs exactly one of role= and op=")
    if op is not None:
        get_op_def(op).emitters[target] = emitter
        return
    _ROLE_EMITTERS.setdefault(target, {})[role] = emitter
    for op_def in OP_DEFS.values():
        if op_def.role == role:
            op_def.emitters.setdefault(target, emitter)


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
