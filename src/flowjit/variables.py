"""Variables: `tf.Variable`, `tf.get_variable`, `tf.variable_scope`, and the initializer ops.

A Variable is a `VariableV2` op (its output, 'w:0', is how the graph reads it) plus an
`Assign` op that gives it its initial value. Values live in each Session, not in the graph.
"""
from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterator, List, Optional

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import GraphKeys, Operation, Tensor, get_default_graph
from flowjit.graph.shape import TensorShape, as_shape
from flowjit.ops import overloads, state
from flowjit.ops.base import apply_op, convert_to_tensor


class Variable:
    """TF1 `tf.Variable(initial_value, trainable=True, name=None, dtype=None, ...)`."""

    def __init__(self, initial_value=None, trainable: bool = True, collections=None,
                 validate_shape: bool = True, caching_device=None, name: Optional[str] = None,
                 variable_def=None, dtype=None, expected_shape=None, import_scope=None,
                 constraint=None, use_resource=None, synchronization=None,
                 aggregation=None, shape=None) -> None:
        if initial_value is None:
            raise ValueError("initial_value must be specified.")
        graph = get_default_graph()
        if graph._building_function:  # in a tf.cond branch or a loop body: TF1's init_scope
            scope = graph.get_name_scope()  # (a variable and its initializer are the program's)
            with graph.root.as_default(), graph.root.name_scope(scope + "/" if scope else ""), \
                    graph.root.control_dependencies(None):
                self.__init__(initial_value, trainable, collections, validate_shape,
                              caching_device, name, variable_def, dtype, expected_shape,
                              import_scope, constraint, use_resource, synchronization,
                              aggregation, shape)
            return
        dtype = dtypes.as_dtype(dtype) if dtype is not None else None
        with graph.name_scope(name or "Variable") as scope:
            if callable(initial_value):
                initial_value = initial_value()
            init = _initial_value_tensor(initial_value, dtype)
            var_shape = as_shape(shape) if shape is not None else init.shape
            if validate_shape and not var_shape.is_fully_defined():
                raise errors.ShapeError(
                    f"The initial value of Variable '{scope[:-1]}' must have a fully known "
                    f"shape, got {init.shape}. Pass validate_shape=False or a shape.")
            self._variable = apply_op("VariableV2", [], {"shape": var_shape, "dtype": init.dtype},
                                      name=scope)
            self._initial_value = init
            with graph.control_dependencies(None):
                self._initializer_op = state.assign(self._variable, init, name="Assign",
                                                    validate_shape=validate_shape).op
        self.trainable = trainable
        self.constraint = constraint
        if collections is None:
            collections = [GraphKeys.GLOBAL_VARIABLES]
        if trainable and GraphKeys.TRAINABLE_VARIABLES not in collections:
            collections = list(collections) + [GraphKeys.TRAINABLE_VARIABLES]
        graph.add_to_collections(collections, self)
        _VARIABLE_OF_OP[self._variable.op] = self

    @classmethod
    def _from_graph(cls, variable: Tensor, initializer: Operation,
                    initial_value: Optional[Tensor], trainable: bool) -> "Variable":
        """The Variable of ops already in the graph (`import_meta_graph`); adds it to no
        collection. One object per variable op."""
        existing = _VARIABLE_OF_OP.get(variable.op)
        if existing is not None:
            return existing
        self = cls.__new__(cls)
        self._variable = variable
        self._initializer_op = initializer
        self._initial_value = initial_value
        self.trainable = trainable
        self.constraint = None
        _VARIABLE_OF_OP[variable.op] = self
        return self

    # -- TF1 surface ----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._variable.name

    @property
    def op(self) -> Operation:
        return self._variable.op

    @property
    def graph(self):
        return self._variable.graph

    @property
    def dtype(self) -> dtypes.DType:
        return self._variable.dtype

    @property
    def shape(self) -> TensorShape:
        return self._variable.shape

    def get_shape(self) -> TensorShape:
        return self._variable.shape

    @property
    def initializer(self) -> Operation:
        return self._initializer_op

    @property
    def initial_value(self) -> Tensor:
        return self._initial_value

    @property
    def device(self) -> str:
        return ""

    def initialized_value(self) -> Tensor:
        """The value, after initializing this variable if needed (TF1 semantics, for
        initial values of other variables)."""
        from flowjit.ops.array import identity
        with self.graph.control_dependencies([self._initializer_op]):
            return identity(self._variable)

    def value(self) -> Tensor:
        return self._variable

    def read_value(self) -> Tensor:
        from flowjit.ops.array import identity
        return identity(self._variable, name="read")

    def _as_graph_element(self) -> Tensor:
        return self._variable

    def assign(self, value, use_locking=False, name=None, read_value=True):
        return state.assign(self, value, name=name)

    def assign_add(self, delta, use_locking=False, name=None, read_value=True):
        return state.assign_add(self, delta, name=name)

    def assign_sub(self, delta, use_locking=False, name=None, read_value=True):
        return state.assign_sub(self, delta, name=name)

    def eval(self, session=None):
        return self._variable.eval(session=session)

    def load(self, value, session=None) -> None:
        """Writes `value` into this variable in `session` without adding graph ops."""
        from flowjit.graph.session import _session_for_eval
        _session_for_eval(session, self.graph).load_variable(self, value)

    def __repr__(self) -> str:
        return (f"<tf.Variable '{self.name}' shape={self.shape} "
                f"dtype={self.dtype.name}_ref>")

    __hash__ = object.__hash__

    def __bool__(self):
        raise TypeError("Using a flowjit Variable as a Python bool is not allowed.")

    def __iter__(self):
        raise TypeError(f"Variable '{self.name}' is not iterable.")


overloads.install(Variable)
_VARIABLE_OF_OP: "Dict[Operation, Variable]" = {}

RefVariable = Variable


def variable_of(op: Operation) -> Optional[Variable]:
    """The Variable object a `VariableV2` op belongs to."""
    return _VARIABLE_OF_OP.get(op)


def _initial_value_tensor(value: Any, dtype: Optional[dtypes.DType]) -> Tensor:
    if isinstance(value, Variable):
        value = value.initialized_value()
    tensor = convert_to_tensor(value, dtype_hint=dtype)
    if dtype is not None and tensor.dtype is not dtype:
        if tensor.op.type == "Const":
            return convert_to_tensor(tensor._value.astype(dtype.np_dtype), name="initial_value")
        from flowjit.ops.math import cast
        return cast(tensor, dtype)
    return tensor


# -- collections and initializers ------------------------------------------------------------
def global_variables(scope: Optional[str] = None) -> List[Variable]:
    return get_default_graph().get_collection(GraphKeys.GLOBAL_VARIABLES, scope)


all_variables = global_variables


def trainable_variables(scope: Optional[str] = None) -> List[Variable]:
    return get_default_graph().get_collection(GraphKeys.TRAINABLE_VARIABLES, scope)


def local_variables(scope: Optional[str] = None) -> List[Variable]:
    return get_default_graph().get_collection(GraphKeys.LOCAL_VARIABLES, scope)


def model_variables(scope: Optional[str] = None) -> List[Variable]:
    return get_default_graph().get_collection(GraphKeys.MODEL_VARIABLES, scope)


def variables_initializer(var_list, name: str = "init") -> Operation:
    return state.group(*[v.initializer for v in var_list], name=name)


def global_variables_initializer() -> Operation:
    return variables_initializer(global_variables(), name="init")


initialize_all_variables = global_variables_initializer


def local_variables_initializer() -> Operation:
    return variables_initializer(local_variables(), name="init_1"
                                 if get_default_graph()._ops_by_name.get("init") else "init")


def report_uninitialized_variables(var_list=None, name="report_uninitialized_variables"):
    """A 1-D string tensor with the names of the variables not yet initialized in the
    Session that runs it (TF1 semantics)."""
    var_list = list(global_variables() if var_list is None else var_list)
    names = tuple(v.op.name for v in var_list)
    return apply_op("ReportUninitializedVariables", [], {"variables": names}, name=name)


def is_variable_initialized(variable, name=None):
    return apply_op("IsVariableInitialized", [], {"variables": (variable.op.name,)},
                    name=name, default_name="IsVariableInitialized")


def assert_variables_initialized(var_list=None):
    return state.no_op(name="assert_variables_initialized")


# -- get_variable and variable_scope ---------------------------------------------------------
class VariableScope:
    """TF1 variable scope: a name prefix, a reuse flag and default initializer/dtype."""

    def __init__(self, name: str, reuse: Any = False, initializer=None, dtype=None,
                 regularizer=None) -> None:
        self.name = name
        self.reuse = reuse
        self.initializer = initializer
        self.regularizer = regularizer
        self.dtype = dtypes.as_dtype(dtype) if dtype is not None else dtypes.float32

    @property
    def original_name_scope(self) -> str:
        return self.name + "/" if self.name else ""

    def reuse_variables(self) -> None:
        self.reuse = True


AUTO_REUSE = "AUTO_REUSE"


def _scope_stack() -> List[VariableScope]:
    graph = get_default_graph()
    return graph._variable_scopes.setdefault("stack", [VariableScope("")])


def _store() -> Dict[str, Variable]:
    return get_default_graph()._variable_scopes.setdefault("store", {})


def get_variable_scope() -> VariableScope:
    return _scope_stack()[-1]


@contextlib.contextmanager
def variable_scope(name_or_scope, default_name=None, values=None, initializer=None,
                   regularizer=None, caching_device=None, partitioner=None,
                   custom_getter=None, reuse=None, dtype=None, use_resource=None,
                   constraint=None, auxiliary_name_scope=True) -> Iterator[VariableScope]:
    """Scopes `get_variable` names ('layer1/weights') and opens a matching name_scope."""
    stack = _scope_stack()
    parent = stack[-1]
    if isinstance(name_or_scope, VariableScope):
        full_name = name_or_scope.name
        base = name_or_scope
    else:
        name = name_or_scope if name_or_scope is not None else default_name
        if name is None:
            raise ValueError("variable_scope needs a name or a default_name")
        if name_or_scope is None:  # default_name is uniquified, as in TF1
            used = get_default_graph()._variable_scopes.setdefault("used", {})
            prefix = f"{parent.name}/{name}" if parent.name else name
            count = used.get(prefix, 0)
            used[prefix] = count + 1
            name = name if count == 0 else f"{name}_{count}"
        full_name = f"{parent.name}/{name}" if parent.name else name
        base = parent
    inherited_reuse = True if parent.reuse is True else base.reuse
    scope = VariableScope(full_name,
                          reuse=reuse if reuse is not None else inherited_reuse,
                          initializer=initializer or base.initializer,
                          dtype=dtype or base.dtype,
                          regularizer=regularizer or base.regularizer)
    stack.append(scope)
    graph = get_default_graph()
    try:
        if auxiliary_name_scope:
            with graph.name_scope(full_name.split("/")[-1] if not isinstance(
                    name_or_scope, VariableScope) else full_name + "/"):
                yield scope
        else:
            yield scope
    finally:
        stack.pop()


def get_variable(name: str, shape=None, dtype=None, initializer=None, regularizer=None,
                 trainable: bool = True, collections=None, caching_device=None,
                 partitioner=None, validate_shape: bool = True, use_resource=None,
                 custom_getter=None, constraint=None, **_kwargs) -> Variable:
    """Creates or (under reuse) returns the variable '<scope>/<name>'."""
    from flowjit import initializers as init_ops
    scope = get_variable_scope()
    full_name = f"{scope.name}/{name}" if scope.name else name
    store = _store()
    if full_name in store:
        if scope.reuse is False or scope.reuse is None:
            existing = store[full_name]
            raise ValueError(f"Variable {full_name} already exists, disallowed. Did you mean to "
                             f"set reuse=True or reuse=tf.AUTO_REUSE in VarScope? Originally "
                             f"defined at: {existing.op.site}")
        var = store[full_name]
        if shape is not None and not var.shape.is_compatible_with(as_shape(shape)):
            raise ValueError(f"Trying to share variable {full_name}, but specified shape "
                             f"{as_shape(shape)} and found shape {var.shape}.")
        return var
    if scope.reuse is True:
        raise ValueError(f"Variable {full_name} does not exist, or was not created with "
                         f"tf.get_variable(). Did you mean to set reuse=tf.AUTO_REUSE in "
                         f"VarScope?")
    dtype = dtypes.as_dtype(dtype) if dtype is not None else None
    initializer = initializer if initializer is not None else scope.initializer
    if initializer is None:
        initial = init_ops.glorot_uniform_initializer()
    elif isinstance(initializer, type):  # TF1 accepts the class itself: zeros_initializer
        initial = initializer(dtype=dtype or scope.dtype)
    else:
        initial = initializer
    if callable(initial) and not isinstance(initial, (Tensor, Variable)):
        if shape is None:
            raise ValueError(f"The shape of Variable {full_name} must be given when its "
                             f"initializer is a function")
        shape_list = as_shape(shape).as_list()
        var_dtype = dtype or scope.dtype
        value = lambda: initial(shape_list, dtype=var_dtype)  # noqa: E731
        var = _make_variable(value, full_name, var_dtype, trainable, collections,
                             validate_shape)
    else:
        value = np.asarray(initial) if not isinstance(initial, (Tensor, Variable)) else initial
        if shape is not None and hasattr(value, "shape") and \
                not as_shape(shape).is_compatible_with(as_shape(list(np.shape(value))
                                                                if not isinstance(value, Tensor)
                                                                else value.shape)):
            raise ValueError(f"Shape of the initial value of {full_name} does not match the "
                             f"given shape {as_shape(shape)}")
        var = _make_variable(initial, full_name, dtype, trainable, collections, validate_shape)
    store[full_name] = var
    _regularize(var, full_name, regularizer if regularizer is not None else scope.regularizer)
    return var


def _regularize(var: Variable, full_name: str, regularizer) -> None:
    """Adds regularizer(var) to REGULARIZATION_LOSSES, as TF1's get_variable does."""
    if regularizer is None:
        return
    graph = get_default_graph()
    with graph.name_scope(None), graph.name_scope(full_name + "/Regularizer/"):
        loss = regularizer(var)
    if loss is not None:
        graph.add_to_collection(GraphKeys.REGULARIZATION_LOSSES, loss)


def _make_variable(initial, full_name, dtype, trainable, collections, validate_shape):
    # The variable's ops are named from the root: '<scope>/<name>' exactly, as in TF1.
    graph = get_default_graph()
    with graph.name_scope(None):
        return Variable(initial, trainable=trainable, name=full_name + "/", dtype=dtype,
                        collections=collections, validate_shape=validate_shape)
