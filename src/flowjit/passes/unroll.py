"""Unrolling `while` loops for autodiff (passes/autodiff.py), which differentiates the
unrolled forward code as straight-line code.

  - the trip count is computed now when the loop's condition depends only on values known
    when the run is compiled (a counter from a constant, bounds that are constants or
    shapes): the body is inlined that many times;
  - otherwise the loop's `max_iterations` bounds it: each of that many steps evaluates the
    condition, and runs the body under a `cond` on "every condition so far was true" (else
    passes the state through), so the unrolled code computes what the loop does;
  - otherwise the loop stays: its gradient rule (ops/control_flow_grad.py) builds a
    backward loop that recomputes each iteration's state.

The unrolled code replaces the loop in the Func (its last step defines the loop's results),
so forward and backward share it. Its size is bounded by MAX_UNROLLED_INSTRUCTIONS.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Set

import numpy as np

from flowjit import dtypes, errors
from flowjit.interp.evaluate import execute, loop_limit
from flowjit.ir.core import COND, Func, Instr, Param, Result, TensorType, Value, copy_region, \
    inline

MAX_UNROLLED_INSTRUCTIONS = 200_000
KNOWN_MAX_ELEMENTS = 1024  # values computed now to find a trip count are at most this big


def unroll_loops(body: List[Instr], loops: Set[Instr]) -> None:
    """Replaces each instruction of `loops` (whiles) in `body` by its unrolled form."""
    known = _known_values(body, stop_at=loops)
    index = 0
    while index < len(body):
        instr = body[index]
        unrolled = unroll(instr, known) if instr in loops else None
        if unrolled is not None:
            body[index:index + 1] = unrolled
            index += len(unrolled)
        else:
            index += 1


def unroll(loop: Instr, known: Dict[Value, np.ndarray]) -> Optional[List[Instr]]:
    n = len(loop.results)
    condition, body = loop.regions
    count = trip_count(loop, known)
    limit = count if count is not None else loop_limit(loop)
    if limit is None:
        return None  # differentiated as a loop (ops/control_flow_grad.py)
    if limit * (len(body.body) + len(condition.body) + 2) > MAX_UNROLLED_INSTRUCTIONS:
        if loop_stable(loop):
            return None  # too long to unroll: differentiated as a loop
        raise errors.UnimplementedError(
            f"gradient of the while loop {loop.describe()}: {limit} iterations of a body of "
            f"{len(body.body)} instructions is too large to unroll")
    state, invariants = list(loop.operands[:n]), list(loop.operands[n:])
    out: List[Instr] = []
    if count is not None:
        for _ in range(count):
            instrs, state = inline(body, state + invariants)
            out.extend(instrs)
    else:
        state = _guarded_steps(loop, limit, state, invariants, out)
    for value, result in zip(state, loop.results):  # the loop's results, defined last
        out.append(Instr("identity", [value], {}, [result], loop.loc))
    return out


def loop_stable(loop: Instr) -> bool:
    """Whether the loop's variables keep their (static) types from one iteration to the
    next, as its gradient rule needs."""
    types = [v.type for v in loop.operands]
    return types == [p.value.type for p in loop.regions[1].params] and \
        all(t.is_static for t in types)


def _guarded_steps(loop: Instr, limit: int, state: List[Value], invariants: List[Value],
                   out: List[Instr]) -> List[Value]:
    condition, body = loop.regions
    types = [v.type for v in state + invariants]
    if types != [p.value.type for p in body.params]:
        raise errors.UnimplementedError(
            f"gradient of the while loop {loop.describe()}: loop variables whose shapes "
            f"change between iterations need a trip count known when the run is compiled")
    boolean = TensorType(dtypes.bool_, ())
    active = Value(boolean)
    out.append(Instr("constant", [], {"dtype": dtypes.bool_, "value": np.array(True)},
                     [active], loop.loc))
    for _ in range(limit):
        instrs, (go,) = inline(condition, state + invariants)
        out.extend(instrs)
        still = Value(boolean)
        out.append(Instr("and", [active, go], {}, [still], loop.loc))
        active = still
        results = [Value(r.type) for r in loop.results]
        out.append(Instr(COND, [active] + state + invariants, {}, results, loop.loc,
                         regions=[copy_region(body), _pass_through(types, len(state))]))
        state = results
    return state


def _pass_through(types: Sequence[TensorType], n: int) -> Func:
    params = [Param(Value(t, "p"), "operand", "") for t in types]
    return Func("region", params, [], [Result(p.value, "yield", "") for p in params[:n]])


def trip_count(loop: Instr, known: Dict[Value, np.ndarray]) -> Optional[int]:
    """How many times the body runs, if the condition's values are known now (computed
    with the interpreter from `known` values), else None."""
    n = len(loop.results)
    condition, body = loop.regions
    state: List[Optional[np.ndarray]] = [known.get(v) for v in loop.operands]
    limit = loop_limit(loop)
    bound = MAX_UNROLLED_INSTRUCTIONS // max(1, len(body.body))
    count = 0
    while count <= bound:
        if limit is not None and count >= limit:
            return count
        (go,) = _partial(condition, state)
        if go is None:
            return None
        if not go:
            return count
        state = _partial(body, state) + state[n:]
        count += 1
    return None


def _known_values(body: List[Instr], stop_at: Set[Instr]) -> Dict[Value, np.ndarray]:
    """Values of `body` computable now: constants and small pure computations of them."""
    known: Dict[Value, np.ndarray] = {}
    for instr in body:
        if instr in stop_at:
            continue
        for value, result in zip(instr.results, _evaluate(instr, [known.get(v) for v in
                                                                   instr.operands])):
            if result is not None:
                known[value] = result
    return known


def _partial(region: Func, inputs: List[Optional[np.ndarray]]) -> List[Optional[np.ndarray]]:
    """The region's yields where computable from the known inputs (None elsewhere)."""
    env: Dict[Value, Optional[np.ndarray]] = {p.value: x for p, x in zip(region.params, inputs)}
    for instr in region.body:
        env.update(zip(instr.results, _evaluate(instr, [env.get(v) for v in instr.operands])))
    return [env.get(r.value) for r in region.results]


def _evaluate(instr: Instr, inputs: List[Optional[np.ndarray]]) -> List[Optional[np.ndarray]]:
    unknown = [None] * len(instr.results)
    if any(x is None for x in inputs) or not _pure(instr) or any(
            r.type.num_elements is None or r.type.num_elements > KNOWN_MAX_ELEMENTS
            for r in instr.results):
        return unknown
    if instr.op_def.kernel is None and not instr.regions:
        return unknown
    try:
        return execute(instr, list(inputs))
    except Exception:  # (the run reports it)
        return unknown


def _pure(instr: Instr) -> bool:
    return not instr.op_def.stateful and all(_pure(sub) for region in instr.regions
                                             for sub in region.body)
