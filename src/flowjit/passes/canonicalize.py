"""Algebraic simplification. Each rule looks at one instruction (and the producers of its
operands) and either forwards an existing value or builds a simpler instruction:

    identity(x), stop_gradient(x), convert(x: T -> T)  -> x
    x + 0, 0 + x, x - 0, x * 1, 1 * x, x / 1, x ** 1   -> x   (when no broadcast grows x)
    x ** 2                                              -> square(x)
    neg(neg(x))                                         -> x
    transpose(transpose(x, p), q)                       -> transpose(x, p.q), or x
    reshape(reshape(x)), squeeze/expand_dims            -> one reshape, or x
    binary(x, broadcast_scalar(c)) keeping x's shape    -> binary(x, c)
    zeros_like(x), ones_like(x) of a static shape       -> a constant (broadcast if large)
    cond(constant predicate or index, ...)              -> the taken branch, inlined

stop_gradient is removed here because gradient generation runs before this pass.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from flowjit.interp.evaluate import branch_index
from flowjit.ir.core import (COND, FUSION, Func, Instr, Rewritten, TensorType, Value, inline,
                             rewrite_uses)

Rewrite = Union[Value, Instr, List[Instr], None]  # a list: the last one defines the result


class _Context:
    def __init__(self) -> None:
        self.producer: Dict[Value, Instr] = {}

    def produced(self, instrs: List[Instr]) -> List[Instr]:
        """Records `instrs` (emitted) as their results' producers; returns them."""
        for instr in instrs:
            for r in instr.results:
                self.producer[r] = instr
        return instrs

    def splat(self, value: Value) -> Optional[float]:
        """The single scalar a value is filled with, if it is a constant splat."""
        instr = self.producer.get(value)
        while instr is not None and instr.op == "broadcast_scalar":  # (chains of them)
            instr = self.producer.get(instr.operands[0])
        if instr is None or instr.op != "constant":
            return None
        flat = instr.attrs["value"].reshape(-1)
        if flat.size and np.all(flat == flat[0]):
            return flat[0].item()
        return None


def _same_type(a: Value, b: Value) -> bool:
    return a.type == b.type


def _forward_if_neutral(neutral: float, positions=(0, 1)):
    """x op neutral -> x (and neutral op x -> x for commutative ops)."""
    def rule(instr: Instr, ctx: _Context) -> Rewrite:
        x, y = instr.operands
        result = instr.result
        if 1 in positions and ctx.splat(y) == neutral and _same_type(x, result):
            return x
        if 0 in positions and ctx.splat(x) == neutral and _same_type(y, result):
            return y
        return None
    return rule


def _forward_operand(instr: Instr, ctx: _Context) -> Rewrite:
    return instr.operands[0]


def _convert(instr: Instr, ctx: _Context) -> Rewrite:
    return instr.operands[0] if _same_type(instr.operands[0], instr.result) else None


def _pow(instr: Instr, ctx: _Context) -> Rewrite:
    x, y = instr.operands
    exponent = ctx.splat(y)
    if exponent == 1 and _same_type(x, instr.result):
        return x
    if exponent == 2 and _same_type(x, instr.result):
        return Instr("square", [x], {}, instr.results, instr.loc)
    return None


def _neg(instr: Instr, ctx: _Context) -> Rewrite:
    inner = ctx.producer.get(instr.operands[0])
    if inner is not None and inner.op == "neg":
        return inner.operands[0]
    return None


def _transpose(instr: Instr, ctx: _Context) -> Rewrite:
    perm = tuple(instr.attrs["perm"])
    x = instr.operands[0]
    inner = ctx.producer.get(x)
    if inner is not None and inner.op == "transpose":
        inner_perm = tuple(inner.attrs["perm"])
        perm = tuple(inner_perm[p] for p in perm)
        x = inner.operands[0]
    if perm == tuple(range(len(perm))):
        return x
    if x is instr.operands[0]:
        return None
    return Instr("transpose", [x], {"perm": perm}, instr.results, instr.loc)


def _reshape_like(instr: Instr, ctx: _Context) -> Rewrite:
    """reshape / squeeze / expand_dims with a static result: one reshape of the source."""
    result = instr.result
    if not result.type.is_static:
        return None
    x = instr.operands[0]
    inner = ctx.producer.get(x)
    if inner is not None and inner.op in ("reshape", "squeeze", "expand_dims"):
        x = inner.operands[0]
    if x.type == result.type:
        return x
    if instr.op == "reshape" and x is instr.operands[0]:
        return None
    return Instr("reshape", [x], {"shape": tuple(result.type.shape)}, instr.results, instr.loc)


def _drop_scalar_broadcast(instr: Instr, ctx: _Context) -> Rewrite:
    """binary(x, broadcast(c)) -> binary(x, c) when x alone has the result's shape; a
    splat constant operand becomes a scalar constant the same way."""
    if not instr.op_def.elementwise or len(instr.operands) != 2:
        return None
    operands = list(instr.operands)
    for i, j in ((0, 1), (1, 0)):
        producer = ctx.producer.get(operands[i])
        if producer is None or operands[j].type.shape != instr.result.type.shape:
            continue
        if producer.op in ("broadcast_scalar", "broadcast_to") and \
                producer.operands[0].type.shape == ():
            operands[i] = producer.operands[0]
            return Instr(instr.op, operands, instr.attrs, instr.results, instr.loc)
        splat = ctx.splat(operands[i])
        if producer.op == "constant" and splat is not None and operands[i].type.shape != ():
            dtype = operands[i].type.dtype
            scalar = Value(TensorType(dtype, ()))
            operands[i] = scalar
            return [Instr("constant", [], {"dtype": dtype,
                                           "value": np.full((), splat, dtype.np_dtype)},
                          [scalar], producer.loc),
                    Instr(instr.op, operands, instr.attrs, instr.results, instr.loc)]
    return None


def _filled_like(fill: float):
    """zeros_like / ones_like of a static shape: a constant the folder can use."""
    def rule(instr: Instr, ctx: _Context) -> Rewrite:
        result = instr.result
        if not result.type.is_static:
            return None
        dtype = result.type.dtype
        if result.type.num_elements <= 1:
            value = np.full(result.type.shape, fill, dtype.np_dtype)
            return Instr("constant", [], {"dtype": dtype, "value": value}, instr.results,
                         instr.loc)
        scalar = Value(TensorType(dtype, ()))
        constant = Instr("constant", [], {"dtype": dtype,
                                          "value": np.full((), fill, dtype.np_dtype)},
                         [scalar], instr.loc)
        return [constant, Instr("broadcast_to", [scalar], {"shape": result.type.shape},
                                instr.results, instr.loc)]
    return rule


def _taken_branch(instr: Instr, ctx: _Context) -> Optional[int]:
    """The branch a cond takes when its predicate is a constant (XLA folds these too)."""
    if instr.op != COND:
        return None
    producer = ctx.producer.get(instr.operands[0])
    if producer is None or producer.op != "constant":
        return None
    return branch_index(instr, producer.attrs["value"])


RULES: Dict[str, Callable[[Instr, _Context], Rewrite]] = {
    "identity": _forward_operand,
    "stop_gradient": _forward_operand,
    "convert": _convert,
    "add": _forward_if_neutral(0),
    "sub": _forward_if_neutral(0, positions=(1,)),
    "mul": _forward_if_neutral(1),
    "div": _forward_if_neutral(1, positions=(1,)),
    "pow": _pow,
    "neg": _neg,
    "transpose": _transpose,
    "reshape": _reshape_like,
    "squeeze": _reshape_like,
    "expand_dims": _reshape_like,
    "zeros_like": _filled_like(0),
    "ones_like": _filled_like(1),
}


def run(func: Func) -> Tuple[Func, bool]:
    ctx = _Context()

    def simplify(instr: Instr, body: List[Instr]) -> Optional[Rewritten]:
        taken = _taken_branch(instr, ctx)
        if taken is not None:
            instrs, values = inline(instr.regions[taken], instr.operands[1:])
            return ctx.produced(instrs), dict(zip(instr.results, values))
        rewrite = None
        if instr.op != FUSION:
            rule = RULES.get(instr.op)
            rewrite = rule(instr, ctx) if rule else None
            if rewrite is None:
                rewrite = _drop_scalar_broadcast(instr, ctx)
        if isinstance(rewrite, Value):
            return [], {instr.result: rewrite}
        if rewrite is None:
            ctx.produced([instr])
            return None
        return ctx.produced([rewrite] if isinstance(rewrite, Instr) else rewrite), {}
    return rewrite_uses(func, simplify)
