"""Constant folding: an instruction whose operands are all constants is evaluated now with
its op's numpy kernel (the interpreter's), and replaced by a `constant`. Shape queries of
static shapes fold too. Results larger than FOLD_LIMIT elements are left alone, so folding
never bloats the program (zeros([784, 256]) stays a cheap broadcast)."""
from __future__ import annotations

from typing import Dict, Tuple

import numpy as np

from flowjit import dtypes
from flowjit.interp.evaluate import execute
from flowjit.ir.core import Func, Instr, Value

FOLD_LIMIT = 1024
_SHAPE_QUERIES = ("shape_of", "size_of", "rank_of")


def constant_instr(value: np.ndarray, result: Value, loc) -> Instr:
    return Instr("constant", [], {"dtype": dtypes.as_dtype(value.dtype), "value": value},
                 [result], loc)


def run(func: Func) -> Tuple[Func, bool]:
    constants: Dict[Value, np.ndarray] = {}
    body = []
    changed = False
    for instr in func.body:
        if instr.op == "constant":
            constants[instr.result] = instr.attrs["value"]
            body.append(instr)
            continue
        folded = _try_fold(instr, constants)
        if folded is None:
            body.append(instr)
            continue
        changed = True
        for result, value in zip(instr.results, folded):
            constants[result] = value
            body.append(constant_instr(value, result, instr.loc))
    return (func.replace(body=body), True) if changed else (func, False)


def _try_fold(instr: Instr, constants):
    if instr.op_def.stateful or instr.op_def.kernel is None:
        return None
    if instr.op in _SHAPE_QUERIES and all(v.type.is_static for v in instr.operands):
        inputs = [np.empty(v.type.shape, v.type.dtype.np_dtype) for v in instr.operands]
    elif instr.operands and all(v in constants for v in instr.operands):
        inputs = [constants[v] for v in instr.operands]
    else:
        return None
    if any(r.type.num_elements is None or r.type.num_elements > FOLD_LIMIT
           for r in instr.results):
        return None
    try:
        return execute(instr, inputs)
    except Exception:  # e.g. integer division by zero: leave it for the run to report
        return None
