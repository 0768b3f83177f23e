"""Checks a Func's invariants: SSA (each value defined once, before its uses), known ops,
attributes, and types (each instruction's result types are what its op's shape rule gives for
its operand types). Run after every pass in tests; raises `VerificationError`."""
from __future__ import annotations

from typing import Set

from flowjit.graph.registry import ShapeInferenceError
from flowjit.graph.shape import TensorShape
from flowjit.ir.core import FUSION, Func, Instr, TensorType, Value


class VerificationError(AssertionError):
    pass


def verify(func: Func) -> None:
    defined: Set[Value] = set()
    for p in func.params:
        _define(p.value, defined, f"parameter {p.key!r}")
    _verify_body(func, defined)


def _verify_body(func: Func, defined: Set[Value]) -> None:
    for index, instr in enumerate(func.body):
        where = f"instruction {index} ({instr.op} at {instr.describe()})"
        for operand in instr.operands:
            if operand not in defined:
                raise VerificationError(f"{where} uses a value not defined before it: "
                                        f"{operand!r}")
        _verify_types(instr, where)
        for result in instr.results:
            _define(result, defined, where)
    for r in func.results:
        if r.value not in defined:
            raise VerificationError(f"result {r.key!r} is not defined: {r.value!r}")


def _define(value: Value, defined: Set[Value], where: str) -> None:
    if value in defined:
        raise VerificationError(f"{where} redefines {value!r} (not SSA)")
    defined.add(value)


def _verify_types(instr: Instr, where: str) -> None:
    if instr.op == FUSION:
        region = instr.region
        if region is None:
            raise VerificationError(f"{where}: a fusion needs a region")
        if len(region.params) != len(instr.operands):
            raise VerificationError(f"{where}: region has {len(region.params)} params for "
                                    f"{len(instr.operands)} operands")
        for p, operand in zip(region.params, instr.operands):
            if p.value.type != operand.type:
                raise VerificationError(f"{where}: region param {p.value.type} does not match "
                                        f"operand {operand.type}")
        inner: Set[Value] = set()
        for p in region.params:
            _define(p.value, inner, f"{where} region parameter")
        _verify_body(region, inner)
        if [r.value.type for r in region.results] != [v.type for v in instr.results]:
            raise VerificationError(f"{where}: region yields types that differ from the "
                                    f"fusion's result types")
        return
    try:
        op_def = instr.op_def
    except KeyError as e:
        raise VerificationError(f"{where}: {e}") from None
    try:
        specs = op_def.infer([v.type.to_spec() for v in instr.operands], **instr.attrs)
    except ShapeInferenceError as e:
        raise VerificationError(f"{where}: shape rule rejects the operands: {e}") from None
    except TypeError as e:
        raise VerificationError(f"{where}: bad attributes {sorted(instr.attrs)}: {e}") from None
    if len(specs) != len(instr.results):
        raise VerificationError(f"{where}: op gives {len(specs)} results, instruction has "
                                f"{len(instr.results)}")
    for spec, result in zip(specs, instr.results):
        expected = TensorType.from_spec(spec)
        if expected.dtype is not result.type.dtype or not TensorShape(
                expected.shape).is_compatible_with(TensorShape(result.type.shape)):
            raise VerificationError(f"{where}: result declared {result.type} but the shape "
                                    f"rule gives {expected}")
