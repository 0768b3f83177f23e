"""`tf.gradients`: adds a `Gradients` op to the graph; its outputs are d(sum ys)/d(xs).

The op is not computed by a kernel: the lowering emits it as a `gradients` IR instruction and
the autodiff pass (first in every pipeline) replaces it with the backward computation, built
from each op's registered gradient rule. Which xs are connected to ys, and whether every op
in between has a rule, is decided here at graph-build time, as TF1 does: an unconnected x
gets None, an op without a rule raises LookupError.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Set

from flowjit import errors
from flowjit.graph.core import Operation, Tensor, get_default_graph
from flowjit.graph.registry import (ShapeInferenceError, TensorSpec, register_gradient,
                                    register_op)
from flowjit.ops.base import FLOATS, apply_op, convert_to_tensor
from flowjit.ops.custom_gradient import gradient_inputs, overridden_gradient


def _gradients_infer(inputs, *, n_ys, n_xs, n_grad_ys, n_stops):
    xs = inputs[n_ys:n_ys + n_xs]
    for x in xs:
        if x.dtype not in FLOATS:
            raise ShapeInferenceError(f"gradients are only defined for floating point "
                                      f"tensors, got dtype {x.dtype.name}")
    return [TensorSpec(x.dtype, x.shape) for x in xs]


register_op("Gradients", "gradients", _gradients_infer, None)


@register_gradient("Gradients")
def _nested(b, instr, grads):
    """Gradients of gradients (second derivatives) are differentiable: the autodiff pass
    expands an inner `gradients` request into ordinary instructions before it reaches the
    outer one, so this rule is never called on the IR."""
    raise errors.InternalError("a nested gradients request was not expanded first")


def _flat(values) -> List:
    if values is None:
        return []
    if isinstance(values, (list, tuple)):
        return list(values)
    return [values]


def gradients(ys, xs, grad_ys=None, name: str = "gradients", colocate_gradients_with_ops=False,
              gate_gradients=False, aggregation_method=None,
              stop_gradients=None) -> List[Optional[Tensor]]:
    """Symbolic d(sum(ys))/d(x) for each x in xs; None where x does not affect ys."""
    ys = [convert_to_tensor(y) for y in _flat(ys)]
    xs = [convert_to_tensor(x) for x in _flat(xs)]
    grad_ys = [None if g is None else convert_to_tensor(g, dtype=y.dtype)
               for g, y in zip(_flat(grad_ys) or [None] * len(ys), ys)]
    stops = [convert_to_tensor(s) for s in _flat(stop_gradients)]
    if len(grad_ys) != len(ys):
        raise ValueError(f"grad_ys has {len(grad_ys)} entries for {len(ys)} ys")
    graph = get_default_graph()
    if graph._building_function:  # in a tf.cond branch or a loop body
        home = _innermost_graph(graph, ys + [g for g in grad_ys if g is not None])
        if home is not graph:  # ys computed outside: so are their gradients (captured)
            with home.as_default():
                return gradients(ys, xs, grad_ys, name, stop_gradients=stop_gradients or None)
        # ys computed here: outer xs and stops are the placeholders that stand for them
        xs = [graph.capture_outer(x) if x.graph is not graph else x for x in xs]
        stops = [graph.capture_outer(t) if t.graph is not graph else t for t in stops]
    for y in ys:
        if not y.dtype.is_floating:
            raise TypeError(f"tf.gradients: y {y.describe()} has dtype {y.dtype.name}; "
                            f"only floating point tensors can be differentiated")
    connected = _connected(ys, xs, set(stops))
    wanted = [x for x in xs if x in connected]
    if not wanted:
        return [None] * len(xs)
    explicit = [g for g in grad_ys if g is not None]
    if explicit and len(explicit) != len(ys):
        raise ValueError("grad_ys must be given for all ys or for none")
    attrs = {"n_ys": len(ys), "n_xs": len(wanted), "n_grad_ys": len(explicit),
             "n_stops": len(stops)}
    outputs = apply_op("Gradients", ys + wanted + explicit + stops, attrs, name=name)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    by_x = dict(zip(wanted, outputs))
    return [by_x.get(x) for x in xs]


def _innermost_graph(current, tensors: Sequence[Tensor]):
    """Of the function graphs from `current` out to the root, the innermost one holding
    one of `tensors`."""
    chain = [current]
    while hasattr(chain[-1], "outer"):
        chain.append(chain[-1].outer)
    homes = {id(t.graph) for t in tensors}
    return next((g for g in chain if id(g) in homes), chain[-1])


def _connected(ys: Sequence[Tensor], xs: Sequence[Tensor], stops: Set[Tensor]) -> Set[Tensor]:
    """The xs that some y depends on through differentiable ops; raises LookupError for an
    op on such a path that has no gradient rule."""
    # Tensors ys depend on (data edges), not looking past stop_gradient or `stops`.
    upstream: Set[Tensor] = set()
    stack = [y for y in ys if y not in stops]
    while stack:
        t = stack.pop()
        if t in upstream:
            continue
        upstream.add(t)
        if t.op.type == "StopGradient":
            continue
        stack.extend(i for i in gradient_inputs(t.op) if i not in stops)
    # Ops between xs and ys: downstream of some x and upstream of some y.
    x_set = set(xs)

    def inputs(t: Tensor) -> Sequence[Tensor]:
        """What `t` is computed from, as far as the search for xs goes."""
        if t in x_set or t not in upstream or t.op.type == "StopGradient":
            return ()
        return gradient_inputs(t.op)

    reaches_x: Dict[Tensor, bool] = {}
    between: Dict[Operation, bool] = {}
    for t in _inputs_first(ys, inputs):
        if t in x_set:
            reaches_x[t] = True
        elif not inputs(t):
            reaches_x[t] = False
        else:
            if t.op not in between:
                between[t.op] = any(reaches_x[i] for i in gradient_inputs(t.op))
            reaches_x[t] = between[t.op]
    for op, on_path in between.items():
        if on_path and overridden_gradient(op) is not None:
            continue  # gradient_override_map: the user's function, traced now
        if on_path and op.op_def.grad is None:
            raise LookupError(f"No gradient defined for operation '{op.name}' (op type: "
                              f"{op.type}, created at {op.site})")
    return {x for x in xs if x in upstream}


def _inputs_first(roots: Sequence[Tensor],
                  inputs: Callable[[Tensor], Sequence[Tensor]]) -> List[Tensor]:
    """Every tensor reachable from `roots` through `inputs`, each listed after all of its
    inputs (a depth-first post-order, iterative: deep graphs must not exhaust Python's
    stack)."""
    order: List[Tensor] = []
    seen: Set[Tensor] = set()
    for root in roots:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(inputs(root)))]
        while stack:
            tensor, pending = stack[-1]
            for i in pending:
                if i not in seen:
                    seen.add(i)
                    stack.append((i, iter(inputs(i))))
                    break
            else:
                stack.pop()
                order.append(tensor)
    return order
