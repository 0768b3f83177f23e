"""What one `Session.run` executes: the pruned, ordered ops for (fetches, targets, feeds),
with every variable read resolved to the value it must see.

TF1 semantics of state within one run: a read of variable `v` by op X sees the result of the
latest assignment to `v` that X depends on (through data or control edges), and otherwise
the value `v` had when the run started. The variable's value after the run is the result of
the last assignment executed. Both the eager executor and the IR lowering use this plan.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

from flowjit.graph.core import Operation, Tensor

Fetch = Union[Tensor, Operation]


@dataclass(frozen=True)
class VariableRead:
    """Input `index` of an op reads variable `variable`; `source` is the assignment whose
    result it sees, or None for the value at the start of the run."""

    index: int
    variable: Operation
    source: Optional[Operation]


@dataclass
class RunPlan:
    fetches: Tuple[Fetch, ...]
    targets: Tuple[Operation, ...]
    feeds: Tuple[Tensor, ...]
    ops: List[Operation]                         # in execution order, fed producers excluded
    reads: Dict[Operation, List[VariableRead]]   # variable reads per op
    final_writes: Dict[Operation, Operation]     # variable -> last assign executed
    needed_by: Dict[Operation, Fetch]            # op -> a fetch/target that needs it (errors)
    snapshot_fetches: Dict[Tensor, Operation]    # fetched variable tensors -> the variable


def build_plan(fetches: Sequence[Fetch], targets: Sequence[Operation],
               feeds: Sequence[Tensor]) -> RunPlan:
    fed = set(feeds)
    roots: List[Tuple[Operation, Fetch]] = []
    for f in list(fetches) + list(targets):
        if isinstance(f, Tensor):
            if f not in fed:
                roots.append((f.op, f))
        else:
            roots.append((f, f))
    order, needed_by = _topological_order(roots, fed)
    position = {op: i for i, op in enumerate(order)}

    # For each op: variable -> latest assignment it depends on.
    latest: Dict[Operation, Dict[Operation, Operation]] = {}
    reads: Dict[Operation, List[VariableRead]] = {}
    final_writes: Dict[Operation, Operation] = {}
    for op in order:
        merged: Dict[Operation, Operation] = {}
        for pred in _predecessors(op, fed):
            for var, assign in latest.get(pred, {}).items():
                if var not in merged or position[assign] > position[merged[var]]:
                    merged[var] = assign
            if pred.op_def.assigns_variable:
                var = pred.inputs[0].op
                if var not in merged or position[pred] > position[merged[var]]:
                    merged[var] = pred
        latest[op] = merged
        op_reads = [VariableRead(i, t.op, merged.get(t.op))
                    for i, t in enumerate(op.inputs)
                    if t.op.type == "VariableV2" and t not in fed]
        if op_reads:
            reads[op] = op_reads
        if op.op_def.assigns_variable:
            final_writes[op.inputs[0].op] = op
    snapshot_fetches = {f: f.op for f in fetches
                        if isinstance(f, Tensor) and f.op.type == "VariableV2" and f not in fed}
    return RunPlan(tuple(fetches), tuple(targets), tuple(feeds), order, reads, final_writes,
                   needed_by, snapshot_fetches)


def _predecessors(op: Operation, fed) -> List[Operation]:
    preds = [t.op for t in op.inputs if t not in fed]
    preds.extend(op.control_inputs)
    return preds


def _topological_order(roots, fed) -> Tuple[List[Operation], Dict[Operation, Fetch]]:
    """Iterative DFS post-order (deep graphs must not hit Python's recursion limit)."""
    order: List[Operation] = []
    state: Dict[Operation, int] = {}  # 1 = on stack, 2 = done
    needed_by: Dict[Operation, Fetch] = {}
    for root, fetch in roots:
        if root in state:
            continue
        stack = [(root, iter(_predecessors(root, fed)))]
        state[root] = 1
        needed_by.setdefault(root, fetch)
        while stack:
            op, preds = stack[-1]
            for pred in preds:
                if pred not in state:
                    state[pred] = 1
                    needed_by.setdefault(pred, fetch)
                    stack.append((pred, iter(_predecessors(pred, fed))))
                    break
            else:
                stack.pop()
                state[op] = 2
                if op.type != "VariableV2":  # variables are read, not executed
                    order.append(op)
    return order, needed_by
