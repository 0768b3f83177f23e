"""Gradient rules of the control-flow ops (see passes/autodiff.py).

The gradient of a `cond` is a `cond` on the same predicate whose branches are the gradients
of the forward branches: branch k takes the forward operands and the results' cotangents,
recomputes branch k's forward values and runs its backward code. A `while` never reaches
its rule: autodiff unrolls loops on the gradient path first (passes/unroll.py).
"""
from __future__ import annotations

from flowjit import errors
from flowjit.graph.registry import register_gradient
from flowjit.ir.core import COND, Instr, Value


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
    raise errors.InternalError(f"the while loop {instr.describe()} reached its gradient rule: "
                               f"autodiff unrolls loops first")


@register_gradient("IndexUpdate")
def _index_update(b, instr, grads):
    """x[index] = value: the row's gradient goes to value, the others' to x."""
    x, index, value = instr.operands
    g = grads[0]
    return [b.index_update(g, index, b.zeros_like(value)), None, b.gather(g, index, axis=0)]
