"""Op fusion: groups of instructions become one `fusion` instruction whose region codegen
turns into a single loop nest (no intermediate buffers).

Groups are trees with one output, grown from each instruction towards its operands; what
an op may join is its codegen role in the op table (graph/registry.py):
  - `loop`:        elementwise ops whose intermediate results have a single user;
  - `reduce`:      a reduction fed by such an elementwise tree (x*w -> reduce_sum);
  - `contraction`: a contraction (matmul) whose single user is an elementwise tree (bias
                   add + activation epilogue), the contraction being a leaf of that tree.
Only producers with a single user join a group, so no value is computed twice and every group can
be placed where its root was. A group has at most MAX_GROUP instructions.
"""
from __future__ import annotations

from typing import Dict, List, Set, Tuple

from flowjit.graph.registry import CONTRACTIONS, ELEMENTWISE, REDUCTION
from flowjit.ir.core import FUSION, Func, Instr, Param, Result, Value

# A group has at most this many instructions (the rest of a longer chain forms groups of
# its own): code generation is superlinear in the size of one kernel, e.g. the gradient of
# a 5000-step chain fused into one kernel of 10,000 instructions took LLVM 18 s, in kernels
# of this size 1.5 s.
MAX_GROUP = 256


def _elementwise(instr: Instr) -> bool:
    return instr.op_def.role == ELEMENTWISE


def run(func: Func) -> Tuple[Func, bool]:
    producer: Dict[Value, Instr] = {}
    users: Dict[Value, Set[Instr]] = {}
    for instr in func.body:
        for r in instr.results:
            producer[r] = instr
        for v in instr.operands:
            users.setdefault(v, set()).add(instr)
    returned = {r.value for r in func.results}

    def single_user_producer(value: Value):
        """The producer of `value` if exactly one instruction (and no result) uses it."""
        instr = producer.get(value)
        if instr is not None and len(users.get(value, ())) == 1 and value not in returned \
                and len(instr.results) == 1:
            return instr
        return None

    root_of: Dict[Instr, Instr] = {}     # member -> root of its group
    members: Dict[Instr, List[Instr]] = {}
    kinds: Dict[Instr, str] = {}
    # Visit roots last-to-first so a root claims its operands before they form groups.
    for instr in reversed(func.body):
        if instr in root_of:
            continue
        if _elementwise(instr):
            kind = "loop"
        elif instr.op_def.role == REDUCTION:
            kind = "reduce"
        else:
            continue
        group = {instr: None}  # (a dict: ordered, and membership in O(1))
        has_contraction = False
        frontier = [instr]
        while frontier and len(group) < MAX_GROUP:
            current = frontier.pop()
            for operand in current.operands:
                candidate = single_user_producer(operand)
                if candidate is None or candidate in root_of or candidate in group \
                        or len(group) >= MAX_GROUP:
                    continue
                if _elementwise(candidate):
                    group[candidate] = None
                    frontier.append(candidate)
                elif candidate.op_def.role in CONTRACTIONS and kind == "loop" and \
                        not has_contraction:
                    group[candidate] = None  # a leaf: its operands stay outside
                    has_contraction = True
        if len(group) < 2:
            continue
        for member in group:
            root_of[member] = instr
        members[instr] = list(group)
        kinds[instr] = "contraction" if has_contraction else kind
    if not members:
        return func, False

    position = {instr: i for i, instr in enumerate(func.body)}
    body: List[Instr] = []
    for instr in func.body:
        root = root_of.get(instr)
        if root is None:
            body.append(instr)
        elif root is instr:
            body.append(_fuse(members[instr], kinds[instr], position, producer))
    return func.replace(body=body), True


def _fuse(group: List[Instr], kind: str, position: Dict[Instr, int],
          producer: Dict[Value, Instr]) -> Instr:
    """One fusion instruction computing `group`, whose root is group[0]; `position` orders
    instructions as the body does. One-element constants read only by elementwise members
    are copied into the region (codegen makes them immediates) instead of passed in; a
    contraction reads its operands from memory."""
    root = group[0]
    ordered = sorted(group, key=position.__getitem__)
    defined: Set[Value] = {r for instr in group for r in instr.results}
    read_from_outside: Dict[Value, None] = {}  # in order of first use
    for instr in ordered:
        for v in instr.operands:
            if v not in defined:
                read_from_outside[v] = None
    read_from_memory = {v for instr in group if not _elementwise(instr) for v in instr.operands}
    outer_operands: List[Value] = []
    inner: Dict[Value, Value] = {}
    params = []
    region_body = []
    for v in read_from_outside:
        source = producer.get(v)
        if source is not None and source.op == "constant" and \
                source.attrs["value"].size == 1 and v not in read_from_memory:
            inner[v] = Value(v.type)
            region_body.append(Instr("constant", [], source.attrs, [inner[v]], source.loc))
        else:
            outer_operands.append(v)
            inner[v] = Value(v.type, "p")
            params.append(Param(inner[v], "operand", ""))
    for instr in ordered:
        results = [Value(r.type) for r in instr.results]
        inner.update(zip(instr.results, results))
        region_body.append(Instr(instr.op, [inner[v] for v in instr.operands], instr.attrs,
                                 results, instr.loc))
    region = Func("region", params, region_body,
                  [Result(inner[r], "yield", "") for r in root.results])
    return Instr(FUSION, outer_operands, {"kind": kind}, root.results, root.loc, region)
