"""Common-subexpression elimination: two instructions with the same op, operands and
attributes compute the same value; keep the first. Stateful ops (random) are never merged."""
from __future__ import annotations

from typing import Dict, Hashable, Tuple

from flowjit.ir.core import Func, Instr, Value, attr_key, substitute


def instr_key(instr: Instr, operands) -> Hashable:
    return (instr.op, tuple(id(v) for v in operands),
            tuple((k, attr_key(v)) for k, v in sorted(instr.attrs.items())))


def run(func: Func) -> Tuple[Func, bool]:
    seen: Dict[Hashable, Instr] = {}
    replaced: Dict[Value, Value] = {}
    body = []
    for instr in func.body:
        operands = substitute(instr.operands, replaced)
        if operands != instr.operands:
            instr = instr.with_operands(operands)
        if instr.regions or instr.op_def.stateful:  # (regions are not keyed)
            body.append(instr)
            continue
        key = instr_key(instr, operands)
        earlier = seen.get(key)
        if earlier is None:
            seen[key] = instr
            body.append(instr)
        else:
            replaced.update(zip(instr.results, earlier.results))
    if not replaced:
        return func, False
    results = [r.__class__(substitute([r.value], replaced)[0], r.role, r.key)
               for r in func.results]
    return func.replace(body=body, results=results), True
