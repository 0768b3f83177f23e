"""Gradient rules of the control-flow ops (see passes/autodiff.py).

The gradient of a `cond` is a `cond` on the same predicate whose branches are the gradients
of the forward branches: branch k takes the forward operands and the results' cotangents,
recomputes branch k's forward values and runs its backward code. A `while` never reaches
its rule: autodiff unrolls loops on the gradient path first (passes/unroll.py).
"""
from __future__ import annotations

from flowjit import dtypes, errors
from flowjit.graph.registry import register_gradient
from flowjit.ir.builder import Builder
from flowjit.ir.core import COND, WHILE, Func, Instr, Param, Result, Value, inline
from flowjit.passes.unroll import loop_stable


@register_gradient("If")
def _cond(b, instr, grads):
    from flowjit.lower import widened
    from flowjit.passes.autodiff import differentiate_region
    pred, args = instr.operands[0], instr.operands[1:]
    wrt = [i for i, v in enumerate(args) if v.type.dtype.is_floating]
    if not wrt:
        return [None] * len(instr.operands)
    regions = [differentiate_region(region, args, grads, wrt, b.loc)
               for region in instr.regions]
    types = [r.value.type for r in regions[0].results]
    for region in regions[1:]:
        types = [widened(t, r.value.type) for t, r in zip(types, region.results)]
    results = [Value(t) for t in types]
    seeds = [g for g in grads if g is not None]
    b.instrs.append(Instr(COND, [pred] + args + seeds, {}, results, b.loc, regions=regions))
    by_arg = dict(zip(wrt, results))
    return [None] + [by_arg.get(i) for i in range(len(args))]


@register_gradient("While")
def _while(b, instr, grads):
    """A loop whose trip count autodiff could not find when the run is compiled (it unrolls
    the others, passes/unroll.py): the backward loop runs the body's gradient from the last
    iteration to the first. Nothing of the forward run is kept: the trip count comes from
    running the loop again, counting, and backward step j recomputes the state of
    iteration t = count - 1 - j from the initial one (t body runs: O(count^2) in all,
    memory O(1) in the count)."""
    n = len(instr.results)
    condition, body = instr.regions
    state0, invariants = list(instr.operands[:n]), list(instr.operands[n:])
    if not loop_stable(instr):
        raise errors.UnimplementedError(
            f"gradient of the while loop {instr.describe()}: its trip count is not known when "
            f"the run is compiled and its loop variables change shape between iterations; "
            f"give tf.while_loop a maximum_iterations")
    wrt_state = [i for i, v in enumerate(state0) if v.type.dtype.is_floating]
    wrt_invariants = [i for i, v in enumerate(invariants) if v.type.dtype.is_floating]
    if not wrt_state and not wrt_invariants:
        return [None] * len(instr.operands)
    count = _counting_loop(b, instr)
    cotangents = [grads[i] if grads[i] is not None else b.zeros(state0[i].type)
                  for i in wrt_state]
    sums = [b.zeros(invariants[i].type) for i in wrt_invariants]
    step = b.constant(0, dtypes.int32)
    carried = [step] + cotangents + sums
    fixed = [count] + state0 + invariants
    results = [Value(v.type) for v in carried]
    b.instrs.append(Instr(WHILE, carried + fixed, {}, results, b.loc, regions=[
        _region(carried + fixed, lambda rb, p: [rb.lt(p[0], p[len(carried)])], b.loc),
        _region(carried + fixed, lambda rb, p: _backward_step(
            rb, instr, p, len(wrt_state), wrt_state, wrt_invariants), b.loc)]))
    by_state = dict(zip(wrt_state, results[1:1 + len(wrt_state)]))
    by_invariant = dict(zip(wrt_invariants, results[1 + len(wrt_state):]))
    return [by_state.get(i) for i in range(n)] + \
        [by_invariant.get(i) for i in range(len(invariants))]


def _backward_step(rb, loop, p, n_cotangents, wrt_state, wrt_invariants):
    """One step of the backward loop, over (j, cotangents, sums, count, state0, invariants):
    the state of iteration count - 1 - j, recomputed, then the body's gradient there."""
    from flowjit.passes.autodiff import differentiate_region
    n = len(loop.results)
    body = loop.regions[1]
    j, cotangents = p[0], p[1:1 + n_cotangents]
    sums = p[1 + n_cotangents:1 + n_cotangents + len(wrt_invariants)]
    count, rest = p[1 + n_cotangents + len(wrt_invariants)], \
        p[2 + n_cotangents + len(wrt_invariants):]
    state0, invariants = rest[:n], rest[n:]
    one = rb.constant(1, dtypes.int32)
    t = rb.sub(rb.sub(count, j), one)
    state = _replay(rb, loop, t, state0, invariants)
    seeds = dict(zip(wrt_state, cotangents))
    vjp = differentiate_region(body, state + invariants, [seeds.get(i) for i in range(n)],
                               wrt_state + [n + i for i in wrt_invariants], rb.loc)
    instrs, grads = inline(vjp, state + invariants + list(cotangents))
    rb.instrs.extend(instrs)
    new_sums = [rb.add(s, g) for s, g in zip(sums, grads[len(wrt_state):])]
    return [rb.add(j, one)] + grads[:len(wrt_state)] + new_sums


def _counting_loop(b, loop) -> Value:
    """How many times `loop`'s body runs: the loop again (with its max_iterations), with a
    counter."""
    n = len(loop.results)
    condition, body = loop.regions
    state0, invariants = list(loop.operands[:n]), list(loop.operands[n:])
    carried = [b.constant(0, dtypes.int32)] + state0
    results = [Value(v.type) for v in carried]

    def go(rb, p):
        instrs, (still,) = inline(condition, p[1:])
        rb.instrs.extend(instrs)
        return [still]
    regions = [_region(carried + invariants, go, b.loc),
               _region(carried + invariants, lambda rb, p: _counted_body(rb, body, p, n), b.loc)]
    b.instrs.append(Instr(WHILE, carried + invariants, dict(loop.attrs), results, b.loc,
                          regions=regions))
    return results[0]


def _replay(rb, loop, t, state0, invariants):
    """The state after `t` iterations of `loop`'s body from `state0`."""
    n = len(loop.results)
    carried = [rb.constant(0, dtypes.int32)] + list(state0)
    fixed = [t] + list(invariants)
    results = [Value(v.type) for v in carried]
    rb.instrs.append(Instr(WHILE, carried + fixed, {}, results, rb.loc, regions=[
        _region(carried + fixed, lambda cb, p: [cb.lt(p[0], p[n + 1])], rb.loc),
        _region(carried + fixed, lambda cb, p: _counted_body(cb, loop.regions[1],
                                                             p[:n + 1] + p[n + 2:], n),
                rb.loc)]))
    return results[1:]


def _counted_body(rb, body, p, n):
    """(k, state..., invariants...) -> (k + 1, the body's next state)."""
    instrs, state = inline(body, p[1:])
    rb.instrs.extend(instrs)
    return [rb.add(p[0], rb.constant(1, dtypes.int32))] + state


def _region(like, build, loc) -> Func:
    """A closed region with a param like each value of `like`, yielding `build(builder,
    params)`."""
    rb = Builder(loc)
    params = [Value(v.type, "p") for v in like]
    yields = build(rb, params)
    return Func("region", [Param(v, "operand", "") for v in params], rb.instrs,
                [Result(v, "yield", "") for v in yields])


@register_gradient("IndexUpdate")
def _index_update(b, instr, grads):
    """x[index] = value: the row's gradient goes to value, the others' to x."""
    x, index, value = instr.operands
    g = grads[0]
    return [b.index_update(g, index, b.zeros_like(value)), None, b.gather(g, index, axis=0)]
