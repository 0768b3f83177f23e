"""Control flow: `tf.cond`, `tf.case` and `tf.while_loop` as functional ops.

Each function a control-flow op runs (a branch, a loop's condition or body) is traced once,
when the graph is built, into a function graph of its own (ops/function_graph.py). The op
in the outer graph reads the predicate (or loop variables) and the captured tensors, and
names its functions by tokens. The lowering turns each function into a region of an IR
`cond` / `while` instruction (`lower.py`), as XLA's conditional and while.

    pred -> If{branches=(true, false)}(pred, captured...) -> outputs
    While{cond, body}(loop vars..., captured...) -> final loop vars

A cond's branch may assign outer variables (they become outputs of the cond,
`_assign_after`); a loop body may not (UnimplementedError naming the op). A loop body with
random ops gets its iteration number as a hidden loop variable (`_loop_with_iteration`), so
each iteration draws numbers of its own.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import Graph, Operation, Tensor, get_default_graph
from flowjit.graph.registry import ShapeInferenceError, TensorSpec, register_op
from flowjit.graph.shape import TensorShape, as_shape
from flowjit.ops.base import apply_op, constant, convert_to_tensor, graph_for
from flowjit.ops.function_graph import (FunctionGraph, captured_inputs, external_control,
                                        flatten, merged_shape, pack_as, register_function,
                                        structure_of, trace)
from flowjit.ops.tensor_array import is_deferred


# -- the ops ------------------------------------------------------------------------------------
def _if_infer(inputs, *, branches, Tout, output_shapes):
    pred = inputs[0]
    if pred.dtype not in (dtypes.bool_, dtypes.int32) or \
            not pred.shape.is_compatible_with(TensorShape([])):
        what = "a bool" if len(branches) == 2 else "an int32 branch index"
        raise ShapeInferenceError(f"the predicate of a cond must be {what} scalar, got "
                                  f"{pred.dtype.name} of shape {pred.shape}")
    return [TensorSpec(t, as_shape(s)) for t, s in zip(Tout, output_shapes)]


def _while_infer(inputs, *, cond, body, Tout, output_shapes, max_iterations):
    return [TensorSpec(t, as_shape(s)) for t, s in zip(Tout, output_shapes)]


# Region ops (regions: a cond's branches, a while's condition and body). An instruction of
# them has effects when an instruction of its regions has (`Instr.has_effects`).
register_op("If", "cond", _if_infer, None, role="region")
register_op("While", "while", _while_infer, None, role="region")


# -- tf.cond / tf.case ---------------------------------------------------------------------------
def cond(pred, true_fn: Optional[Callable] = None, false_fn: Optional[Callable] = None,
         strict: bool = False, name: Optional[str] = None, fn1=None, fn2=None):
    """`tf.cond`: `true_fn()` if `pred` else `false_fn()`, `pred` a bool scalar tensor
    decided when the graph runs. Both functions must return the same structure of
    tensors of the same dtypes; shapes that differ become unknown dims."""
    true_fn = true_fn if true_fn is not None else fn1
    false_fn = false_fn if false_fn is not None else fn2
    if not callable(true_fn) or not callable(false_fn):
        raise TypeError("tf.cond: true_fn and false_fn must be callable")
    if isinstance(pred, (bool, np.bool_)):
        raise TypeError("tf.cond: pred must not be a Python bool")
    graph = get_default_graph()
    with graph.name_scope(name or "cond") as scope:
        pred = convert_to_tensor(pred)
        if pred.dtype is not dtypes.bool_:
            raise errors.DTypeError(f"tf.cond '{scope[:-1]}': pred must be a bool tensor, got "
                                    f"{pred.describe()} of dtype {pred.dtype.name}")
        return _build_if(pred, [("true_fn", true_fn), ("false_fn", false_fn)], scope, strict)


def _build_if(pred: Tensor, fns: Sequence[Tuple[str, Callable]], scope: str, strict: bool):
    """The If op choosing among `fns` (role, function) by `pred`."""
    traced = [trace(fn, scope, role, branch=True) for role, fn in fns]
    graphs = [g for g, _ in traced]
    first_role, (first, first_result) = fns[0][0], traced[0]
    for (role, _), (g, result) in zip(fns[1:], traced[1:]):
        _check_same_outputs(scope, first_role, first, first_result, role, g, result)
    n_results = len(first.outputs)
    assigned = _assigned_variables(graphs)
    shapes = [t.shape for t in first.outputs]
    for g in graphs[1:]:
        shapes = [merged_shape(s, t.shape) for s, t in zip(shapes, g.outputs)]
    captured = captured_inputs(graphs)
    for g in graphs:  # each function takes every captured tensor, in one order
        for tensor in captured:
            g.capture_outer(tensor)
        g.captures = {t: g.captures[t] for t in captured}
    graph = graph_for([pred])
    tokens = tuple(register_function(graph, g, "branch") for g in graphs)
    attrs = {"branches": tokens, "Tout": tuple(t.dtype for t in first.outputs),
             "output_shapes": tuple(shapes)}
    with graph.control_dependencies(external_control(graphs)):
        outputs = apply_op("If", [pred] + captured, attrs, name=scope[:-1] + "/", 
                           default_name="If")
    outputs = list(outputs) if isinstance(outputs, tuple) else [outputs]
    outputs = _assign_after(graph, assigned, outputs[:n_results], outputs[n_results:], scope)
    outputs = [graph.create_op("NoOp", [], name=None, default_name="cond_done",
                               control_inputs=[t.op])
               if isinstance(leaf, Operation) else t
               for t, leaf in zip(outputs, flatten(first_result))]
    result = pack_as(first_result, outputs)
    if not strict and isinstance(result, (list, tuple)) and len(result) == 1 and \
            not hasattr(result, "_fields"):
        return result[0]  # TF1's non-strict mode: singleton lists are unpacked
    return result


def _assigned_variables(graphs: Sequence[FunctionGraph]) -> List[Tensor]:
    """The outer variables some branch assigns; each branch gets one more output per
    variable: its new value there, or its value before the cond."""
    assigned: Dict[Tensor, None] = {}
    for g in graphs:
        for var in g.assigned:
            assigned.setdefault(var, None)
    for g in graphs:
        with g.as_default():
            g.outputs = g.outputs + [g.capture(var) for var in assigned]
    return list(assigned)


def _assign_after(graph: Graph, assigned: Sequence[Tensor], results: List[Tensor],
                  new_values: List[Tensor], scope: str) -> List[Tensor]:
    """Assigns each variable a branch assigned its value from the cond; the cond's results,
    as the program sees them, wait for those assignments (TF1 runs them with the branch)."""
    if not assigned:
        return results
    from flowjit.ops.array import identity
    from flowjit.ops.state import assign
    with graph.as_default():
        updates = [assign(var, value, name=f"{scope}assign_{var.op.name.replace('/', '_')}")
                   for var, value in zip(assigned, new_values)]
        with graph.control_dependencies([u.op for u in updates]):
            return [identity(r) for r in results]


def _check_same_outputs(scope: str, role_a: str, a: FunctionGraph, result_a: Any,
                        role_b: str, b: FunctionGraph, result_b: Any) -> None:
    where = f"tf.cond '{scope.rstrip('/')}'"
    if structure_of(result_a) != structure_of(result_b):
        raise errors.StructureError(
            f"{where}: {role_a} and {role_b} must have the same nested structure, but "
            f"{role_a} returned {_describe(result_a)} and {role_b} returned "
            f"{_describe(result_b)}")
    for i, (x, y) in enumerate(zip(a.outputs, b.outputs)):
        if x.dtype is not y.dtype:
            raise errors.StructureError(
                f"{where}: outputs of {role_a} and {role_b} must have the same type: output "
                f"{i} is {x.dtype.name} in {role_a} and {y.dtype.name} in {role_b}")


def _describe(result: Any) -> str:
    """`(x, [x, x])`, `{a: x}`: a structure's nesting, `x` for each value."""
    if isinstance(result, dict):
        return "{" + ", ".join(f"{k}: {_describe(result[k])}" for k in sorted(result)) + "}"
    if isinstance(result, list):
        return "[" + ", ".join(_describe(item) for item in result) + "]"
    if isinstance(result, tuple):
        return "(" + ", ".join(_describe(item) for item in result) + ")"
    return "x"


def case(pred_fn_pairs, default: Optional[Callable] = None, exclusive: bool = False,
         strict: bool = False, name: str = "case"):
    """`tf.case`: the function of the first pair whose predicate is true, else `default`
    (without one, the last pair's function). `exclusive=True` checks at run time that at
    most one predicate is true. One `cond` on a branch index, not a chain of conds."""
    from flowjit.ops.host import Assert
    from flowjit.ops.math import argmax, cast, reduce_sum
    from flowjit.ops.array import concat, stack
    pairs = list(pred_fn_pairs.items()) if isinstance(pred_fn_pairs, dict) else \
        list(pred_fn_pairs)
    if not pairs:
        raise ValueError("tf.case: pred_fn_pairs must not be empty")
    for item in pairs:
        if not isinstance(item, (list, tuple)) or len(item) != 2 or not callable(item[1]):
            raise TypeError(f"tf.case: each pair must be (predicate, callable), got {item!r}")
    graph = get_default_graph()
    with graph.name_scope(name) as scope:
        preds = [convert_to_tensor(p) for p, _ in pairs]
        for p in preds:
            if p.dtype is not dtypes.bool_:
                raise errors.DTypeError(f"tf.case '{scope[:-1]}': predicates must be bool, got "
                                        f"{p.describe()} of dtype {p.dtype.name}")
        fns = [fn for _, fn in pairs]
        if default is None:  # TF1: the last function is the default
            default = fns[-1]
        flags = stack(preds, name="preds")
        index = cast(argmax(concat([cast(flags, dtypes.int32), constant([1], dtypes.int32)],
                                   0), 0), dtypes.int32, name="branch_index")
        if exclusive:
            count = reduce_sum(cast(flags, dtypes.int32))
            check = Assert(count <= 1, [f"Input error: exclusive=True: more than 1 conditions "
                                        f"({', '.join(p.name for p in preds)}) evaluated as "
                                        f"True:", flags], name="exclusive")
            with graph.control_dependencies([check]):
                index = apply_op("Identity", [index], name="checked_index")
        roles = [(f"branch {i} ({p.name})", fn) for i, (p, fn) in enumerate(zip(preds, fns))]
        return _build_if(index, roles + [("default", default)], scope, strict)


# -- tf.while_loop -------------------------------------------------------------------------------
def while_loop(cond: Callable, body: Callable, loop_vars, shape_invariants=None,
               parallel_iterations: int = 10, back_prop: bool = True,
               swap_memory: bool = False, name: Optional[str] = None,
               maximum_iterations=None, return_same_structure: bool = False,
               _numbered: bool = False):
    """`tf.while_loop`: repeats `loop_vars = body(*loop_vars)` while `cond(*loop_vars)`.
    `loop_vars` may nest lists, tuples, namedtuples and dicts; `shape_invariants` (the same
    structure of shapes) lets a variable's shape change between iterations (None dims);
    `maximum_iterations` bounds the iterations (a gradient through the loop needs it
    unless the trip count is known when the run is compiled)."""
    if not callable(cond) or not callable(body):
        raise TypeError("tf.while_loop: cond and body must be callable")
    if isinstance(loop_vars, (list, tuple)) and not loop_vars:
        raise ValueError("tf.while_loop: no loop variables provided")
    graph = get_default_graph()
    with graph.name_scope(name or "while") as scope:
        where = f"tf.while_loop '{scope[:-1]}'"
        _start_tensor_arrays(body, loop_vars, scope, where)
        leaves = [convert_to_tensor(v) for v in flatten(loop_vars)]
        invariants = _shape_invariants(where, loop_vars, leaves, shape_invariants)
        limit, counted = _iteration_limit(maximum_iterations)
        if counted is not None:  # a run-time maximum: count iterations in a loop variable
            return _counted_loop(cond, body, loop_vars, invariants, counted, scope,
                                 return_same_structure, graph)
        specs = [(t.dtype, s) for t, s in zip(leaves, invariants)]
        args = _loop_args(loop_vars)
        counters = _random_counters(graph)
        cond_graph, _ = trace(cond, scope, "cond", specs, args)
        if len(cond_graph.outputs) != 1 or cond_graph.outputs[0].dtype is not dtypes.bool_ \
                or not cond_graph.outputs[0].shape.is_compatible_with(TensorShape([])):
            got = ", ".join(f"{t.dtype.name}{t.shape}" for t in cond_graph.outputs)
            raise errors.DTypeError(f"{where}: cond must return a bool scalar, got {got}")
        body_graph, body_result = trace(body, scope, "body", specs, args)
        if _random_counters(graph) > counters and not _numbered:  # random ops in the loop
            return _loop_with_iteration(cond, body, loop_vars, shape_invariants, scope,
                                        maximum_iterations, return_same_structure)
        _check_body(where, args, body_result, leaves, body_graph, invariants)
        captured = captured_inputs([cond_graph, body_graph])
        for g in (cond_graph, body_graph):
            for tensor in captured:
                g.capture(tensor)
            g.captures = {t: g.captures[t] for t in captured}
        attrs = {"cond": register_function(graph, cond_graph, "cond"),
                 "body": register_function(graph, body_graph, "body"),
                 "Tout": tuple(t.dtype for t in leaves),
                 "output_shapes": tuple(invariants), "max_iterations": limit}
        with graph.control_dependencies(external_control([cond_graph, body_graph])):
            outputs = apply_op("While", leaves + captured, attrs, name=scope[:-1] + "/")
    outputs = list(outputs) if isinstance(outputs, tuple) else [outputs]
    if len(outputs) == 1 and not return_same_structure:
        return outputs[0]
    return pack_as(loop_vars, outputs)


def _random_counters(graph: Graph) -> int:
    root = graph.root if isinstance(graph, FunctionGraph) else graph
    return sum(1 for op in root._ops if op.type == "RngCounter")


def _loop_with_iteration(cond, body, loop_vars, shape_invariants, scope: str,
                         maximum_iterations, return_same_structure):
    """The loop again, with its iteration number as a hidden first loop variable that the
    random ops of its condition and body fold into their counters
    (FunctionGraph._iteration_counter): in TF1 each iteration draws new numbers. (The user's
    functions are traced twice, once to find the random ops: Python side effects in them
    happen twice.)"""
    from flowjit.ops.math import add
    single = not isinstance(loop_vars, (list, tuple))

    def numbered(fn, with_next):
        def call(i, values):
            get_default_graph().iteration = i
            result = fn(*_loop_args(values))
            if not with_next:
                return result
            if single and isinstance(result, (list, tuple)) and len(result) == 1:
                result = result[0]
            elif not single and not isinstance(result, (list, tuple)):
                result = [result]  # (one loop variable in a list; the body returned it bare)
            return add(i, 1), result
        return call
    invariants = None if shape_invariants is None else [TensorShape([]), shape_invariants]
    _, final = while_loop(numbered(cond, False), numbered(body, True),
                          [constant(0, dtypes.int64), loop_vars], invariants,
                          name=scope, maximum_iterations=maximum_iterations,
                          return_same_structure=True, _numbered=True)
    leaves = flatten(final)
    if len(leaves) == 1 and not return_same_structure:
        return leaves[0]
    return final


def _start_tensor_arrays(body: Callable, loop_vars: Any, scope: str, where: str) -> None:
    """TensorArrays entering the loop before any write learn their element shape from the
    body's first write to them: the body is traced once for that (the trace is dropped)."""
    leaves = flatten(loop_vars)
    deferred = [v for v in leaves if is_deferred(v)]
    if not deferred:
        return
    tensors = [(i, convert_to_tensor(v)) for i, v in enumerate(leaves) if not is_deferred(v)]

    def probe(*placeholders):
        arrays = list(leaves)
        for (i, _), p in zip(tensors, placeholders):
            arrays[i] = p
        body(*_loop_args(pack_as(loop_vars, arrays)))
        return constant(0)

    failure: Optional[Exception] = None
    try:
        trace(probe, scope, "body", [(t.dtype, t.shape) for _, t in tensors],
              [None] * len(tensors))
    except Exception as e:  # (the real trace reports the body's own errors)
        failure = e
    for array in deferred:
        if not array.element_shape.is_fully_defined():
            if failure is not None:
                raise failure
            raise errors.UnimplementedError(
                f"{where}: the TensorArray {array!r} enters the loop before any write, and "
                f"the body does not write an element of known shape to it: give "
                f"tf.TensorArray an element_shape")
        array.flow  # (zeros of the learned shape, before the loop)


def _shape_invariants(where: str, loop_vars: Any, leaves: List[Tensor],
                      shape_invariants: Any) -> List[TensorShape]:
    if shape_invariants is None:
        return [t.shape for t in leaves]
    given = _flatten_shapes(shape_invariants)
    if len(given) != len(leaves):
        raise errors.StructureError(f"{where}: shape_invariants has {len(given)} shapes for "
                                    f"{len(leaves)} loop variables")
    shapes = [as_shape(s) for s in given]
    for t, s in zip(leaves, shapes):
        if not s.is_compatible_with(t.shape):
            raise errors.ShapeError(
                f"{where}: the shape invariant specified for {t.name} is not compatible with "
                f"the initial shape of the loop variable. It enters the loop with shape "
                f"{t.shape}, but the specified shape invariant is {s}.")
    return shapes


def _flatten_shapes(structure: Any) -> List[Any]:
    """The shapes of a structure of shape invariants (a list of ints and Nones is one)."""
    if isinstance(structure, TensorShape) or _is_shape_list(structure):
        return [structure]
    if isinstance(structure, dict):
        return [s for key in sorted(structure) for s in _flatten_shapes(structure[key])]
    if isinstance(structure, (list, tuple)):
        return [s for item in structure for s in _flatten_shapes(item)]
    return [structure]


def _is_shape_list(value: Any) -> bool:
    """[None, 3] is one shape, not two invariants."""
    return isinstance(value, (list, tuple)) and all(v is None or isinstance(v, int)
                                                    for v in value) and \
        not isinstance(value, TensorShape)


def _iteration_limit(maximum_iterations) -> Tuple[Optional[int], Optional[Tensor]]:
    """(a static limit, or None; a run-time limit tensor, or None)."""
    if maximum_iterations is None:
        return None, None
    if isinstance(maximum_iterations, (int, np.integer)):
        return int(maximum_iterations), None
    tensor = convert_to_tensor(maximum_iterations)
    if tensor._value is not None:
        return int(tensor._value), None
    return None, tensor


def _counted_loop(cond, body, loop_vars, invariants, limit: Tensor, scope: str,
                  return_same_structure: bool, graph: Graph):
    """A loop whose maximum is known only at run time: the counter is a loop variable."""
    from flowjit.ops.math import cast, less, logical_and
    limit = cast(limit, dtypes.int32)
    single = not isinstance(loop_vars, (list, tuple))
    user = [loop_vars] if single else list(loop_vars)

    def counted_cond(i, *vars_):
        return logical_and(less(i, limit), cond(*vars_))

    def counted_body(i, *vars_):
        out = body(*vars_)
        out = [out] if single or not isinstance(out, (list, tuple)) else list(out)
        return [i + 1] + out

    leaves_invariants = [TensorShape([])] + list(invariants)
    structure = [constant(0, dtypes.int32)] + user
    flat_invariants = pack_as(structure, leaves_invariants)
    outputs = while_loop(counted_cond, counted_body, structure, flat_invariants,
                         name=scope, return_same_structure=True)
    result = outputs[1:]
    if single:
        return result[0]
    if len(flatten(result)) == 1 and not return_same_structure:
        return flatten(result)[0]
    return pack_as(loop_vars, flatten(result))


def _loop_args(loop_vars: Any) -> List[Any]:
    """The arguments cond and body get: the loop variables' top-level items (TF1 calls
    `body(*loop_vars)`), or the one variable."""
    return list(loop_vars) if isinstance(loop_vars, (list, tuple)) else [loop_vars]


def _check_body(where: str, args: List[Any], result: Any, leaves: List[Tensor],
                body_graph: FunctionGraph, invariants: List[TensorShape]) -> None:
    got = list(result) if isinstance(result, (list, tuple)) else [result]
    if structure_of(args) != structure_of(got):
        raise errors.StructureError(
            f"{where}: body must return the structure of loop_vars: loop_vars is "
            f"{_describe(args)}, body returned {_describe(got)}")
    for i, (var, out, shape) in enumerate(zip(leaves, body_graph.outputs, invariants)):
        if var.dtype is not out.dtype:
            raise errors.DTypeError(
                f"{where}: loop variable {i} ({var.name}) enters the loop as "
                f"{var.dtype.name}, but body returns {out.dtype.name} for it")
        if not _at_least_as_general(shape, out.shape):
            raise errors.ShapeError(
                f"{where}: input tensor '{var.name}' enters the loop with shape {shape}, but "
                f"has shape {out.shape} after one iteration. To allow the shape to vary "
                f"across iterations, use the `shape_invariants` argument of tf.while_loop "
                f"to specify a less-specific shape.")


def _at_least_as_general(invariant: TensorShape, shape: TensorShape) -> bool:
    """Whether every tensor of `shape` has the shape `invariant` (its None dims any)."""
    if invariant.dims is None:
        return True
    if shape.dims is None or len(shape.dims) != len(invariant.dims):
        return False
    return all(i is None or i == s for i, s in zip(invariant.dims, shape.dims))
