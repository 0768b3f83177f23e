"""Lowering: the part of the user's graph one run needs -> a pure SSA Func.

    lower(fetches, targets, feed_types) -> Func

Feeds, the variables read at the start of the run, random-op run counters and Session-state
queries become parameters. Variable assignments become ordinary values (`Assign` is its value,
`AssignAdd` an `add`), resolved with the TF1 read-before-write rule computed by
`graph.plan`; the Func returns the fetches and each assigned variable's final value.

Every instruction's type is recomputed with its op's shape rule from the concrete feed types,
so a Func compiled for one feed signature has fully known shapes. Shape queries of those
types (`tf.shape`, `tf.size`, `tf.rank`) become constants here, and the values of small
constant expressions are tracked (`_Lowering.known`), so that an op given its shape as a
tensor (a dynamic form, ops/shape_values.py) is lowered to the op with that shape as an
attribute.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Optional, Sequence

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import Operation, Tensor
from flowjit.graph.plan import RunPlan, build_plan
from flowjit.graph.registry import ShapeInferenceError, get_op_def, get_op_def_by_mnemonic
from flowjit.ir.core import (COND, CUSTOM_GRADIENT, FEED, FETCH, RNG_COUNTER, VARIABLE, WHILE,
                             Func, Instr, Location, Param, Result, TensorType, Value,
                             infer_results)
from flowjit.ops.custom_gradient import lowered_gradient
from flowjit.ops.shape_values import DYNAMIC_FORMS, data_dependent_error

# Values of at most this many elements are computed while lowering when their operands are
# known (shape arithmetic: `tf.shape(x)[0] * 2`), as the const-fold pass would.
KNOWN_MAX_ELEMENTS = 1024

QUERY = "query"  # a parameter the Session computes from its state (is a variable initialized)


def lower(fetches: Sequence[object], targets: Sequence[Operation] = (),
          feed_types: Optional[Mapping[Tensor, TensorType]] = None,
          variable_types: Optional[Mapping[Operation, TensorType]] = None,
          name: str = "main") -> Func:
    """Lowers the subgraph that `fetches` (tensors or ops) and `targets` need."""
    feed_types = dict(feed_types or {})
    plan = build_plan(list(fetches), list(targets), list(feed_types))
    return lower_plan(plan, feed_types, variable_types or {}, name)


def lower_plan(plan: RunPlan, feed_types: Mapping[Tensor, TensorType],
               variable_types: Mapping[Operation, TensorType], name: str = "main") -> Func:
    return _Lowering(plan, feed_types, variable_types).run(name)


class _Lowering:
    def __init__(self, plan: RunPlan, feed_types, variable_types) -> None:
        self.plan = plan
        self.variable_types = variable_types
        self.env: Dict[Tensor, Value] = {}
        self.params: List[Param] = []
        self.body: List[Instr] = []
        self.variable_params: Dict[Operation, Value] = {}
        self.known: Dict[Value, np.ndarray] = {}  # values computed while lowering
        for tensor in plan.feeds:
            value = Value(feed_types[tensor], tensor.op.name)
            self.params.append(Param(value, FEED, tensor.name))
            self.env[tensor] = value

    def run(self, name: str) -> Func:
        for op in self.plan.ops:
            special = _SPECIAL.get(op.type)
            if special is not None:
                special(self, op)
            elif op.type in DYNAMIC_FORMS:
                self.dynamic_form(op)
            elif op.op_def.assigns_variable:
                self.assignment(op)
            else:
                self.emit(op, op.op_def.mnemonic, self.operands(op))
            if op._gradient_override is not None and lowered_gradient(op) is not None:
                self.override_gradient(op)
        results = []
        for fetch in self.plan.fetches:
            if isinstance(fetch, Tensor):
                if fetch in self.plan.snapshot_fetches and fetch not in self.env:
                    value = self.variable_at_start(fetch.op)
                else:
                    value = self.env[fetch]
                results.append(Result(value, FETCH, fetch.name))
        for var, assign in self.plan.final_writes.items():
            results.append(Result(self.env[assign.outputs[0]], VARIABLE, var.name))
        return Func(name, self.params, self.body, results)

    # -- helpers ------------------------------------------------------------------------------
    def operands(self, op: Operation) -> List[Optional[Value]]:
        values = [self.env.get(t) for t in op.inputs]
        for read in self.plan.reads.get(op, ()):
            if op.type == "Assign" and read.index == 0:
                continue  # overwritten, not read: it may well be uninitialized
            if read.source is not None:
                values[read.index] = self.env[read.source.outputs[0]]
            else:
                values[read.index] = self.variable_at_start(read.variable)
        return values

    def variable_at_start(self, var: Operation) -> Value:
        value = self.variable_params.get(var)
        if value is None:
            value = Value(self.variable_type(var), var.name)
            self.variable_params[var] = value
            self.params.append(Param(value, VARIABLE, var.name))
        return value

    def variable_type(self, var: Operation) -> TensorType:
        if var in self.variable_types:
            return self.variable_types[var]
        return TensorType.from_spec(var.outputs[0].spec)

    def emit(self, op: Operation, mnemonic: str, operands: List[Value],
             attrs: Optional[dict] = None) -> List[Value]:
        attrs = op.attrs if attrs is None else attrs
        op_def = op.op_def if mnemonic == op.op_def.mnemonic else \
            get_op_def_by_mnemonic(mnemonic)
        try:
            types = infer_results(op_def, operands, attrs)
        except ShapeInferenceError as e:
            shapes = ", ".join(str(v.type) for v in operands)
            raise errors.InvalidArgumentError(f"{e} in {op.describe()} (operands: {shapes})",
                                              op) from None
        results = [Value(t) for t in types]
        instr = Instr(mnemonic, operands, attrs, results, location_of(op))
        self.body.append(instr)
        for tensor, value in zip(op.outputs, results):
            self.env[tensor] = value
        self.compute_known(instr, op_def)
        return results

    def emit_region_op(self, op: Operation, mnemonic: str, operands: List[Value], attrs: dict,
                       types: List[TensorType], regions: List[Func]) -> None:
        results = [Value(t) for t in types]
        self.body.append(Instr(mnemonic, operands, attrs, results, location_of(op),
                               regions=regions))
        for tensor, value in zip(op.outputs, results):
            self.env[tensor] = value

    def compute_known(self, instr: Instr, op_def) -> None:
        """Records the values of `instr`'s results if its operands are known and small."""
        if instr.op == "constant":
            value = instr.attrs["value"]
            if value.size <= KNOWN_MAX_ELEMENTS:
                self.known[instr.result] = value
            return
        if op_def.stateful or op_def.kernel is None or any(
                v not in self.known for v in instr.operands) or any(
                r.type.num_elements is None or r.type.num_elements > KNOWN_MAX_ELEMENTS
                for r in instr.results):
            return
        try:
            with np.errstate(all="ignore"):
                values = op_def.kernel(*[self.known[v] for v in instr.operands], **instr.attrs)
        except Exception:  # (the run reports it, with its context)
            return
        for result, value in zip(instr.results,
                                 values if isinstance(values, tuple) else (values,)):
            self.known[result] = np.asarray(value)

    def shape_query(self, op: Operation) -> None:
        """`tf.shape`/`size`/`rank` of a value whose type is concrete: a constant."""
        (x,) = self.operands(op)
        if not x.type.is_static:
            self.emit(op, op.op_def.mnemonic, [x])
            return
        try:
            (spec,) = op.op_def.infer([x.type.to_spec()], **op.attrs)
        except ShapeInferenceError as e:
            raise errors.InvalidArgumentError(f"{e} in {op.describe()}", op) from None
        value = spec.value
        self.emit(op, "constant", [], {"value": value,
                                       "dtype": dtypes.as_dtype(value.dtype)})

    def dynamic_form(self, op: Operation) -> None:
        """An op given shape-like arguments as tensors: their values must be known now."""
        form = DYNAMIC_FORMS[op.type]
        operands = self.operands(op)
        data, values = operands[:form.data_arity], operands[form.data_arity:]
        for index, value in enumerate(values):
            if value not in self.known:
                raise data_dependent_error(op, form, index)
        try:
            attrs = form.static_attrs([self.known[v] for v in values], op.attrs)
        except ValueError as e:
            raise errors.InvalidArgumentError(f"{e}, computed at run time for "
                                              f"{op.describe()}", op) from None
        self.emit(op, get_op_def(form.static).mnemonic, data, attrs)

    def assignment(self, op: Operation) -> None:
        current, value = self.operands(op)
        var = op.inputs[0].op
        if op.type == "Assign":
            var_type = self.variable_type(var)
            if op.attrs.get("validate_shape", True) and var_type.shape != value.type.shape \
                    and var_type.is_static and value.type.is_static:
                raise errors.InvalidArgumentError(
                    f"{op.describe()}: cannot assign a value of type {value.type} to variable "
                    f"'{var.name}' of type {var_type}", op)
            self.env[op.outputs[0]] = value
            return
        mnemonic = {"AssignAdd": "add", "AssignSub": "sub"}[op.type]
        self.emit(op, mnemonic, [current, value], attrs={})

    def custom_gradient(self, op: Operation, operands: List[Value], token: str,
                        n_outputs: int, n_inputs: int) -> List[Value]:
        """A `custom_gradient` instruction (ops/custom_gradient.py) over `operands`: the
        forward values, the inputs they get gradients for, the captures of the gradient
        function named by `token`, which becomes its region."""
        from flowjit.ops.function_graph import function_of
        seeds = [v.type for v in operands[:n_outputs]]
        captured = operands[n_outputs + n_inputs:]
        known = {len(seeds) + i: self.known[v] for i, v in enumerate(captured)
                 if v in self.known}
        region = lower_function(function_of(op, token), seeds + [v.type for v in captured],
                                self.variable_types, known)
        results = [Value(v.type) for v in operands[:n_outputs]]
        attrs = {"grad": token, "n_outputs": n_outputs, "n_inputs": n_inputs}
        self.body.append(Instr(CUSTOM_GRADIENT, operands, attrs, results, location_of(op),
                               regions=[region]))
        return results

    def override_gradient(self, op: Operation) -> None:
        """An op under gradient_override_map: its outputs, as the rest of the program sees
        them, are a `custom_gradient` over its inputs."""
        from flowjit.ops.custom_gradient import custom_gradient_operands
        values = {**dict(zip(op.inputs, self.operands(op))),
                  **{t: self.env[t] for t in op.outputs}}
        operands = [values[t] for t in custom_gradient_operands(op)]
        results = self.custom_gradient(op, operands, op._gradient_token, len(op.outputs),
                                       len(op.inputs))
        self.env.update(zip(op.outputs, results))

    def parameter(self, op: Operation, role: str) -> None:
        value = Value(TensorType.from_spec(op.outputs[0].spec), op.name)
        self.params.append(Param(value, role, op.name))
        self.env[op.outputs[0]] = value


def location_of(op: Operation) -> Location:
    return Location(op.name, op.type, op.site)


def _unfed(lowering: _Lowering, op: Operation) -> None:
    from flowjit.graph.session import unfed_placeholder_error
    raise unfed_placeholder_error(op.outputs[0], lowering.plan.needed_by.get(op))


def _default_or_fed(lowering: _Lowering, op: Operation) -> None:
    lowering.env[op.outputs[0]] = lowering.operands(op)[0]


def _py_func(lowering: _Lowering, op: Operation) -> None:
    """A Python callback's outputs have the shapes given with `set_shape`, if any."""
    attrs = {**op.attrs, "shapes": tuple(t.shape for t in op.outputs)}
    lowering.emit(op, op.op_def.mnemonic, lowering.operands(op), attrs)


# -- control flow: each function of an If/While op becomes a region ---------------------------
def lower_function(fn, param_types: Sequence[TensorType], variable_types,
                   known: Mapping[int, np.ndarray]) -> Func:
    """A control-flow function (ops/control_flow.py) as a region: its arguments and captures
    are the params (of `param_types`; `known` gives some of their values), its outputs what
    it yields. Only the ops its outputs need are lowered, as for a run."""
    feeds = fn.inputs
    plan = build_plan(fn.outputs, [], feeds)
    lowering = _Lowering(plan, dict(zip(feeds, param_types)), variable_types)
    for index, value in known.items():
        lowering.known[lowering.params[index].value] = value
    func = lowering.run("region")
    return func.replace(params=[Param(p.value, "operand", "") for p in func.params],
                        results=[Result(r.value, "yield", "") for r in func.results])


def widened(a: TensorType, b: TensorType) -> TensorType:
    """The most specific type of both a value of type `a` and one of type `b`."""
    if a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
        return TensorType(a.dtype, None)
    return TensorType(a.dtype, tuple(x if x == y else None for x, y in zip(a.shape, b.shape)))


def _lower_cond(lowering: _Lowering, op: Operation) -> None:
    """`tf.cond`/`tf.case`: one region per branch, each taking the captured operands."""
    from flowjit.ops.function_graph import function_of
    operands = lowering.operands(op)
    pred, args = operands[0], operands[1:]
    if pred.type.shape != ():
        raise errors.InvalidArgumentError(f"the predicate of {op.describe()} must be a scalar, "
                                          f"got {pred.type}", op)
    known = {i: lowering.known[v] for i, v in enumerate(args) if v in lowering.known}
    regions = [lower_function(function_of(op, token), [v.type for v in args],
                              lowering.variable_types, known) for token in op.attrs["branches"]]
    types = [r.value.type for r in regions[0].results]
    for region in regions[1:]:
        types = [widened(t, r.value.type) for t, r in zip(types, region.results)]
    lowering.emit_region_op(op, COND, operands, {}, types, regions)


def _lower_while(lowering: _Lowering, op: Operation) -> None:
    """`tf.while_loop`: a condition and a body region over the loop variables and the
    captured invariants. A variable's type is its initial value's, widened (dims that
    change become '?') until the body yields what it takes: concrete shapes wherever the
    loop keeps them, whatever the shape invariants allow."""
    from flowjit.ops.function_graph import function_of
    operands = lowering.operands(op)
    n = len(op.outputs)
    inits, invariants = operands[:n], operands[n:]
    known = {n + i: lowering.known[v] for i, v in enumerate(invariants) if v in lowering.known}
    cond_fn, body_fn = (function_of(op, op.attrs[key]) for key in ("cond", "body"))
    types = [v.type for v in inits]
    for _ in range(2 + sum(len(t.shape or ()) for t in types)):  # each round widens a dim
        body = lower_function(body_fn, types + [v.type for v in invariants],
                              lowering.variable_types, known)
        wider = [widened(t, r.value.type) for t, r in zip(types, body.results)]
        if wider == types:
            break
        types = wider
    for value, tensor, t in zip(inits, op.outputs, types):
        declared = op.attrs["output_shapes"][op.outputs.index(tensor)]
        if declared.dims is not None and (t.shape is None or any(
                d is not None and d != got for d, got in zip(declared.dims, t.shape))):
            raise errors.InvalidArgumentError(
                f"loop variable {tensor.value_index} of {op.describe()} enters the loop as "
                f"{value.type} and becomes {t}, which its shape invariant {declared} does "
                f"not allow", op)
    condition = lower_function(cond_fn, types + [v.type for v in invariants],
                               lowering.variable_types, known)
    if condition.results[0].value.type.shape != ():
        raise errors.InvalidArgumentError(f"the condition of {op.describe()} must be a scalar, "
                                          f"got {condition.results[0].value.type}", op)
    limit = op.attrs.get("max_iterations")
    attrs = {} if limit is None else {"max_iterations": limit}
    lowering.emit_region_op(op, WHILE, operands, attrs, types, [condition, body])


def _lower_custom_gradient(lowering: _Lowering, op: Operation) -> None:
    """`tf.custom_gradient`'s op: a `custom_gradient` with the user's gradient function."""
    results = lowering.custom_gradient(op, lowering.operands(op), op.attrs["grad"],
                                       op.attrs["n_outputs"], op.attrs["n_inputs"])
    lowering.env.update(zip(op.outputs, results))


# Graph ops that are not computations: each lowers to a parameter or to nothing.
_SPECIAL: Dict[str, Callable[[_Lowering, Operation], None]] = {
    "NoOp": lambda lowering, op: None,
    "Placeholder": _unfed,
    "PlaceholderWithDefault": _default_or_fed,
    "RngCounter": lambda lowering, op: lowering.parameter(op, RNG_COUNTER),
    "ReportUninitializedVariables": lambda lowering, op: lowering.parameter(op, QUERY),
    "IsVariableInitialized": lambda lowering, op: lowering.parameter(op, QUERY),
    "Shape": _Lowering.shape_query,
    "Size": _Lowering.shape_query,
    "Rank": _Lowering.shape_query,
    "PyFunc": _py_func,
    "If": _lower_cond,
    "While": _lower_while,
    "CustomGradient": _lower_custom_gradient,
    "PyFuncStateless": _py_func,
}
