"""Checks a Func's invariants: SSA (each value defined once, before its uses), known ops,
attributes, and types (each instruction's result types are what its op's shape rule gives for
its operand types). Run after every pass in tests; raises `VerificationError`."""
from __future__ import annotations

from typing import Callable, Dict, Hashable, List, Set

from flowjit import dtypes
from flowjit.graph.registry import ShapeInferenceError
from flowjit.graph.shape import TensorShape
from flowjit.ir.core import (COND, CUSTOM_GRADIENT, FUSION, WHILE, Func, Instr, TensorType, Value,
                             infer_results)


_BOOL = dtypes.bool_


class VerificationError(AssertionError):
    pass


def verify(func: Func) -> None:
    defined: Set[Value] = set()
    for p in func.params:
        _define(p.value, defined, lambda: f"parameter {p.key!r}")
    _verify_body(func, defined, {})


# An instruction's expected result types, by its signature (op, operand types, attributes):
# a program repeats a few signatures many times, and shape rules are the verifier's main cost.
_Inferred = Dict[Hashable, List[TensorType]]


def _verify_body(func: Func, defined: Set[Value], inferred: _Inferred) -> None:
    for index, instr in enumerate(func.body):
        def where(index=index, instr=instr) -> str:
            return f"instruction {index} ({instr.op} at {instr.describe()})"

        for operand in instr.operands:
            if operand not in defined:
                raise VerificationError(f"{where()} uses a value not defined before it: "
                                        f"{operand!r}")
        _verify_types(instr, where, inferred)
        for result in instr.results:
            _define(result, defined, where)
    for r in func.results:
        if r.value not in defined:
            raise VerificationError(f"result {r.key!r} is not defined: {r.value!r}")


def _define(value: Value, defined: Set[Value], where: Callable[[], str]) -> None:
    if value in defined:
        raise VerificationError(f"{where()} redefines {value!r} (not SSA)")
    defined.add(value)


def _verify_types(instr: Instr, where: Callable[[], str], inferred: _Inferred) -> None:
    check = _REGION_OPS.get(instr.op)
    if check is not None:
        check(instr, where, inferred)
        return
    if instr.regions:
        raise VerificationError(f"{where()}: op '{instr.op}' has no regions")
    signature = _signature(instr)
    try:
        expected = inferred.get(signature)
    except TypeError:  # an unhashable attribute (a constant's array): checked on its own
        expected = signature = None
    if expected is None:
        expected = _infer(instr, where)
        if signature is not None:
            inferred[signature] = expected
    if len(expected) != len(instr.results):
        raise VerificationError(f"{where()}: op gives {len(expected)} results, instruction "
                                f"has {len(instr.results)}")
    for want, result in zip(expected, instr.results):
        if want.dtype is result.type.dtype and want.shape == result.type.shape:
            continue
        if want.dtype is not result.type.dtype or not TensorShape(
                want.shape).is_compatible_with(TensorShape(result.type.shape)):
            raise VerificationError(f"{where()}: result declared {result.type} but the shape "
                                    f"rule gives {want}")


def _signature(instr: Instr) -> Hashable:
    """What an instruction's result types depend on (a key that may not be hashable: array
    attributes are not)."""
    return (instr.op, tuple([(v.type.dtype, v.type.shape) for v in instr.operands]),
            tuple([(key, type(value), value) for key, value in sorted(instr.attrs.items())]))


def _infer(instr: Instr, where: Callable[[], str]) -> List[TensorType]:
    try:
        op_def = instr.op_def
    except KeyError as e:
        raise VerificationError(f"{where()}: {e}") from None
    try:
        return infer_results(op_def, instr.operands, instr.attrs)
    except ShapeInferenceError as e:
        raise VerificationError(f"{where()}: shape rule rejects the operands: {e}") from None
    except TypeError as e:
        raise VerificationError(f"{where()}: bad attributes {sorted(instr.attrs)}: "
                                f"{e}") from None


# -- region ops ----------------------------------------------------------------------------------
def _verify_region(instr: Instr, region: Func, what: str, param_types: List[TensorType],
                   yield_types: List[TensorType], where: Callable[[], str],
                   inferred: _Inferred) -> None:
    """A region is closed (it reads only its params), takes `param_types` and yields values
    of `yield_types` (a yielded shape may be more specific than the one declared)."""
    if [p.value.type for p in region.params] != param_types:
        raise VerificationError(f"{where()}: {what} takes "
                                f"{[str(p.value.type) for p in region.params]}, expected "
                                f"{[str(t) for t in param_types]}")
    inner: Set[Value] = set()
    for p in region.params:
        _define(p.value, inner, lambda: f"{where()} {what} parameter")
    _verify_body(region, inner, inferred)
    got = [r.value.type for r in region.results]
    if len(got) != len(yield_types) or any(
            g.dtype is not w.dtype or not TensorShape(g.shape).is_compatible_with(
                TensorShape(w.shape)) for g, w in zip(got, yield_types)):
        raise VerificationError(f"{where()}: {what} yields {[str(t) for t in got]}, "
                                f"expected {[str(t) for t in yield_types]}")


def _verify_fusion(instr: Instr, where: Callable[[], str], inferred: _Inferred) -> None:
    if len(instr.regions) != 1:
        raise VerificationError(f"{where()}: a fusion needs one region")
    region = instr.regions[0]
    for p, operand in zip(region.params, instr.operands):
        if p.value.type != operand.type:
            raise VerificationError(f"{where()}: region param {p.value.type} does not "
                                    f"match operand {operand.type}")
    _verify_region(instr, region, "region", [v.type for v in instr.operands],
                   [v.type for v in instr.results], where, inferred)
    if [r.value.type for r in region.results] != [v.type for v in instr.results]:
        raise VerificationError(f"{where()}: region yields types that differ from the "
                                f"fusion's result types")


def _verify_cond(instr: Instr, where: Callable[[], str], inferred: _Inferred) -> None:
    """`cond %pred, %args...`: a bool predicate picks branch 0 (true) or 1 (false); an
    int32 index picks that branch, or the last one when out of range (XLA's rule)."""
    if not instr.operands:
        raise VerificationError(f"{where()}: a cond needs a predicate")
    pred = instr.operands[0].type
    if pred.shape != () or pred.dtype not in (_BOOL, dtypes.int32):
        raise VerificationError(f"{where()}: the predicate must be a bool or int32 scalar, "
                                f"got {pred}")
    wanted = 2 if pred.dtype is _BOOL else None
    if len(instr.regions) < 1 or (wanted and len(instr.regions) != wanted):
        raise VerificationError(f"{where()}: a cond on {pred} has {len(instr.regions)} "
                                f"branches")
    for number, region in enumerate(instr.regions):
        _verify_region(instr, region, f"branch {number}", [v.type for v in instr.operands[1:]],
                       [v.type for v in instr.results], where, inferred)


def _verify_while(instr: Instr, where: Callable[[], str], inferred: _Inferred) -> None:
    """`while %vars..., %invariants...`: the condition region yields a bool scalar, the body
    the next loop variables; both take the variables (of the result types) and invariants."""
    if len(instr.regions) != 2:
        raise VerificationError(f"{where()}: a while needs a condition and a body region")
    n = len(instr.results)
    if n > len(instr.operands):
        raise VerificationError(f"{where()}: {n} results for {len(instr.operands)} operands")
    for value, result in zip(instr.operands, instr.results):
        if value.type.dtype is not result.type.dtype or not TensorShape(
                value.type.shape).is_compatible_with(TensorShape(result.type.shape)):
            raise VerificationError(f"{where()}: loop variable enters as {value.type} but "
                                    f"is declared {result.type}")
    params = [r.type for r in instr.results] + [v.type for v in instr.operands[n:]]
    condition, body = instr.regions
    _verify_region(instr, condition, "the condition", params,
                   [TensorType(_BOOL, ())], where, inferred)
    _verify_region(instr, body, "the body", params, [r.type for r in instr.results], where,
                   inferred)


def _verify_custom_gradient(instr: Instr, where: Callable[[], str], inferred: _Inferred) -> None:
    """`custom_gradient %ys..., %xs..., %captured...`: results typed as the ys; the region
    takes a cotangent per y and the captures, and yields a gradient per x."""
    k, m = instr.attrs.get("n_outputs", 0), instr.attrs.get("n_inputs", 0)
    if len(instr.regions) != 1 or k + m > len(instr.operands) or len(instr.results) != k:
        raise VerificationError(f"{where()}: a custom_gradient needs one region, and "
                                f"n_outputs={k} results and n_outputs + n_inputs <= its "
                                f"{len(instr.operands)} operands")
    ys, xs = instr.operands[:k], instr.operands[k:k + m]
    if [v.type for v in ys] != [r.type for r in instr.results]:
        raise VerificationError(f"{where()}: results {[str(r.type) for r in instr.results]} "
                                f"differ from the forward values' types")
    _verify_region(instr, instr.regions[0], "the gradient function",
                   [v.type for v in ys + instr.operands[k + m:]], [v.type for v in xs], where,
                   inferred)


_REGION_OPS = {FUSION: _verify_fusion, COND: _verify_cond, WHILE: _verify_while,
               CUSTOM_GRADIENT: _verify_custom_gradient}
