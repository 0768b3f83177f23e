"""Gradients the user writes: `tf.custom_gradient` and `Graph.gradient_override_map` with
`tf.RegisterGradient`.

Both end as one IR construct, a `custom_gradient` instruction whose region is the user's
gradient function, traced once into a graph of its own (as a tf.cond branch is):

    %r = custom_gradient %y, %x, %captured... {n_outputs=1, n_inputs=1} {
      ^(%dy: f32[3], %captured_1: f32[3]):   ...   yield %dx
    }

Its results are its first `n_outputs` operands (the forward values, unchanged). Its gradient
rule inlines the region on the results' cotangents: that is the gradient of the `n_inputs`
operands that follow; the forward values get none, so autodiff does not look into how they
were computed (which may be a py_func, or ops with no rule at all). The autodiff pass,
first in every pipeline, replaces each `custom_gradient` with its forward values once the
gradients are built, so no later pass or backend sees one.

  - `tf.custom_gradient(f)`: `f(*xs)` returns `(y, grad_fn)`; `grad_fn(*dys)` returns one
    gradient per x. The op `CustomGradient(ys, xs, captured)` stands for y.
  - `with g.gradient_override_map({"PyFunc": "MyGrad"})`: ops of that type created inside
    get the gradient registered as "MyGrad" with `tf.RegisterGradient("MyGrad")`, called
    as TF1 does, `fn(op, *output_grads)` -> one gradient per op input. It is traced when
    `tf.gradients` first meets the op; the lowering wraps the op's outputs in a
    `custom_gradient` over its inputs.
"""
from __future__ import annotations

import functools
import inspect
from typing import Callable, Dict, List, Optional, Sequence

from flowjit import errors
from flowjit.graph.core import Operation, Tensor
from flowjit.graph.registry import ShapeInferenceError, TensorSpec, register_gradient, \
    register_op
from flowjit.ir.core import CUSTOM_GRADIENT, inline
from flowjit.ops.base import apply_op, convert_to_tensor

# Gradient functions registered by name (tf.RegisterGradient), as TF1's gradient registry.
_USER_GRADIENTS: Dict[str, Optional[Callable]] = {}


class RegisterGradient:
    """`@tf.RegisterGradient("Name")` on `fn(op, *grads)`: the gradient `Name` that
    `gradient_override_map` assigns to op types."""

    def __init__(self, op_type: str) -> None:
        if not isinstance(op_type, str):
            raise TypeError("RegisterGradient takes the gradient's name as a string")
        self._op_type = op_type

    def __call__(self, fn: Callable) -> Callable:
        if self._op_type in _USER_GRADIENTS:
            raise KeyError(f"Registering two gradient with name '{self._op_type}'! "
                           f"(Previous registration was {_USER_GRADIENTS[self._op_type]!r})")
        _USER_GRADIENTS[self._op_type] = fn
        return fn


def no_gradient(op_type: str) -> None:
    """`tf.no_gradient` / `tf.NotDifferentiable`: the named gradient gives None for every
    input (use it through gradient_override_map)."""
    if op_type in _USER_GRADIENTS:
        raise KeyError(f"Registering two gradient with name '{op_type}'!")
    _USER_GRADIENTS[op_type] = None


# Gradient names that mean a built-in rule: straight-through estimators override `Sign`,
# `Round` or `Floor` with "Identity".
_BUILTIN = {"Identity": lambda op, *grads: list(grads),
            "StopGradient": lambda op, *grads: [None] * len(op.inputs)}


# -- the op --------------------------------------------------------------------------------------
def _custom_gradient_infer(inputs, *, grad, n_outputs, n_inputs):
    if n_outputs + n_inputs > len(inputs):
        raise ShapeInferenceError(f"custom_gradient has {len(inputs)} operands, fewer than "
                                  f"its {n_outputs} outputs and {n_inputs} inputs")
    return [TensorSpec(t.dtype, t.shape) for t in inputs[:n_outputs]]


def _custom_gradient_kernel(*inputs, grad, n_outputs, n_inputs):
    outputs = inputs[:n_outputs]
    return outputs[0] if n_outputs == 1 else tuple(outputs)


register_op("CustomGradient", CUSTOM_GRADIENT, _custom_gradient_infer,
            _custom_gradient_kernel, role="region")


@register_gradient("CustomGradient")
def _custom_gradient_rule(b, instr, grads):
    """The region on the results' cotangents (zeros for results with none)."""
    k, m = instr.attrs["n_outputs"], instr.attrs["n_inputs"]
    seeds = [g if g is not None else b.zeros_like(y) for g, y in zip(grads, instr.results)]
    body, input_grads = inline(instr.regions[0], seeds + instr.operands[k + m:])
    b.instrs.extend(body)
    return [None] * k + input_grads + [None] * (len(instr.operands) - k - m)


# -- tracing a gradient function -------------------------------------------------------------
def trace_gradient(fn: Callable, outputs: Sequence[Tensor], inputs: Sequence[Tensor],
                   scope: str, what: str):
    """`fn(*output_grads)` traced into a function graph, its Nones made zeros: the graph
    and the outer tensors it captured."""
    from flowjit.ops.function_graph import register_function, trace
    from flowjit.ops.creation import zeros_like

    def one_per_input(*grads):
        result = fn(*grads)
        grads_out = list(result) if isinstance(result, (list, tuple)) else [result]
        if len(grads_out) != len(inputs):
            raise errors.StructureError(f"the gradient function of {what} returned "
                                        f"{len(grads_out)} gradients for {len(inputs)} inputs")
        return [zeros_like(x) if g is None else g for g, x in zip(grads_out, inputs)]

    fn_graph, _ = trace(one_per_input, scope, f"gradient function of {what}",
                        [(t.dtype, t.shape) for t in outputs], [None] * len(outputs))
    for x, g in zip(inputs, fn_graph.outputs):
        if g.dtype is not x.dtype:
            raise errors.DTypeError(f"the gradient function of {what} returned a "
                                    f"{g.dtype.name} gradient for the {x.dtype.name} input "
                                    f"{x.describe()}")
    root = outputs[0].graph
    token = register_function(root, fn_graph, "grad")
    return token, fn_graph, list(fn_graph.captures)


# -- tf.custom_gradient ------------------------------------------------------------------------
def custom_gradient(f: Optional[Callable] = None):
    """`@tf.custom_gradient`: `f(*xs)` returns `(y, grad_fn)`, `y` a tensor or a nested
    structure of them, `grad_fn(*dys)` one gradient (or None) per x. The gradient of `y`
    is `grad_fn`'s, whatever `f` computed it with."""
    if f is None:
        return custom_gradient

    @functools.wraps(f)
    def decorated(*args, **kwargs):
        from flowjit.ops.function_graph import flatten, pack_as
        from flowjit.graph.core import get_default_graph
        xs = [convert_to_tensor(a) for a in args]
        result, grad_fn = f(*xs, **kwargs)
        if not callable(grad_fn):
            raise TypeError(f"tf.custom_gradient: {f.__name__} must return (outputs, "
                            f"grad_fn), got {type(grad_fn).__name__} as grad_fn")
        if "variables" in inspect.signature(grad_fn).parameters:
            raise errors.UnimplementedError(
                f"tf.custom_gradient: {f.__name__}'s grad_fn takes `variables`; gradients "
                f"for variables read inside a custom_gradient function are not supported")
        ys = [convert_to_tensor(y) for y in flatten(result)]
        variables = _variables_read(ys, xs)
        if variables:  # (TF1 asks grad_fn for their gradients: flowjit cannot pass them)
            raise errors.UnimplementedError(
                f"tf.custom_gradient: {f.__name__} reads the variable(s) "
                f"{', '.join(repr(v.op.name) for v in variables)}; gradients for variables "
                f"used inside a custom_gradient function (grad_fn's `variables` argument) are "
                f"not supported: pass them as arguments of {f.__name__}")
        graph = get_default_graph()
        with graph.name_scope(f.__name__ if f.__name__.isidentifier() else
                              "custom_gradient") as scope:
            token, _, captured = trace_gradient(grad_fn, ys, xs, scope, f"'{f.__name__}'")
            attrs = {"grad": token, "n_outputs": len(ys), "n_inputs": len(xs)}
            outputs = apply_op("CustomGradient", ys + xs + captured, attrs,
                               name="CustomGradient")
        outputs = list(outputs) if isinstance(outputs, tuple) else [outputs]
        return pack_as(result, outputs)
    return decorated


def _variables_read(ys: Sequence[Tensor], xs: Sequence[Tensor]) -> List[Tensor]:
    """The variables (VariableV2 outputs) the ys are computed from, not looking past the
    xs."""
    from flowjit.ops.gradients import _inputs_first
    stop = set(xs)
    upstream = _inputs_first(ys, lambda t: () if t in stop else t.op.inputs)
    return [t for t in upstream if t.op.type == "VariableV2"]


# -- gradient_override_map ------------------------------------------------------------------
def lowered_gradient(op: Operation) -> Optional[str]:
    """`overridden_gradient` for the lowering, which wraps every op under an override it
    can resolve (ops in cond branches and loop bodies too, which tf.gradients does not
    visit); an unregistered name is tf.gradients' error to raise, when it needs one."""
    if op._gradient_override is None or (op._gradient_token is None and
                                         op._gradient_override not in _USER_GRADIENTS and
                                         op._gradient_override not in _BUILTIN):
        return None
    return overridden_gradient(op)


def overridden_gradient(op: Operation) -> Optional[str]:
    """The token of `op`'s overriding gradient function, traced now if need be; None when
    no override applies to `op`."""
    name = op._gradient_override
    if name is None:
        return None
    if op._gradient_token is None:
        if name in _USER_GRADIENTS:
            fn = _USER_GRADIENTS[name]
            if fn is None:
                fn = _BUILTIN["StopGradient"]
        elif name in _BUILTIN:
            fn = _BUILTIN[name]
        else:
            raise LookupError(f"No gradient defined for operation '{op.name}' (op type: "
                              f"{op.type}): gradient_override_map names the gradient "
                              f"'{name}', which tf.RegisterGradient has not registered")
        with op.graph.as_default(), op.graph.name_scope(f"gradients/{op.name}_grad") as scope:
            token, fn_graph, captured = trace_gradient(
                lambda *grads: fn(op, *grads), list(op.outputs), list(op.inputs), scope,
                f"{op.describe()} (registered as '{name}')")
        foreign = [t for t in captured if t not in op.inputs and t not in op.outputs]
        if foreign:
            raise errors.UnimplementedError(
                f"the gradient '{name}' of {op.describe()} reads {foreign[0].describe()}; an "
                f"overriding gradient may read only the op's inputs and outputs (use "
                f"tf.custom_gradient to capture other tensors)")
        op._gradient_token = token
    return op._gradient_token


def custom_gradient_operands(op: Operation) -> List[Tensor]:
    """The operands of the `custom_gradient` wrapping an overridden op: its outputs, its
    inputs, then what its gradient function captured."""
    from flowjit.ops.function_graph import function_of
    fn_graph = function_of(op, op._gradient_token)
    return list(op.outputs) + list(op.inputs) + list(fn_graph.captures)


def gradient_inputs(op: Operation) -> Sequence[Tensor]:
    """What gradients flow to from `op`'s outputs: a CustomGradient's xs only."""
    if op.type == "CustomGradient":
        k, m = op.attrs["n_outputs"], op.attrs["n_inputs"]
        return op.inputs[k:k + m]
    return op.inputs
