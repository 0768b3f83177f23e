"""Control flow in a CPU executable: a `cond` or `while` instruction is one thunk of the
schedule, and each of its regions an executable of its own, built by `cpu.build` like the
function around it (native kernels and segments, fused in the region by the passes).

  - `CondThunk` runs the branch the predicate (or index) picks;
  - `WhileThunk` runs the condition's executable, then the body's, until the condition is
    false (or `max_iterations` bodies have run).

The loop is the thunk's; what runs per iteration is compiled code, not Python per element.
Values a region's executable returns may live in its fixed buffers (runtime/buffers.py),
which its next run overwrites: the thunks copy those before keeping them.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from flowjit.interp.evaluate import branch_index, loop_limit
from flowjit.ir.core import COND, WHILE, Func, Instr
from flowjit.runtime.buffers import BufferPool

RunFn = Callable[..., List[np.ndarray]]
Builder = Callable[[Func], Tuple[RunFn, Dict[str, int]]]


def _kept(values: Sequence[np.ndarray]) -> List[np.ndarray]:
    """Values that outlive the next run of the executable that made them: read-only ones
    (its fixed buffers, constants) are copied."""
    return [v if v.flags.writeable else np.array(v) for v in values]


class CondThunk:
    """Runs one of a cond's branch executables on the operands after the predicate."""

    __slots__ = ("instr", "branches", "pred", "inputs", "outputs")

    def __init__(self, instr: Instr, inputs: List[int], outputs: List[int],
                 branches: List[RunFn]) -> None:
        self.instr, self.branches, self.outputs = instr, branches, outputs
        self.pred, self.inputs = inputs[0], inputs[1:]

    def run(self, slots: List[Optional[np.ndarray]], buffers: Optional[BufferPool]) -> None:
        branch = self.branches[branch_index(self.instr, slots[self.pred])]
        results = branch([slots[i] for i in self.inputs])
        for slot, value in zip(self.outputs, _kept(results)):
            slots[slot] = value


class WhileThunk:
    """Runs a while's condition and body executables until the condition is false."""

    __slots__ = ("instr", "condition", "body", "variables", "invariants", "outputs", "limit")

    def __init__(self, instr: Instr, inputs: List[int], outputs: List[int], condition: RunFn,
                 body: RunFn) -> None:
        self.instr, self.condition, self.body, self.outputs = instr, condition, body, outputs
        n = len(outputs)
        self.variables, self.invariants = inputs[:n], inputs[n:]
        self.limit = loop_limit(instr)

    def run(self, slots: List[Optional[np.ndarray]], buffers: Optional[BufferPool]) -> None:
        state = [slots[i] for i in self.variables]
        invariants = [slots[i] for i in self.invariants]
        count, limit = 0, self.limit
        while limit is None or count < limit:
            if not self.condition(state + invariants)[0]:
                break
            state = _kept(self.body(state + invariants))
            count += 1
        for slot, value in zip(self.outputs, state):
            slots[slot] = value


def build_thunk(instr: Instr, inputs: List[int], outputs: List[int], build: Builder,
                stats: Dict[str, int]):
    """The thunk of a cond or while, its regions built with `build` (their statistics
    added to `stats`)."""
    runs = []
    for region in instr.regions:
        run, region_stats = build(region)
        runs.append(run)
        for key, value in region_stats.items():
            stats[key] = max(stats[key], value) if key == "largest_segment" else \
                stats.get(key, 0) + value
    stats["control_flow"] = stats.get("control_flow", 0) + 1
    if instr.op == COND:
        return CondThunk(instr, inputs, outputs, runs)
    return WhileThunk(instr, inputs, outputs, *runs)


CONTROL_FLOW_OPS = (COND, WHILE)
