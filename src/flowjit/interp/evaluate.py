"""Runs IR on numpy: the reference semantics of any Func, at any stage of the pipeline."""
from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from flowjit import errors
from flowjit.client.tracing import instr_label
from flowjit.ir.core import COND, CUSTOM_GRADIENT, FUSION, WHILE, Func, Instr, Value


def _label(instr: Instr) -> Tuple[str, str]:
    name, op = instr_label(instr)
    return name, f"eager {op}"


def evaluate(func: Func, inputs: Sequence[np.ndarray],
             trace: Optional[Dict[Value, np.ndarray]] = None,
             timer: Optional[Callable[[Tuple[str, str], int, int], None]] = None
             ) -> List[np.ndarray]:
    """Evaluates `func` on `inputs` (one per param). If `trace` is given, every value
    computed is stored in it (to find where two pipelines diverge); `timer(label, start_ns,
    end_ns)` receives each instruction's time (client/tracing.py)."""
    if len(inputs) != len(func.params):
        raise errors.InternalError(f"{func.name} takes {len(func.params)} inputs, got "
                                   f"{len(inputs)}")
    env: Dict[Value, np.ndarray] = {p.value: x for p, x in zip(func.params, inputs)}
    for instr in func.body:
        if timer is not None:  # a traced run: each instruction's time
            start = time.time_ns()
            outputs = execute(instr, [env[v] for v in instr.operands], trace)
            timer(_label(instr), start, time.time_ns())
        else:
            outputs = execute(instr, [env[v] for v in instr.operands], trace)
        for value, output in zip(instr.results, outputs):
            env[value] = output
    if trace is not None:
        trace.update(env)
    return [env[r.value] for r in func.results]


def execute(instr: Instr, inputs: List[np.ndarray],
            trace: Optional[Dict[Value, np.ndarray]] = None) -> List[np.ndarray]:
    """One instruction: its op's numpy kernel, or its regions for a region op."""
    region_op = _REGION_OPS.get(instr.op)
    if region_op is not None:
        return region_op(instr, inputs, trace)
    op_def = instr.op_def
    try:
        with np.errstate(all="ignore"):  # inf/nan propagate silently, as in TF
            result = op_def.kernel(*inputs, **instr.attrs)
    except errors.OpError as e:
        raise type(e)(f"{e.message}\n  in {instr.describe()}{_shapes(inputs)}") from None
    except MemoryError:
        raise errors.ResourceExhaustedError(
            f"Out of memory computing {instr.describe()}{_shapes(inputs)}") from None
    except (ValueError, IndexError, TypeError, ArithmeticError) as e:
        raise errors.InvalidArgumentError(
            f"{e}\n  in {instr.describe()}{_shapes(inputs)}") from None
    outputs = [np.asarray(r) for r in result] if isinstance(result, tuple) \
        else [np.asarray(result)]
    _check_outputs(instr, outputs)
    return outputs


def _check_outputs(instr: Instr, outputs: List[np.ndarray]) -> None:
    """A kernel that breaks its op's type contract is a flowjit bug: say so loudly."""
    for value, output in zip(instr.results, outputs):
        declared = value.type
        shape_ok = declared.shape is None or (
            len(declared.shape) == output.ndim
            and all(d is None or d == o for d, o in zip(declared.shape, output.shape)))
        if output.dtype != declared.dtype.np_dtype or not shape_ok:
            raise errors.InternalError(
                f"kernel of {instr.describe()} returned {output.dtype}{list(output.shape)} "
                f"where the IR declares {declared}. This is a flowjit bug; please report it.")


def _shapes(inputs) -> str:
    shapes = ", ".join(f"{x.dtype}{list(x.shape)}" for x in inputs)
    return f" with inputs [{shapes}]" if inputs else ""


# -- region ops: the reference semantics of control flow ---------------------------------------
def branch_index(instr: Instr, pred: np.ndarray) -> int:
    """The branch a cond takes: 0 for true and 1 for false; for an int32 index, that branch,
    or the last one (the default) when the index is out of range."""
    if pred.dtype == np.bool_:
        return 0 if pred else 1
    index = int(pred)
    return index if 0 <= index < len(instr.regions) else len(instr.regions) - 1


def _cond(instr: Instr, inputs: List[np.ndarray], trace) -> List[np.ndarray]:
    region = instr.regions[branch_index(instr, inputs[0])]
    return evaluate(region, inputs[1:], trace)


def loop_limit(instr: Instr) -> Optional[int]:
    """A while's `max_iterations` attribute: at most that many runs of the body."""
    return instr.attrs.get("max_iterations")


def _while(instr: Instr, inputs: List[np.ndarray], trace) -> List[np.ndarray]:
    condition, body = instr.regions
    n = len(instr.results)
    state, invariants = list(inputs[:n]), list(inputs[n:])
    limit, count = loop_limit(instr), 0
    while limit is None or count < limit:
        if not evaluate(condition, state + invariants)[0]:
            break
        state = evaluate(body, state + invariants)
        count += 1
    return state


_REGION_OPS = {FUSION: lambda instr, inputs, trace: evaluate(instr.region, inputs, trace),
               COND: _cond, WHILE: _while,
               # (its region is a gradient: only autodiff reads it)
               CUSTOM_GRADIENT: lambda instr, inputs, trace: inputs[:len(instr.results)]}
