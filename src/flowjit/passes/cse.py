"""Common-subexpression elimination: two instructions with the same op, operands and
attributes compute the same value; keep the first. Stateful ops (random) are never merged."""
from __future__ import annotations

from typing import Dict, Hashable, List, Optional, Tuple

from flowjit.ir.core import Func, Instr, Rewritten, attr_key, rewrite_uses


def instr_key(instr: Instr, operands) -> Hashable:
    return (instr.op, tuple(id(v) for v in operands),
            tuple((k, attr_key(v)) for k, v in sorted(instr.attrs.items())))


def run(func: Func) -> Tuple[Func, bool]:
    seen: Dict[Hashable, Instr] = {}

    def merge(instr: Instr, body: List[Instr]) -> Optional[Rewritten]:
        if instr.regions or instr.op_def.stateful:  # (regions are not keyed)
            return None
        earlier = seen.setdefault(instr_key(instr, instr.operands), instr)
        return None if earlier is instr else ([], dict(zip(instr.results, earlier.results)))
    return rewrite_uses(func, merge)
