"""Checks a Func's invariants: SSA (each value defined once, before its uses), known ops,
attributes, and types (each instruction's result types are what its op's shape rule gives for
its operand types). Run after every pass in tests; raises `VerificationError`."""
from __future__ import annotations

from typing import Callable, Dict, Hashable, List, Set

from flowjit.graph.registry import ShapeInferenceError
from flowjit.graph.shape import TensorShape
from flowjit.ir.core import FUSION, Func, Instr, TensorType, Value


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
    if instr.op == FUSION:
        region = instr.region
        if region is None:
            raise VerificationError(f"{where()}: a fusion needs a region")
        if len(region.params) != len(instr.operands):
            raise VerificationError(f"{where()}: region has {len(region.params)} params for "
                                    f"{len(instr.operands)} operands")
        for p, operand in zip(region.params, instr.operands):
            if p.value.type != operand.type:
                raise VerificationError(f"{where()}: region param {p.value.type} does not "
                                        f"match operand {operand.type}")
        inner: Set[Value] = set()
        for p in region.params:
            _define(p.value, inner, lambda: f"{where()} region parameter")
        _verify_body(region, inner, inferred)
        if [r.value.type for r in region.results] != [v.type for v in instr.results]:
            raise VerificationError(f"{where()}: region yields types that differ from the "
                                    f"fusion's result types")
        return
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
        specs = op_def.infer([v.type.to_spec() for v in instr.operands], **instr.attrs)
    except ShapeInferenceError as e:
        raise VerificationError(f"{where()}: shape rule rejects the operands: {e}") from None
    except TypeError as e:
        raise VerificationError(f"{where()}: bad attributes {sorted(instr.attrs)}: "
                                f"{e}") from None
    return [TensorType.from_spec(spec) for spec in specs]
