"""Control flow: `tf.cond`, `tf.case` and `tf.while_loop` as functional ops.

Each function a control-flow op runs (a branch, a loop's condition or body) is traced once,
when the graph is built, into a `FunctionGraph` of its own: the function's arguments and the
outer tensors it uses (captured) are placeholders there. The op in the outer graph reads the
predicate (or loop variables) and the captured tensors, and names its functions by tokens
(`"branch_3"`), registered with the program's root graph; so an op's attributes stay data
that prints and serializes, as py_func's do. The lowering turns each function into a region
of an IR `cond` / `while` instruction (`lower.py`), as XLA's conditional and while.

    pred -> If{branches=(true, false)}(pred, captured...) -> outputs
    While{cond, body}(loop vars..., captured...) -> final loop vars

What a function may not do: create variables, or assign them in a loop (UnimplementedError
naming the op); a cond's branch may assign outer variables (`_assignment`); random ops in
it draw from counters of the root graph, salted in a loop body with the iteration number
(`_loop_with_iteration`), so each iteration draws numbers of its own.
"""
from __future__ import annotations

import itertools
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import Graph, Operation, Tensor, get_default_graph
from flowjit.graph.registry import ShapeInferenceError, TensorSpec, register_op
from flowjit.graph.shape import TensorShape, as_shape
from flowjit.ops.base import apply_op, constant, convert_to_tensor, graph_for
from flowjit.ops.tensor_array import TensorArray, is_deferred

_tokens = itertools.count()
OP_DONE = "op_done"  # a branch's output standing for an operation it returned
# Odd multipliers mixing nested loops' iteration numbers into random ops' streams
_ITERATION_SALTS = (0x9E3779B1, 0x85EBCA77, 0xC2B2AE3D, 0x27D4EB2F)


class FunctionGraph(Graph):
    """The graph of one function of a control-flow op. Op names are unique in the whole
    program (the root graph keeps them); collections, variable scopes and the graph seed
    are the root's. Outer tensors used here are captured: `captures` maps each (a tensor
    of the enclosing graph) to the placeholder standing for it."""

    def __init__(self, outer: Graph, scope: str, role: str, branch: bool = False) -> None:
        super().__init__()
        self.outer = outer
        self.branch = branch  # a cond's branch: it may assign outer variables
        self.root: Graph = outer.root if isinstance(outer, FunctionGraph) else outer
        self.role = role  # "true_fn", "body", ...: how error messages name the function
        self._building_function = True
        self._name_stack = scope.rstrip("/")
        self._names_in_use = self.root._names_in_use
        self._collections = self.root._collections
        self._variable_scopes = self.root._variable_scopes
        self._functions = self.root._functions
        self._gradient_override_map = outer._gradient_override_map  # (ops traced inside)
        self.captures: Dict[Tensor, Tensor] = {}
        self.args: List[Tensor] = []
        self.outputs: List[Tensor] = []
        self.external_control: List[Operation] = []  # outer ops the function waits for
        self.iteration: Optional[Tensor] = None  # a loop body's iteration number (int64)
        # outer variable tensor -> its value after the branch's assignments so far
        self.assigned: Dict[Tensor, Tensor] = {}

    @property
    def seed(self) -> Optional[int]:
        return self.root.seed if hasattr(self, "root") else None

    @seed.setter
    def seed(self, value: Optional[int]) -> None:
        if hasattr(self, "root"):  # (Graph.__init__ sets it before `root` exists)
            self.root.seed = value

    @property
    def gpu_requested(self) -> bool:
        """The root's: `tf.device('/gpu:0')` in a branch or loop body asks it for the whole
        program (Graph.device sets this)."""
        return self.root.gpu_requested

    @gpu_requested.setter
    def gpu_requested(self, value: bool) -> None:
        self.root.gpu_requested = value

    @property
    def inputs(self) -> List[Tensor]:
        """The placeholders of the function's arguments, then of its captures."""
        return self.args + list(self.captures.values())

    def capture(self, tensor: Tensor) -> Tensor:
        """The tensor of this graph standing for `tensor` of an enclosing graph: a copy of
        it if its value is known when the graph is built, else a placeholder."""
        if tensor in self.assigned:  # read after this branch assigned the variable
            return self.assigned[tensor]
        return self.capture_outer(tensor)

    def capture_outer(self, tensor: Tensor) -> Tensor:
        """The placeholder standing for `tensor`'s value where the function is called."""
        if tensor.graph is self:
            return tensor
        if tensor.graph is not self.outer:
            if not isinstance(self.outer, FunctionGraph):
                return super()._foreign_input(tensor, self._name_stack)
            tensor = self.outer.capture(tensor)
        if tensor in self.captures:
            return self.captures[tensor]
        with self.as_default():
            if tensor._value is not None and tensor.dtype is not dtypes.string:
                return constant(tensor._value, tensor.dtype, name="captured")
            inner = Graph.create_op(self, "Placeholder", [], {"dtype": tensor.dtype,
                                                              "shape": tensor.shape},
                                    name=None, default_name="captured").outputs[0]
        self.captures[tensor] = inner
        return inner

    def _foreign_input(self, tensor: Tensor, op_name: str) -> Tensor:
        return self.capture(tensor)

    def add_arg(self, dtype: dtypes.DType, shape: TensorShape, name: str) -> Tensor:
        op = Graph.create_op(self, "Placeholder", [], {"dtype": dtype, "shape": shape},
                             name=None, default_name=name)
        self.args.append(op.outputs[0])
        return op.outputs[0]

    def create_op(self, op_type: str, inputs: Sequence[Tensor], attrs: Optional[Dict] = None,
                  name: Optional[str] = None, default_name: Optional[str] = None,
                  control_inputs: Sequence[Operation] = ()) -> Operation:
        if op_type == "RngCounter":  # run counters are the Session's: the root graph's
            return self._iteration_counter(self.root.create_op(op_type, inputs, attrs, name,
                                                               default_name))
        what = (name or default_name or op_type).rstrip("/")
        if op_type == "VariableV2":
            raise errors.UnimplementedError(
                f"creating variable '{what}' inside the {self.role} of a control-flow op "
                f"(scope '{self._name_stack}') is not supported: create it outside the "
                f"function and use it inside")
        from flowjit.graph.registry import get_op_def
        if get_op_def(op_type).assigns_variable and self.branch and inputs and \
                inputs[0].graph is not self:
            return self._assignment(op_type, inputs, name or default_name or op_type,
                                    control_inputs)
        if get_op_def(op_type).assigns_variable:
            raise errors.UnimplementedError(
                f"{op_type} '{what}' inside the {self.role} of a control-flow op (scope "
                f"'{self._name_stack}'): assigning variables in tf.while_loop bodies is "
                f"not supported yet; carry the new value as a loop variable and assign the "
                f"loop's result")
        control_inputs = self._local(control_inputs)
        return super().create_op(op_type, inputs, attrs, name, default_name, control_inputs)

    def _iteration_counter(self, counter: Operation) -> Operation:
        """A random op's run counter inside loop bodies: the run's counter plus the loop
        iterations (of this body and the bodies around it) in its high 32 bits, so each
        iteration draws numbers of its own (ops/random.py reads them as the stream)."""
        iterations = []
        graph: Any = self
        while isinstance(graph, FunctionGraph):
            if graph.iteration is not None:
                iterations.append(graph.iteration)
            graph = graph.outer
        if not iterations:
            return counter
        from flowjit.ops.math import add, floormod, multiply
        with self.as_default():
            salt = None
            for k, iteration in enumerate(iterations):
                term = multiply(add(self.capture(iteration), 1), _ITERATION_SALTS[k % 4])
                salt = term if salt is None else add(salt, term)
            salt = multiply(floormod(salt, 1 << 32), 1 << 32)
            return add(self.capture(counter.outputs[0]), salt).op

    def _assignment(self, op_type: str, inputs: Sequence[Tensor], name: str,
                    control_inputs: Sequence[Operation]) -> Operation:
        """An assignment to an outer variable in a cond's branch: the variable's new value,
        computed here, becomes an output of the cond, and the cond assigns it outside
        (`_assign_after`); in the branch, later reads of the variable see it."""
        from flowjit.ops.math import add, subtract
        var, value = inputs[0], inputs[1]
        with self.as_default():
            current, value = self.capture(var), self.capture(value)
            if value.dtype is not var.dtype:
                raise errors.DTypeError(f"{op_type} '{name}': cannot assign a value of dtype "
                                        f"{value.dtype.name} to the {var.dtype.name} variable "
                                        f"'{var.op.name}'")
            new = {"Assign": lambda: value, "AssignAdd": lambda: add(current, value),
                   "AssignSub": lambda: subtract(current, value)}[op_type]()
            if not var.shape.is_compatible_with(new.shape):
                raise errors.ShapeError(f"{op_type} '{name}': cannot assign a value of shape "
                                        f"{new.shape} to variable '{var.op.name}' of shape "
                                        f"{var.shape}")
            op = Graph.create_op(self, "Identity", [new], None, None, name,
                                 self._local(control_inputs))
        self.assigned[var] = op.outputs[0]
        return op

    def control_dependencies(self, control_inputs):
        if control_inputs is None:
            return super().control_dependencies(None)
        elements = [self.outer_element(c) for c in control_inputs]
        return super().control_dependencies(self._local(elements))

    def _local(self, ops: Sequence[Any]) -> List[Operation]:
        """`ops` of this graph; those of enclosing graphs become dependencies of the
        control-flow op itself (they run before it)."""
        local = []
        for op in ops:
            op = op.op if isinstance(op, Tensor) else op
            if op.graph is self:
                local.append(op)
            elif op not in self.external_control:
                self.external_control.append(op)
        return local

    @staticmethod
    def outer_element(item: Any) -> Any:
        if hasattr(item, "_as_graph_element"):
            item = item._as_graph_element()
        if not isinstance(item, (Tensor, Operation)):
            raise TypeError(f"control_dependencies takes Tensors and Operations, got {item!r}")
        return item


def function_of(op: Operation, token: str) -> FunctionGraph:
    """The function a control-flow op names by `token`."""
    fn = op.graph._functions.get(token)
    if fn is None:
        raise errors.FailedPreconditionError(
            f"the function {token!r} of {op.describe()} is not in this process (control-flow "
            f"functions are traced when the graph is built; a loaded graph has lost them)")
    return fn


def _register_function(graph: Graph, fn: FunctionGraph, kind: str) -> str:
    token = f"{kind}_{next(_tokens)}"
    graph._functions[token] = fn
    return token


# -- nested structures (TF's `nest`: lists, tuples, namedtuples, dicts) -------------------------
def flatten(structure: Any) -> List[Any]:
    if isinstance(structure, TensorArray):  # its buffer (itself while it has none)
        return [structure if is_deferred(structure) else structure.flow]
    if isinstance(structure, dict):
        return [leaf for key in sorted(structure) for leaf in flatten(structure[key])]
    if isinstance(structure, (list, tuple)):
        return [leaf for item in structure for leaf in flatten(item)]
    return [structure]


def pack_as(structure: Any, leaves: Sequence[Any]) -> Any:
    """`leaves` (as many as `flatten(structure)` has) in the shape of `structure`."""
    it = iter(leaves)

    def build(s: Any) -> Any:
        if isinstance(s, TensorArray):
            leaf = next(it)
            return s._with_buffer(leaf) if isinstance(leaf, Tensor) else leaf
        if isinstance(s, dict):
            built = {key: build(s[key]) for key in sorted(s)}
            return type(s)((key, built[key]) for key in s)
        if isinstance(s, (list, tuple)):
            items = [build(item) for item in s]
            if hasattr(s, "_fields"):  # a namedtuple
                return type(s)(*items)
            return type(s)(items)
        return next(it)
    return build(structure)


def structure_of(structure: Any) -> Any:
    """A comparable description of a structure's nesting (leaves are '.')."""
    if isinstance(structure, TensorArray):
        return "TensorArray"
    if isinstance(structure, dict):
        return ("dict", tuple((k, structure_of(structure[k])) for k in sorted(structure)))
    if isinstance(structure, (list, tuple)):
        kind = type(structure).__name__ if hasattr(structure, "_fields") else "sequence"
        return (kind, tuple(structure_of(s) for s in structure))
    return "."


# -- tracing a function -----------------------------------------------------------------------
def trace(fn: Callable, scope: str, role: str,
          arg_specs: Sequence[Tuple[dtypes.DType, TensorShape]] = (),
          arg_structure: Sequence[Any] = (), branch: bool = False
          ) -> Tuple[FunctionGraph, Any]:
    """Calls `fn` in a new FunctionGraph, with a placeholder per entry of `arg_specs`
    (dtype, shape), packed as the list `arg_structure` and passed as `*args`. Returns the
    graph (its outputs set) and what `fn` returned."""
    outer = get_default_graph()
    fn_graph = FunctionGraph(outer, scope, role, branch)
    with fn_graph.as_default():
        placeholders = [fn_graph.add_arg(dtype, shape, "arg") for dtype, shape in arg_specs]
        result = fn(*pack_as(list(arg_structure), placeholders))
        if result is None:
            raise errors.StructureError(f"{role} of '{scope.rstrip('/')}' must return a "
                                        f"value, got None")
        outputs = []
        for leaf in flatten(result):
            if isinstance(leaf, Operation) and not branch:
                raise errors.DTypeError(f"{role} of '{scope.rstrip('/')}' returned the "
                                        f"operation '{leaf.name}'; return tensors")
            if isinstance(leaf, Operation):  # (a branch's op: a token that it ran)
                from flowjit.ops.array import identity
                with fn_graph.control_dependencies([leaf]):
                    leaf = identity(constant(True), name=OP_DONE)
            tensor = convert_to_tensor(leaf)
            outputs.append(fn_graph.capture(tensor) if tensor.graph is not fn_graph
                           else tensor)
    fn_graph.outputs = outputs
    return fn_graph, result


def merged_shape(a: TensorShape, b: TensorShape) -> TensorShape:
    """The most specific shape both `a` and `b` have: dims that differ become unknown."""
    if a.dims is None or b.dims is None or len(a.dims) != len(b.dims):
        return TensorShape(None)
    return TensorShape([x if x == y else None for x, y in zip(a.dims, b.dims)])


def _captured_inputs(fns: Sequence[FunctionGraph]) -> List[Tensor]:
    """The outer tensors any of `fns` captured, in order of first capture."""
    seen: Dict[Tensor, None] = {}
    for fn in fns:
        for tensor in fn.captures:
            seen.setdefault(tensor, None)
    return list(seen)


def _external_control(fns: Sequence[FunctionGraph]) -> List[Operation]:
    ops: List[Operation] = []
    for fn in fns:
        ops.extend(op for op in fn.external_control if op not in ops)
    return ops


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
    captured = _captured_inputs(graphs)
    for g in graphs:  # each function takes every captured tensor, in one order
        for tensor in captured:
            g.capture_outer(tensor)
        g.captures = {t: g.captures[t] for t in captured}
    graph = graph_for([pred])
    tokens = tuple(_register_function(graph, g, "branch") for g in graphs)
    attrs = {"branches": tokens, "Tout": tuple(t.dtype for t in first.outputs),
             "output_shapes": tuple(shapes)}
    with graph.control_dependencies(_external_control(graphs)):
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
        cond_graph, _ = trace(cond, scope, "cond", specs, args)
        if len(cond_graph.outputs) != 1 or cond_graph.outputs[0].dtype is not dtypes.bool_ \
                or not cond_graph.outputs[0].shape.is_compatible_with(TensorShape([])):
            got = ", ".join(f"{t.dtype.name}{t.shape}" for t in cond_graph.outputs)
            raise errors.DTypeError(f"{where}: cond must return a bool scalar, got {got}")
        counters = _random_counters(graph)
        body_graph, body_result = trace(body, scope, "body", specs, args)
        if _random_counters(graph) > counters and not _numbered:  # random ops in the body
            return _loop_with_iteration(cond, body, loop_vars, shape_invariants, name,
                                        maximum_iterations, return_same_structure)
        _check_body(where, args, body_result, leaves, body_graph, invariants)
        captured = _captured_inputs([cond_graph, body_graph])
        for g in (cond_graph, body_graph):
            for tensor in captured:
                g.capture(tensor)
            g.captures = {t: g.captures[t] for t in captured}
        attrs = {"cond": _register_function(graph, cond_graph, "cond"),
                 "body": _register_function(graph, body_graph, "body"),
                 "Tout": tuple(t.dtype for t in leaves),
                 "output_shapes": tuple(invariants), "max_iterations": limit}
        with graph.control_dependencies(_external_control([cond_graph, body_graph])):
            outputs = apply_op("While", leaves + captured, attrs, name=scope[:-1] + "/")
    outputs = list(outputs) if isinstance(outputs, tuple) else [outputs]
    if len(outputs) == 1 and not return_same_structure:
        return outputs[0]
    return pack_as(loop_vars, outputs)


def _random_counters(graph: Graph) -> int:
    root = graph.root if isinstance(graph, FunctionGraph) else graph
    return sum(1 for op in root._ops if op.type == "RngCounter")


def _loop_with_iteration(cond, body, loop_vars, shape_invariants, name, maximum_iterations,
                         return_same_structure):
    """The loop again, with its iteration number as a hidden first loop variable that the
    body's random ops fold into their counters (FunctionGraph._iteration_counter): in TF1
    each iteration draws new numbers."""
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
            return add(i, 1), result
        return call
    invariants = None if shape_invariants is None else [TensorShape([]), shape_invariants]
    _, final = while_loop(numbered(cond, False), numbered(body, True),
                          [constant(0, dtypes.int64), loop_vars], invariants,
                          name=name or "while", maximum_iterations=maximum_iterations,
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
