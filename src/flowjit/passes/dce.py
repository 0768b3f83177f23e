"""Dead-code elimination: drop instructions none of whose results reach a Func result.
The IR is pure, so an unused instruction has no effect to keep."""
from __future__ import annotations

from typing import Set, Tuple

from flowjit.ir.core import Func, Value


def run(func: Func) -> Tuple[Func, bool]:
    live: Set[Value] = {r.value for r in func.results}
    kept = []
    for instr in reversed(func.body):
        if any(r in live for r in instr.results):
            kept.append(instr)
            live.update(instr.operands)
    if len(kept) == len(func.body):
        return func, False
    return func.replace(body=kept[::-1]), True
