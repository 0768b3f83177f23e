"""State and control ops: the variable op, assignments, `no_op` and `group`.

Effects follow TF1: inside one run every read of a variable sees its value from before the
run, unless the reading op depends (by data or control edge) on an assignment, in which case
it sees that assignment's result. The executor (and later the IR lowering) implements that;
here the ops only declare what they are.
"""
from __future__ import annotations

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import Operation, Tensor, get_default_graph
from flowjit.graph.registry import ShapeInferenceError, TensorSpec, register_op
from flowjit.graph.shape import TensorShape
from flowjit.ops.base import NUMERIC, apply_op, check_dtype, convert_to_tensor


def _variable_infer(inputs, *, shape, dtype):
    return [TensorSpec(dtype, shape)]


# No kernel: the executor reads the variable's value from the Session's state.
register_op("VariableV2", "variable", _variable_infer, None, stateful=True)


def _assign_infer(inputs, *, validate_shape=True):
    ref, value = inputs
    if value.dtype is not ref.dtype:
        from flowjit.graph.registry import DTypeInferenceError
        raise DTypeInferenceError(f"cannot assign a value of dtype {value.dtype.name} to a "
                                  f"variable of dtype {ref.dtype.name}")
    if validate_shape and not ref.shape.is_compatible_with(value.shape):
        raise ShapeInferenceError(f"cannot assign a value of shape {value.shape} to a variable "
                                  f"of shape {ref.shape}")
    shape = ref.shape if validate_shape else value.shape
    return [TensorSpec(ref.dtype, shape)]


def _update_infer(inputs, *, validate_shape=True):
    """assign_add and assign_sub: arithmetic, so numbers only (as TF1; lowering makes them an
    add or a sub)."""
    check_dtype(inputs[0], NUMERIC, "ref")
    return _assign_infer(inputs, validate_shape=validate_shape)


def _checked(fn, what):
    def kernel(current, value, *, validate_shape=True):
        if validate_shape and current is not None and current.shape != value.shape:
            raise errors.InvalidArgumentError(
                f"{what}: the value has shape {list(value.shape)} but the variable has shape "
                f"{list(current.shape)}")
        return fn(current, value)
    return kernel


# Kernels receive the variable's current value (None if uninitialized, for Assign only).
register_op("Assign", "assign", _assign_infer,
            _checked(lambda cur, v: np.array(v, copy=True), "assign"), assigns_variable=True,
            attr_defaults={"validate_shape": True})
register_op("AssignAdd", "assign_add", _update_infer,
            _checked(lambda cur, v: cur + v, "assign_add"), assigns_variable=True)
register_op("AssignSub", "assign_sub", _update_infer,
            _checked(lambda cur, v: cur - v, "assign_sub"), assigns_variable=True)
register_op("NoOp", "no_op", lambda inputs: [], None)

# Queries of the Session's variable state; answered by the executor (no kernel).
register_op("ReportUninitializedVariables", "report_uninitialized",
            lambda inputs, *, variables: [TensorSpec(dtypes.string, TensorShape([None]))],
            None, stateful=True)
register_op("IsVariableInitialized", "is_initialized",
            lambda inputs, *, variables: [TensorSpec(dtypes.bool_, TensorShape([]))],
            None, stateful=True)


def _variable_tensor(ref) -> Tensor:
    tensor = ref._as_graph_element() if hasattr(ref, "_as_graph_element") else ref
    if not isinstance(tensor, Tensor) or tensor.op.type != "VariableV2":
        raise TypeError(f"assign needs a Variable as its first argument, got {ref!r}")
    return tensor


def _assign(op_type: str, default_name: str, ref, value, name, validate_shape=True):
    var = _variable_tensor(ref)
    value = convert_to_tensor(value, dtype_hint=var.dtype)
    if value.dtype is not var.dtype and value.op.type == "Const":
        value = convert_to_tensor(value._value.astype(var.dtype.np_dtype))
    attrs = {"validate_shape": bool(validate_shape)}
    return apply_op(op_type, [var, value], attrs, name=name, default_name=default_name)


def assign(ref, value, validate_shape=None, use_locking=None, name=None):
    """`tf.assign(ref, value)`: the result is the variable's new value."""
    return _assign("Assign", "Assign", ref, value, name,
                   validate_shape if validate_shape is not None else True)


def assign_add(ref, value, use_locking=None, name=None):
    return _assign("AssignAdd", "AssignAdd", ref, value, name)


def assign_sub(ref, value, use_locking=None, name=None):
    return _assign("AssignSub", "AssignSub", ref, value, name)


def no_op(name=None) -> Operation:
    return get_default_graph().create_op("NoOp", [], name=name, default_name="NoOp")


def group(*inputs, **kwargs) -> Operation:
    """An op that runs all `inputs` (tensors or ops, possibly nested in lists)."""
    name = kwargs.pop("name", None)
    if kwargs:
        raise TypeError(f"Unknown keyword arguments: {sorted(kwargs)}")
    deps = []
    for item in _flatten(inputs):
        element = item._as_graph_element() if hasattr(item, "_as_graph_element") else item
        if isinstance(element, Tensor):
            element = element.op
        if not isinstance(element, Operation):
            raise TypeError(f"group() takes Tensors and Operations, got {item!r}")
        if element not in deps:
            deps.append(element)
    graph = get_default_graph() if not deps or get_default_graph()._building_function \
        else deps[0].graph
    return graph.create_op("NoOp", [], name=name, default_name="group_deps",
                           control_inputs=deps)


def tuple_(tensors, name=None, control_inputs=None):
    """`tf.tuple`: the tensors, each gated on all of them having been computed."""
    tensors = [convert_to_tensor(t) for t in tensors]
    gate = group(*tensors, *(control_inputs or []))
    from flowjit.ops.array import identity
    graph = get_default_graph()
    with graph.control_dependencies([gate]):
        return [identity(t) for t in tensors]


def _flatten(items):
    for item in items:
        if isinstance(item, (list, tuple)):
            yield from _flatten(item)
        elif isinstance(item, dict):
            yield from _flatten(list(item.values()))
        elif item is not None:
            yield item
