"""The eager executable: numpy, op by op. It is the reference every backend is checked against.

It owns no state: variable values and random-op counters belong to the Session and are passed
in; the new variable values come back and the Session commits them only if the run succeeded
(a failed run changes no Variable).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from flowjit import dtypes, errors
from flowjit.graph.core import Operation, Tensor
from flowjit.graph.plan import RunPlan
from flowjit.graph.registry import OpDef


class SessionState:
    """What a Session keeps between runs: variable values and random-op run counters."""

    def __init__(self) -> None:
        self.variables: Dict[Operation, np.ndarray] = {}
        self.rng_counters: Dict[Operation, int] = {}


def run_kernel(op_def: OpDef, inputs: List[np.ndarray], attrs: Dict[str, Any],
               rng_counter: Optional[int] = None) -> Tuple[np.ndarray, ...]:
    """Calls an op's numpy kernel; always returns a tuple of arrays."""
    with np.errstate(all="ignore"):  # inf/nan propagate silently, as in TF
        if rng_counter is not None:
            result = op_def.kernel(*inputs, rng_counter=rng_counter, **attrs)
        else:
            result = op_def.kernel(*inputs, **attrs)
    if isinstance(result, tuple):
        return tuple(np.asarray(r) for r in result)
    return (np.asarray(result),)


class EagerExecutable:
    """Executes one RunPlan with the numpy kernels."""

    backend = "eager"

    def __init__(self, plan: RunPlan) -> None:
        self.plan = plan

    def run(self, feeds: Dict[Tensor, np.ndarray], state: SessionState
            ) -> Tuple[List[Optional[np.ndarray]], Dict[Operation, np.ndarray]]:
        plan = self.plan
        values: Dict[Tensor, np.ndarray] = dict(feeds)
        for op in plan.ops:
            inputs = [values.get(t) for t in op.inputs]
            for read in plan.reads.get(op, ()):
                inputs[read.index] = self._read_variable(op, read, values, state)
            outputs = self._execute(op, inputs, state, values)
            for tensor, value in zip(op.outputs, outputs):
                values[tensor] = value
        results: List[Optional[np.ndarray]] = []
        for fetch in plan.fetches:
            if isinstance(fetch, Operation):
                results.append(None)
            elif fetch in plan.snapshot_fetches and fetch not in feeds:
                results.append(self._snapshot(fetch, state))
            else:
                results.append(values[fetch])
        updates = {var: values[assign.outputs[0]] for var, assign in plan.final_writes.items()}
        return results, updates

    # -- helpers ------------------------------------------------------------------------------
    def _read_variable(self, op: Operation, read, values, state: SessionState):
        if read.source is not None:
            return values[read.source.outputs[0]]
        value = state.variables.get(read.variable)
        if value is None and not (op.type == "Assign" and read.index == 0):
            raise _uninitialized(read.variable, self.plan.needed_by.get(op))
        return value

    def _snapshot(self, fetch: Tensor, state: SessionState) -> np.ndarray:
        value = state.variables.get(fetch.op)
        if value is None:
            raise _uninitialized(fetch.op, fetch)
        return value

    def _execute(self, op: Operation, inputs, state: SessionState, values) -> Tuple:
        op_def = op.op_def
        if op_def.kernel is None:
            return self._intrinsic(op, state)
        counter = None
        if op_def.uses_rng:
            counter = state.rng_counters.get(op, 0)
            state.rng_counters[op] = counter + 1
        try:
            outputs = run_kernel(op_def, inputs, op.attrs, counter)
        except errors.OpError as e:
            raise type(e)(f"{e.message}\n  in {op.describe()}{_shapes(inputs)}", op) from None
        except MemoryError:
            raise errors.ResourceExhaustedError(
                f"Out of memory computing {op.describe()}{_shapes(inputs)}", op) from None
        except (ValueError, IndexError, TypeError, ArithmeticError) as e:
            raise errors.InvalidArgumentError(
                f"{e}\n  in {op.describe()}{_shapes(inputs)}", op) from None
        _check_outputs(op, outputs)
        return outputs

    def _intrinsic(self, op: Operation, state: SessionState) -> Tuple:
        if op.type in ("NoOp",):
            return ()
        if op.type == "Placeholder":
            raise _unfed_placeholder(op.outputs[0], self.plan.needed_by.get(op))
        if op.type == "ReportUninitializedVariables":
            names = [name for name in op.attrs["variables"]
                     if _state_value(state, op.graph, name) is None]
            return (np.array(names, dtype=object).reshape(-1),)
        if op.type == "IsVariableInitialized":
            (name,) = op.attrs["variables"]
            return (np.array(_state_value(state, op.graph, name) is not None),)
        raise errors.InternalError(f"the eager interpreter cannot execute {op.describe()}", op)


def _state_value(state: SessionState, graph, var_name: str):
    return state.variables.get(graph.get_operation_by_name(var_name))


def _check_outputs(op: Operation, outputs: Tuple[np.ndarray, ...]) -> None:
    """A kernel that breaks its op's shape/dtype contract is a flowjit bug: say so loudly."""
    for tensor, value in zip(op.outputs, outputs):
        if value.dtype != tensor.dtype.np_dtype or not tensor.shape.is_compatible_with(
                value.shape):
            raise errors.InternalError(
                f"kernel of {op.describe()} returned {value.dtype}{list(value.shape)} for "
                f"output '{tensor.name}' declared {tensor.dtype.name}{tensor.shape}. This is a "
                f"flowjit bug; please report it.", op)


def _shapes(inputs) -> str:
    shapes = ", ".join("uninitialized" if x is None else f"{x.dtype}{list(x.shape)}"
                       for x in inputs)
    return f" with inputs [{shapes}]" if inputs else ""


def _describe_fetch(fetch) -> str:
    if fetch is None:
        return ""
    return f"; it is needed to compute '{fetch.name}'"


def _uninitialized(variable: Operation, fetch) -> errors.UninitializedVariableError:
    return errors.UninitializedVariableError(
        f"Attempting to use uninitialized value {variable.name} (Variable created at "
        f"{variable.site}){_describe_fetch(fetch)}. Run "
        f"sess.run(tf.global_variables_initializer()) first.", variable)


def _unfed_placeholder(tensor: Tensor, fetch) -> errors.InvalidArgumentError:
    shape = tensor.shape
    shape_text = "<unknown>" if shape.dims is None else \
        "[" + ",".join("?" if d is None else str(d) for d in shape.dims) + "]"
    return errors.InvalidArgumentError(
        f"You must feed a value for placeholder tensor '{tensor.op.name}' with dtype "
        f"{tensor.dtype.name} and shape {shape_text} (created at {tensor.op.site})"
        f"{_describe_fetch(fetch)}.", tensor.op)
