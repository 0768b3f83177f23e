"""Functions of control-flow ops: each function a tf.cond branch, a tf.while_loop condition
or body (or a user's gradient function) runs is traced once, when the graph is built, into a
`FunctionGraph` of its own. The function's arguments and the outer tensors it uses
(captured) are placeholders there; the op in the outer graph names the function by a token
(`"branch_3"`) registered with the program's root graph, so an op's attributes stay data
that prints and serializes, as py_func's do. Also here: TF's `nest` (flatten and pack
structures of tensors, TensorArrays included).

What a function graph does differently from the program's: a cond branch's assignments to
outer variables become outputs of the cond (`_assignment`); variables are created in the
root graph (TF1's init_scope, variables.py); random ops draw from the root graph's run
counters, salted in a loop body with its iteration number (`_iteration_counter`).
"""
from __future__ import annotations

import itertools
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from flowjit import dtypes, errors
from flowjit.graph.core import Graph, Operation, Tensor, get_default_graph
from flowjit.graph.shape import TensorShape
from flowjit.ops.base import constant, convert_to_tensor
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


def register_function(graph: Graph, fn: FunctionGraph, kind: str) -> str:
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


def captured_inputs(fns: Sequence[FunctionGraph]) -> List[Tensor]:
    """The outer tensors any of `fns` captured, in order of first capture."""
    seen: Dict[Tensor, None] = {}
    for fn in fns:
        for tensor in fn.captures:
            seen.setdefault(tensor, None)
    return list(seen)


def external_control(fns: Sequence[FunctionGraph]) -> List[Operation]:
    ops: List[Operation] = []
    for fn in fns:
        ops.extend(op for op in fn.external_control if op not in ops)
    return ops
