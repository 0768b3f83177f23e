"""Gradient generation: replaces each `gradients` instruction with the reverse-mode
backward computation of its ys with respect to its xs.

    %g = gradients %y, %x {n_ys=1, n_xs=1, n_grad_ys=0, n_stops=0}

becomes the instructions of d(sum y)/dx, inserted where the `gradients` instruction was
(everything it reads is defined before it). Each op contributes its own rule, registered in
the op table (`flowjit/ops/*_grad.py`): `rule(builder, instr, output_grads)` returns one
gradient (or None) per operand. Contributions to a value from several uses are summed.
Because this runs first, the backward code is folded, CSE'd and fused with the forward code.

Control flow (passes/unroll.py, ops/control_flow_grad.py): the gradient of a `cond` is a
`cond` over the branches' gradients (each branch recomputes its forward values, then runs
its backward code). A `while` on the path from xs to ys is first unrolled: its trip count is
computed when it depends only on values known now (a counter and constants), else the
loop's `max_iterations` bounds it and each step runs under a `cond` on "still looping".
The unrolled forward replaces the loop, and is differentiated as straight-line code.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Set, Tuple

from flowjit import errors
from flowjit.ir.builder import Builder
from flowjit.ir.core import CUSTOM_GRADIENT, FUSION, WHILE, Func, Instr, Location, Param, \
    Result, Rewritten, Value, inline, rewrite_uses

GRADIENTS = "gradients"


def run(func: Func) -> Tuple[Func, bool]:
    def expand(instr: Instr, body: List[Instr]) -> Optional[Rewritten]:
        if instr.op != GRADIENTS:
            return None
        backward, grads = _differentiate(body, instr)
        return backward, dict(zip(instr.results, grads))
    func, expanded = rewrite_uses(func, expand)
    func, stripped = _forward_values(func)
    return func, expanded or stripped


def _forward_values(func: Func) -> Tuple[Func, bool]:
    """`func` with each `custom_gradient` (user-written gradients, read by the rules above)
    replaced by its forward values, in nested regions too: past autodiff it means nothing."""
    def strip(instr: Instr, body: List[Instr]) -> Optional[Rewritten]:
        if instr.op == CUSTOM_GRADIENT:
            return [], dict(zip(instr.results, instr.operands))
        regions = [_forward_values(region) for region in instr.regions]
        if any(changed for _, changed in regions):
            return [instr.with_regions([region for region, _ in regions])], {}
        return None
    return rewrite_uses(func, strip)


def _differentiate(forward: List[Instr], request: Instr) -> Tuple[List[Instr], List[Value]]:
    n_ys, n_xs = request.attrs["n_ys"], request.attrs["n_xs"]
    n_grad_ys = request.attrs["n_grad_ys"]
    operands = request.operands
    ys = operands[:n_ys]
    xs = operands[n_ys:n_ys + n_xs]
    grad_ys = operands[n_ys + n_xs:n_ys + n_xs + n_grad_ys]
    stops = set(operands[n_ys + n_xs + n_grad_ys:])
    builder = Builder(_gradient_loc(request.loc, "seed"))
    adjoint: Dict[Value, Value] = {}
    needed = _on_path(forward, xs, ys, stops)
    if any(instr.op == WHILE for instr in needed):
        from flowjit.passes.unroll import unroll_loops
        unroll_loops(forward, {instr for instr in needed if instr.op == WHILE})
        needed = _on_path(forward, xs, ys, stops)

    def accumulate(value: Value, grad: Optional[Value], b: Builder) -> None:
        if grad is None or value in stops or not value.type.dtype.is_floating:
            return
        if grad.type != value.type:
            grad = b.sum_to(grad, value.type) if grad.type.shape != value.type.shape else grad
        adjoint[value] = b.add(adjoint[value], grad) if value in adjoint else grad

    for i, y in enumerate(ys):
        accumulate(y, grad_ys[i] if grad_ys else builder.ones_like(y), builder)

    for instr in reversed(forward):
        if instr not in needed:
            continue
        grads = [adjoint.get(r) for r in instr.results]
        if all(g is None for g in grads):
            continue
        b = Builder(_gradient_loc(instr.loc, instr.op))
        b.instrs = builder.instrs  # one instruction list, in emission order
        rule = _rule(instr)
        try:
            operand_grads = rule(b, instr, grads)
        except ValueError as e:
            raise errors.UnimplementedError(f"gradient of {instr.describe()}: {e}") from None
        for operand, g in zip(instr.operands, operand_grads):
            accumulate(operand, g, b)
    result = []
    for x in xs:
        g = adjoint.get(x)
        result.append(g if g is not None else builder.zeros_like(x))
    return builder.instrs, result


def differentiate_region(region: Func, operands: List[Value], cotangents: List[Optional[Value]],
                         wrt: List[int], loc: Optional[Location]) -> Func:
    """A region computing the gradients of `region` (run on values like `operands`), given
    a cotangent (or None) per result, with respect to its params numbered `wrt`. Its params
    are fresh values like `operands`, then one per cotangent given; it recomputes the
    region's forward values, then runs the backward code (rematerialization: nothing of the
    forward run is kept for it)."""
    params = [Value(v.type, "p") for v in operands]
    seeds = [Value(g.type, "g") for g in cotangents if g is not None]
    forward, ys = inline(region, params)
    seeded = [y for y, g in zip(ys, cotangents) if g is not None]
    xs = [params[i] for i in wrt]
    request = Instr(GRADIENTS, seeded + xs + seeds,
                    {"n_ys": len(seeded), "n_xs": len(xs), "n_grad_ys": len(seeds),
                     "n_stops": 0}, [Value(x.type) for x in xs], loc)
    backward, grads = _differentiate(forward, request)
    return Func("region", [Param(v, "operand", "") for v in params + seeds],
                forward + backward, [Result(g, "yield", "") for g in grads])


def _rule(instr: Instr):
    if instr.op == FUSION:
        raise errors.InternalError("autodiff must run before fusion")
    rule = instr.op_def.grad
    if rule is None:
        raise LookupError(f"No gradient defined for {instr.describe()} (IR op '{instr.op}')")
    return rule


def _on_path(forward: List[Instr], xs, ys, stops: Set[Value]) -> Set[Instr]:
    """Instructions that depend on some x and that some y depends on."""
    from_x: Set[Value] = set(xs)
    downstream: Set[Instr] = set()
    for instr in forward:
        if any(v in from_x and v not in stops for v in instr.operands):
            downstream.add(instr)
            from_x.update(instr.results)
    to_y: Set[Value] = set(ys)
    needed: Set[Instr] = set()
    for instr in reversed(forward):
        if instr in downstream and any(r in to_y for r in instr.results):
            needed.add(instr)
            to_y.update(instr.operands)
    return needed


def _gradient_loc(loc: Optional[Location], op: str) -> Optional[Location]:
    if loc is None:
        return Location(f"gradients/{op}_grad")
    return Location(f"gradients/{loc.name}_grad", loc.op_type, loc.site)
