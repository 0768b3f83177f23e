"""Shapes given as tensors (`tf.reshape(x, [tf.shape(x)[0], -1])`, `tf.zeros(tf.shape(y))`).

An op whose shape-like arguments (a reshape's shape, a slice's begin and size, a random op's
shape, a range's bounds) are known when the graph is built takes them as attributes. When one
is a tensor computed at run time, the op is built in its *dynamic form*: a separate graph op
type that takes those arguments as extra operands, after its data operands.

 - At graph build, the dynamic form's static shape is as much as can be known: TF1's
   `constant_value_as_shape` (`partial_value` below) reads the dims a shape tensor is made of
   (`tf.shape` of partially known shapes, packed scalars, constants), unknown dims stay None.
 - A Session compiles per feed signature, so when the graph is lowered every shape is
   concrete: shape/size/rank queries fold to constants and the lowering computes the values
   of small constant expressions on them (`lower.py`). The dynamic form's value operands are
   then known, and it is lowered to the static op, attributes filled in: the IR never holds a
   dynamic form, and every instruction has a concrete shape.
 - A value operand that depends on data, not only on feed shapes (`tf.reshape(x,
   tf.reduce_max(n))`, a fed shape), is not known when lowering: that is an
   `InvalidArgumentError` naming the op and the tensor it depends on (flowjit compiles fixed
   shapes per feed signature; shapes computed from data are not supported).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import Tensor
from flowjit.graph.registry import (ShapeInferenceError, TensorSpec, get_op_def,
                                    register_op)
from flowjit.graph.shape import TensorShape
from flowjit.ops.base import convert_to_tensor, is_tensor_like, static_int_list

SHAPE_DTYPES = (dtypes.int32, dtypes.int64)

# A partial value: for a 1-D shape tensor a tuple of ints and Nones (None: not known until
# the run) or None if even its length is unknown; for a scalar an int/float or None.
Partial = Any


@dataclass(frozen=True)
class DynamicForm:
    """How the dynamic form `type` of the static op `static` lowers.

    data_arity: how many leading operands are the static op's own operands;
    attrs: the attribute each further operand gives, in order;
    convert(name, value) -> the attribute value (raises ValueError if it is invalid);
    partial(data_specs, known, **other_attrs) -> output specs from partial values."""

    type: str
    static: str
    data_arity: int
    attrs: Tuple[str, ...]
    convert: Callable[[str, np.ndarray], Any]
    partial: Callable[..., Sequence[TensorSpec]]

    def static_attrs(self, values: Sequence[np.ndarray], attrs: Dict[str, Any]) -> Dict[str, Any]:
        """The static op's attributes, given the value operands' values."""
        out = {k: v for k, v in attrs.items() if k != "known"}
        for name, value in zip(self.attrs, values):
            out[name] = self.convert(name, np.asarray(value))
        return out


DYNAMIC_FORMS: Dict[str, DynamicForm] = {}


def register_dynamic_form(static: str, data_arity: int, attrs: Tuple[str, ...],
                          convert: Callable[[str, np.ndarray], Any],
                          partial: Callable[..., Sequence[TensorSpec]]) -> DynamicForm:
    """Registers `Dynamic<static>`, the form of op `static` whose `attrs` are operands."""
    form = DynamicForm(f"Dynamic{static}", static, data_arity, attrs, convert, partial)
    static_def = get_op_def(static)

    def infer(inputs, **attrs_):
        data, values = inputs[:data_arity], inputs[data_arity:]
        for name, spec in zip(attrs, values):
            if spec.dtype not in SHAPE_DTYPES + (dtypes.float32, dtypes.float64):
                raise ShapeInferenceError(f"{name} must be an integer tensor, got dtype "
                                          f"{spec.dtype.name}")
        if all(v.value is not None for v in values):
            try:
                static_attrs = form.static_attrs([v.value for v in values], attrs_)
            except ValueError as e:
                raise ShapeInferenceError(str(e)) from None
            return static_def.infer(data, **static_attrs)
        others = {k: v for k, v in attrs_.items() if k != "known"}
        return partial(data, attrs_["known"], **others)

    def kernel(*inputs, **attrs_):
        return static_def.kernel(*inputs[:data_arity], **form.static_attrs(
            inputs[data_arity:], attrs_))

    op_def = register_op(form.type, f"{static_def.mnemonic}_dynamic", infer, kernel,
                         stateful=static_def.stateful, uses_rng=static_def.uses_rng)

    def grad(b, instr, grads):  # (the IR holds the static op; graph checks look here)
        rule = get_op_def(static).grad
        if rule is None:
            raise LookupError(f"No gradient defined for {static}")
        return rule(b, instr, grads)

    op_def.grad = grad
    DYNAMIC_FORMS[form.type] = form
    return form


# -- conversions of value operands to attributes ------------------------------------------------
def int_tuple(name: str, value: np.ndarray, minimum: int = 0) -> Tuple[int, ...]:
    """A shape-like attribute: ints >= `minimum` (-1 allowed where minimum is -1)."""
    if value.ndim > 1:
        raise ValueError(f"{name} must be a vector, got a value of shape {list(value.shape)}")
    ints = tuple(int(v) for v in value.reshape(-1))
    bad = [v for v in ints if v < minimum]
    if bad:
        raise ValueError(f"{name} {list(ints)} has the negative entry {bad[0]}")
    return ints


# -- partial values (TF1's constant_value_as_shape) --------------------------------------------
def partial_value(tensor: Tensor) -> Partial:
    """What is known of an integer tensor's value at graph build (see `Partial`)."""
    if tensor._value is not None:
        value = tensor._value
        return value.item() if value.ndim == 0 else tuple(v.item() for v in value.reshape(-1))
    op = tensor.op
    rank = tensor.shape.ndims
    if op.type == "Shape":
        dims = op.inputs[0].shape.dims
        return None if dims is None else tuple(dims)
    if op.type in ("Identity", "Cast"):
        return partial_value(op.inputs[0])
    if op.type == "Pack" and rank == 1:
        return tuple(_scalar(partial_value(t)) for t in op.inputs)
    if op.type == "ConcatV2" and rank == 1:
        parts = [partial_value(t) for t in op.inputs]
        if any(p is None for p in parts):
            return None
        return tuple(d for p in parts for d in p)
    if op.type == "StridedSlice":
        source = partial_value(op.inputs[0])
        if isinstance(source, tuple):
            picked = op.op_def.kernel(np.array(source, dtype=object), **op.attrs)
            return picked if picked is None or not isinstance(picked, np.ndarray) \
                else tuple(picked.tolist())
    if rank == 0:
        return None
    if rank == 1 and tensor.shape.dims[0] is not None:
        return (None,) * tensor.shape.dims[0]
    return None


def _scalar(value: Partial) -> Optional[int]:
    return value if isinstance(value, (int, float)) else None


def known_dims(partial: Partial, minus_one_unknown: bool = False) -> TensorShape:
    """A partial shape value as a TensorShape (-1 entries unknown if `minus_one_unknown`)."""
    if partial is None:
        return TensorShape(None)
    return TensorShape(None if d is None or (minus_one_unknown and d == -1) else d
                       for d in partial)


# -- what API functions call ----------------------------------------------------------------------
def shape_argument(value: Any, what: str) -> Tuple[Optional[Tuple[int, ...]],
                                                   Optional[Tensor]]:
    """(ints, None) for a shape argument known at graph build, else (None, an integer
    tensor holding it): Python lists, lists mixing tensors and ints (packed), tensors."""
    if is_tensor_like(value):
        tensor = convert_to_tensor(value)
        if tensor._value is None:
            if tensor.dtype not in SHAPE_DTYPES:
                raise TypeError(f"{what} must be an int32 or int64 tensor, got "
                                f"{tensor.describe()} of dtype {tensor.dtype.name}")
            if tensor.shape.ndims not in (None, 0, 1):
                raise errors.ShapeError(f"{what} must be a vector, got {tensor.describe()} "
                                        f"of shape {tensor.shape}")
            return None, tensor
        value = tensor._value
    return static_int_list(value, what), None


def scalar_argument(value: Any, what: str) -> Tuple[Optional[Any], Optional[Tensor]]:
    """(Python number, None) for a scalar known at graph build, else (None, its tensor)."""
    if is_tensor_like(value):
        tensor = convert_to_tensor(value)
        if tensor._value is None:
            if tensor.shape.ndims not in (None, 0):
                raise errors.ShapeError(f"{what} must be a scalar, got {tensor.describe()} "
                                        f"of shape {tensor.shape}")
            return None, tensor
        value = tensor._value
    return np.asarray(value).item(), None


def data_dependent_error(op, form: DynamicForm, index: int) -> errors.InvalidArgumentError:
    """A dynamic form whose value operand depends on data, not only on feed shapes."""
    tensor = op.inputs[form.data_arity + index]
    return errors.InvalidArgumentError(
        f"The {form.attrs[index]} of {op.describe()} is {tensor.describe()}, whose value "
        f"depends on the data of this run, not only on the shapes of the fed values. flowjit "
        f"compiles one executable per feed signature, with every shape known: shapes may be "
        f"computed from tf.shape/tf.size/tf.rank and constants, not from tensor values.", op)
