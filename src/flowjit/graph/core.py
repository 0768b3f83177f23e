"""The dataflow graph: `Graph`, `Operation`, `Tensor` (TF1 semantics and names).

A Graph is append-only. Each Operation records its op type (looked up in the op table), its
inputs, control inputs, attributes and the file:line of the user code that created it, so that
every later error message and IR dump can point back at the user's program.
"""
from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
import weakref
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from flowjit import errors
from flowjit.graph.registry import (DTypeInferenceError, OpDef, ShapeInferenceError,
                                    TensorSpec, get_op_def)
from flowjit.graph.shape import TensorShape, as_shape

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_VALID_OP_NAME = re.compile(r"^[A-Za-z0-9.][A-Za-z0-9_.\-/>]*$")


def user_call_site() -> str:
    """'file.py:12' of the innermost caller frame outside the flowjit package."""
    frame = sys._getframe(1)
    while frame is not None:
        filename = frame.f_code.co_filename
        if not os.path.abspath(filename).startswith(_PACKAGE_DIR + os.sep):
            return f"{os.path.basename(filename)}:{frame.f_lineno}"
        frame = frame.f_back
    return "<unknown>"


class Tensor:
    """A symbolic value: output `value_index` of an Operation."""

    # Make numpy defer to Tensor's reflected operators (np.float32(2) * t -> Tensor).
    __array_priority__ = 100

    __slots__ = ("op", "value_index", "dtype", "_shape", "_value", "__weakref__")

    def __init__(self, op: "Operation", value_index: int, spec: TensorSpec) -> None:
        self.op = op
        self.value_index = value_index
        self.dtype = spec.dtype
        self._shape = spec.shape
        self._value = spec.value  # build-time constant value, if known

    @property
    def name(self) -> str:
        return f"{self.op.name}:{self.value_index}"

    @property
    def graph(self) -> "Graph":
        return self.op.graph

    @property
    def shape(self) -> TensorShape:
        return self._shape

    def get_shape(self) -> TensorShape:
        return self._shape

    def set_shape(self, shape) -> None:
        try:
            self._shape = self._shape.merge_with(as_shape(shape))
        except ValueError:
            raise errors.ShapeError(
                f"Tensor '{self.name}' has shape {self._shape}, which is not compatible with "
                f"the shape {as_shape(shape)} given to set_shape", self.op) from None

    @property
    def spec(self) -> TensorSpec:
        return TensorSpec(self.dtype, self._shape, self._value)

    @property
    def device(self) -> str:
        return ""

    def consumers(self) -> List["Operation"]:
        return [op for op in self.graph.get_operations() if self in op.inputs]

    def eval(self, feed_dict=None, session=None):
        from flowjit.graph.session import _session_for_eval
        return _session_for_eval(session, self.graph).run(self, feed_dict)

    def describe(self) -> str:
        """`'x:0' (created at train.py:12)`: how error messages name a tensor."""
        return f"'{self.name}' (created at {self.op.site})"

    def __repr__(self) -> str:
        return f"<tf.Tensor '{self.name}' shape={self._shape} dtype={self.dtype.name}>"

    def __str__(self) -> str:
        shape = "" if self._shape.dims is None else f"shape={self._shape}, "
        return f'Tensor("{self.name}", {shape}dtype={self.dtype.name})'

    def __bool__(self) -> bool:
        raise TypeError("Using a flowjit Tensor as a Python bool is not allowed: the graph "
                        "is not run yet. Use tf.where / tf.cond-style ops, or sess.run().")

    def __iter__(self):
        raise TypeError(f"Tensor '{self.name}' is not iterable: it has no value until "
                        "sess.run(). Use tf.unstack to split it.")

    def __len__(self) -> int:
        raise TypeError(f"len() of a Tensor is not defined; use "
                        f"'{self.name}'.shape[0] or tf.shape().")

    # Tensors hash by identity so they can key feed_dicts (TF1 semantics); `==` stays
    # identity too: tf.equal is the elementwise comparison.
    __hash__ = object.__hash__

    # Operator overloads are installed by flowjit.ops.overloads.


class Operation:
    """A node of the graph."""

    __slots__ = ("graph", "name", "type", "op_def", "inputs", "control_inputs", "attrs",
                 "outputs", "site", "_id", "_gradient_override", "_gradient_token",
                 "__weakref__")

    def __init__(self, graph: "Graph", name: str, op_def: OpDef, inputs: Sequence[Tensor],
                 attrs: Dict[str, Any], control_inputs: Sequence["Operation"], site: str,
                 op_id: int) -> None:
        self.graph = graph
        self.name = name
        self.type = op_def.type
        self.op_def = op_def
        self.inputs: Tuple[Tensor, ...] = tuple(inputs)
        self.control_inputs: Tuple[Operation, ...] = tuple(control_inputs)
        self.attrs = attrs
        self.outputs: Tuple[Tensor, ...] = ()
        self.site = site
        self._id = op_id
        # gradient_override_map: the gradient's name, and its traced function's token
        self._gradient_override: Optional[str] = None
        self._gradient_token: Optional[str] = None

    @property
    def node_def(self) -> Dict[str, Any]:
        return {"name": self.name, "op": self.type, "attr": dict(self.attrs),
                "input": [t.name for t in self.inputs]
                + ["^" + op.name for op in self.control_inputs]}

    @property
    def device(self) -> str:
        return ""

    def get_attr(self, name: str) -> Any:
        try:
            return self.attrs[name]
        except KeyError:
            raise ValueError(f"Operation '{self.name}' has no attr named '{name}'") from None

    def run(self, feed_dict=None, session=None) -> None:
        from flowjit.graph.session import _session_for_eval
        _session_for_eval(session, self.graph).run(self, feed_dict)

    def describe(self) -> str:
        return f"'{self.name}' (op: '{self.type}', created at {self.site})"

    def __repr__(self) -> str:
        return f"<tf.Operation '{self.name}' type={self.type}>"

    __hash__ = object.__hash__


class GraphKeys:
    GLOBAL_VARIABLES = "variables"
    LOCAL_VARIABLES = "local_variables"
    TRAINABLE_VARIABLES = "trainable_variables"
    MODEL_VARIABLES = "model_variables"
    SUMMARIES = "summaries"
    UPDATE_OPS = "update_ops"
    LOSSES = "losses"
    REGULARIZATION_LOSSES = "regularization_losses"
    METRIC_VARIABLES = "metric_variables"
    GLOBAL_STEP = "global_step"
    TRAIN_OP = "train_op"
    INIT_OP = "init_op"
    SAVERS = "savers"
    VARIABLES = GLOBAL_VARIABLES


class Graph:
    """A TF1 graph: a growing list of Operations plus naming, scopes and collections."""

    def __init__(self) -> None:
        self._ops: List[Operation] = []
        self._ops_by_name: Dict[str, Operation] = {}
        self._names_in_use: Dict[str, int] = {}
        self._name_stack = ""
        self._control_dependencies: List[List[Operation]] = []
        self._collections: Dict[str, list] = {}
        self._variable_scopes: Dict[str, Any] = {}  # used by flowjit.variables
        self._finalized = False
        self._lock = threading.RLock()
        self.seed: Optional[int] = None
        self._building_function = False
        self._functions: Dict[str, Any] = {}  # token -> a control-flow op's function graph
        self._gradient_override_map: Dict[str, str] = {}
        _live_graphs.add(self)

    # -- identity and versioning (the executable cache keys on these) -------------------
    @property
    def version(self) -> int:
        """Number of operations; grows with every op added (graphs are append-only)."""
        return len(self._ops)

    @property
    def finalized(self) -> bool:
        return self._finalized

    def finalize(self) -> None:
        self._finalized = True

    # -- default-graph handling -----------------------------------------------------------
    @contextlib.contextmanager
    def as_default(self) -> Iterator["Graph"]:
        _graph_stack().append(self)
        try:
            yield self
        finally:
            _graph_stack().pop()

    # -- naming ---------------------------------------------------------------------------
    def unique_name(self, name: str, mark_as_used: bool = True) -> str:
        """TF1's scheme: 'add', 'add_1', 'add_2'...; case-insensitive, scope-prefixed."""
        if self._name_stack:
            name = f"{self._name_stack}/{name}"
        key = name.lower()
        count = self._names_in_use.get(key, 0)
        if mark_as_used:
            self._names_in_use[key] = count + 1
        if count > 0:
            base_key = key
            while key in self._names_in_use:
                key = f"{base_key}_{count}"
                count += 1
            if mark_as_used:
                self._names_in_use[key] = 1
            name = f"{name}_{count - 1}"
        return name

    def get_name_scope(self) -> str:
        return self._name_stack

    @contextlib.contextmanager
    def name_scope(self, name: Optional[str]) -> Iterator[str]:
        """TF1 name_scope: 'a' -> 'a/', reused names get '_1'; a name ending in '/' is
        taken as an absolute scope; None or '' resets to the top."""
        old = self._name_stack
        if not name:
            new = ""
        elif name.endswith("/"):
            new = name[:-1]
        else:
            new = self.unique_name(name)
        self._name_stack = new
        try:
            yield (new + "/") if new else ""
        finally:
            self._name_stack = old

    # -- control dependencies -----------------------------------------------------------
    @contextlib.contextmanager
    def control_dependencies(self, control_inputs) -> Iterator[None]:
        if control_inputs is None:  # clears outer dependencies, as in TF1
            saved, self._control_dependencies = self._control_dependencies, []
            try:
                yield
            finally:
                self._control_dependencies = saved
            return
        ops = [self.as_graph_element(c, allow_tensor=True, allow_operation=True)
               for c in control_inputs]
        ops = [c.op if isinstance(c, Tensor) else c for c in ops]
        self._control_dependencies.append(ops)
        try:
            yield
        finally:
            self._control_dependencies.pop()

    @contextlib.contextmanager
    def gradient_override_map(self, op_type_map: Dict[str, str]) -> Iterator[None]:
        """Ops of the types in `op_type_map` created inside take the gradient registered
        (tf.RegisterGradient) under the name it maps them to (ops/custom_gradient.py)."""
        if not isinstance(op_type_map, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in op_type_map.items()):
            raise TypeError("gradient_override_map takes a dict of op type -> gradient name")
        saved = self._gradient_override_map
        self._gradient_override_map = {**saved, **op_type_map}
        try:
            yield
        finally:
            self._gradient_override_map = saved

    def device(self, name) -> contextlib.AbstractContextManager:
        """Device placement is the backend's business in flowjit: a GPU asked for anywhere
        in the graph (`tf.device('/gpu:0')`) makes a Session without an explicit backend
        use the CUDA backend where it can run (config.resolve_backend); ops it has no
        kernel for run on the host, as with TF1's soft placement."""
        if isinstance(name, str) and "gpu" in name.lower():
            self.gpu_requested = True
        return contextlib.nullcontext()

    gpu_requested = False

    colocate_with = device

    # -- op creation ----------------------------------------------------------------------
    def create_op(self, op_type: str, inputs: Sequence[Tensor], attrs: Optional[Dict] = None,
                  name: Optional[str] = None, default_name: Optional[str] = None,
                  control_inputs: Sequence[Operation] = ()) -> Operation:
        """Adds an op after checking its inputs and inferring its output specs."""
        if self._finalized:
            raise RuntimeError("Graph is finalized and cannot be modified.")
        op_def = get_op_def(op_type)
        attrs = {**op_def.attr_defaults, **(attrs or {})}
        for t in inputs:
            if not isinstance(t, Tensor):
                raise TypeError(f"Input to {op_type} must be a Tensor, got {type(t).__name__}")
        inputs = [t if t.graph is self else self._foreign_input(t, name or default_name or
                                                                 op_type) for t in inputs]
        base = name if name is not None else (default_name or op_type)
        if name is not None and not _VALID_OP_NAME.match(name.rstrip("/").split("/")[-1] or "x"):
            raise ValueError(f"'{name}' is not a valid op name")
        with self._lock:
            if base.endswith("/"):  # a name_scope's name: taken verbatim, as in TF1
                op_name = base[:-1]
                if op_name in self._ops_by_name:
                    raise ValueError(f"Duplicate op name '{op_name}'")
                self._names_in_use.setdefault(op_name.lower(), 1)  # later uniquing sees it
            else:
                op_name = self.unique_name(base)
            site = user_call_site()
            deps: List[Operation] = []
            for group in self._control_dependencies:
                for dep in group:
                    if dep not in deps and all(dep is not t.op for t in inputs):
                        deps.append(dep)
            for dep in control_inputs:
                if dep not in deps:
                    deps.append(dep)
            op = Operation(self, op_name, op_def, inputs, attrs, deps, site, len(self._ops))
            op._gradient_override = self._gradient_override_map.get(op.type)
            specs = self._infer(op)
            op.outputs = tuple(Tensor(op, i, spec) for i, spec in enumerate(specs))
            self._ops.append(op)
            self._ops_by_name[op_name] = op
        return op

    def _foreign_input(self, tensor: Tensor, op_name: str) -> Tensor:
        """An input from another graph: an error here; a function's graph (a tf.cond
        branch, a tf.while_loop body) captures tensors of the graphs around it."""
        raise errors.InvalidArgumentError(
            f"Tensor {tensor.describe()} belongs to a different Graph than the op "
            f"'{op_name}' being created. Build all ops of a computation in the same graph "
            f"(with g.as_default(): ...).")

    def _infer(self, op: Operation) -> Sequence[TensorSpec]:
        input_specs = [t.spec for t in op.inputs]
        try:
            specs = op.op_def.infer(input_specs, **op.attrs)
        except ShapeInferenceError as e:
            raise self._build_error(op, e) from None
        return _fold_small_constants(op, input_specs, specs)

    @staticmethod
    def _build_error(op: Operation, cause: ShapeInferenceError) -> errors.OpError:
        """The build-time error: the rule's complaint, the op, and every operand by name."""
        def operand(t: Tensor) -> str:
            shape = "unknown shape" if t.shape.dims is None else f"shape {list(t.shape.dims)}"
            return f"{t.describe()} with {shape} and dtype {t.dtype.name}"

        operands = "; ".join(operand(t) for t in op.inputs)
        message = f"{cause} in {op.describe()}" + (f". Operands: {operands}" if operands else "")
        if isinstance(cause, DTypeInferenceError):
            return errors.DTypeError(message, op)
        return errors.ShapeError(message, op)

    # -- lookup -----------------------------------------------------------------------------
    def get_operations(self) -> List[Operation]:
        return list(self._ops)

    def get_operation_by_name(self, name: str) -> Operation:
        if not isinstance(name, str):
            raise TypeError(f"Operation names are strings, got {type(name).__name__}")
        try:
            return self._ops_by_name[name]
        except KeyError:
            raise errors.FetchNotFoundError(
                f"The name '{name}' refers to an Operation not in the graph."
                + self._did_you_mean(name)) from None

    def get_tensor_by_name(self, name: str) -> Tensor:
        if not isinstance(name, str):
            raise TypeError(f"Tensor names are strings, got {type(name).__name__}")
        op_name, sep, index = name.rpartition(":")
        if not sep or not index.isdigit():
            raise ValueError(
                f"The name '{name}' looks like an (invalid) Operation name, not a Tensor. "
                f"Tensor names must be of the form \"<op_name>:<output_index>\".")
        op = self._ops_by_name.get(op_name)
        if op is None:
            raise errors.FetchNotFoundError(
                f"The name '{name}' refers to a Tensor which does not exist. The operation, "
                f"'{op_name}', does not exist in the graph." + self._did_you_mean(op_name))
        if int(index) >= len(op.outputs):
            raise errors.FetchNotFoundError(
                f"The name '{name}' refers to a Tensor which does not exist: operation "
                f"'{op_name}' has {len(op.outputs)} output(s).")
        return op.outputs[int(index)]

    def as_graph_element(self, obj, allow_tensor: bool = True, allow_operation: bool = True):
        """Resolves a Tensor, Operation, Variable or name string to this graph's element."""
        if hasattr(obj, "_as_graph_element"):
            obj = obj._as_graph_element()
        if isinstance(obj, str):
            if ":" in obj and allow_tensor:
                return self.get_tensor_by_name(obj)
            if allow_operation:
                return self.get_operation_by_name(obj)
            return self.get_tensor_by_name(obj)
        if isinstance(obj, Tensor) and allow_tensor:
            if obj.graph is not self:
                raise ValueError(f"Tensor {obj.describe()} is not an element of this graph.")
            return obj
        if isinstance(obj, Operation) and allow_operation:
            if obj.graph is not self:
                raise ValueError(f"Operation {obj.describe()} is not an element of this graph.")
            return obj
        raise TypeError(f"Can not convert a {type(obj).__name__} into a "
                        f"{'Tensor or Operation' if allow_operation else 'Tensor'}.")

    def _did_you_mean(self, name: str) -> str:
        import difflib
        close = difflib.get_close_matches(name, list(self._ops_by_name), n=3)
        return f" Did you mean: {', '.join(repr(c) for c in close)}?" if close else ""

    # -- collections ------------------------------------------------------------------------
    def add_to_collection(self, name: str, value: Any) -> None:
        self._collections.setdefault(name, []).append(value)

    def add_to_collections(self, names, value: Any) -> None:
        for name in ([names] if isinstance(names, str) else names):
            self.add_to_collection(name, value)

    def get_collection(self, name: str, scope: Optional[str] = None) -> list:
        items = list(self._collections.get(name, []))
        if scope is None:
            return items
        pattern = re.compile(scope)
        return [v for v in items if pattern.match(getattr(v, "name", ""))]

    def get_collection_ref(self, name: str) -> list:
        return self._collections.setdefault(name, [])

    def get_all_collection_keys(self) -> List[str]:
        return [k for k, v in self._collections.items() if v]

    def clear_collection(self, name: str) -> None:
        self._collections.pop(name, None)


# A forked child has only the thread that forked: a graph lock another thread held at the
# fork (adding an op) would stay held for ever. The child gives every live graph a new one.
_live_graphs: "weakref.WeakSet[Graph]" = weakref.WeakSet()


def _new_locks_in_child() -> None:
    for graph in list(_live_graphs):
        graph._lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_locks_in_child)


# -- the default graph ------------------------------------------------------------------------
_default_graph = Graph()
_thread_local = threading.local()


def _graph_stack() -> List[Graph]:
    if not hasattr(_thread_local, "stack"):
        _thread_local.stack = []
    return _thread_local.stack


def get_default_graph() -> Graph:
    stack = _graph_stack()
    return stack[-1] if stack else _default_graph


def reset_default_graph() -> None:
    global _default_graph
    if _graph_stack():
        raise AssertionError("Do not use tf.reset_default_graph() inside a "
                             "`with graph.as_default():` block.")
    _default_graph = Graph()


def name_scope(name: Optional[str], default_name: Optional[str] = None, values=None):
    """`tf.name_scope(name)`; `default_name` is used when `name` is None (TF1 signature)."""
    return get_default_graph().name_scope(name if name is not None else default_name)


def control_dependencies(control_inputs):
    return get_default_graph().control_dependencies(control_inputs)


def add_to_collection(name: str, value: Any) -> None:
    get_default_graph().add_to_collection(name, value)


def get_collection(name: str, scope: Optional[str] = None) -> list:
    return get_default_graph().get_collection(name, scope)


def get_collection_ref(name: str) -> list:
    return get_default_graph().get_collection_ref(name)


def device(name) -> contextlib.AbstractContextManager:
    return get_default_graph().device(name)



# Build-time folding of small constant expressions gives shape rules the values they need
# (e.g. `reshape(x, tf.stack([n, 784]))`), like TF1's constant_value. Bounded in size.
_FOLD_MAX_ELEMENTS = 1024


def _fold_small_constants(op: Operation, input_specs: Sequence[TensorSpec],
                          specs: Sequence[TensorSpec]) -> Sequence[TensorSpec]:
    op_def = op.op_def
    if (op_def.stateful or op_def.kernel is None or not input_specs
            or any(s.value is None or s.value.size > _FOLD_MAX_ELEMENTS for s in input_specs)
            or any(s.value is not None for s in specs)):
        return specs
    try:
        with np.errstate(all="ignore"):
            values = op_def.kernel(*[s.value for s in input_specs], **op.attrs)
    except Exception:  # the run will report it with full context
        return specs
    if not isinstance(values, tuple):
        values = (values,)
    folded = []
    for spec, value in zip(specs, values):
        value = np.asarray(value)
        if value.size > _FOLD_MAX_ELEMENTS or value.dtype != spec.dtype.np_dtype:
            folded.append(spec)
        else:
            folded.append(TensorSpec(spec.dtype, spec.shape, value))
    return folded
