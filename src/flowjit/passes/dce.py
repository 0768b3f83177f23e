"""Dead-code elimination: drop instructions none of whose results reach a Func result, unless
the op has side effects (`has_effects` in its op table entry: printing, summaries,
collectives), which happen whether or not anything reads their results; a cond or while
whose regions hold such an instruction has them too."""
from __future__ import annotations

from typing import Set, Tuple

from flowjit.ir.core import Func, Instr, Value


def has_effects(instr: Instr) -> bool:
    return instr.has_effects


def run(func: Func) -> Tuple[Func, bool]:
    live: Set[Value] = {r.value for r in func.results}
    kept = []
    for instr in reversed(func.body):
        if has_effects(instr) or any(r in live for r in instr.results):
            kept.append(instr)
            live.update(instr.operands)
    if len(kept) == len(func.body):
        return func, False
    return func.replace(body=kept[::-1]), True
