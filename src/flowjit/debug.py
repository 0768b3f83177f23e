"""Finding where the compiled code and the interpreter disagree.

    report = flowjit.debug.first_divergence(sess, loss, {x: batch})
    print(report)   # None if they agree, else the first IR value that differs

Both backends run the *same* optimized IR function on the same inputs with every
intermediate value kept; the first instruction (in program order) whose result differs
beyond the tolerance is reported with the user's op, its creation site, the IR line and the
two values. Because the IR is the same, a divergence points at one kernel, not at a pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np

from flowjit.compiler import CompileOptions, compile_plan
from flowjit.graph.plan import build_plan
from flowjit.interp.evaluate import evaluate
from flowjit.ir.core import Func, Instr, TensorType, Value
from flowjit.ir.printer import print_func


@dataclass
class Divergence:
    instr: Instr
    ir_line: str
    eager: np.ndarray
    compiled: np.ndarray
    max_abs_error: float

    def __str__(self) -> str:
        return (f"first divergence at {self.instr.describe()}:\n  {self.ir_line.strip()}\n"
                f"  max |compiled - eager| = {self.max_abs_error:.3g}\n"
                f"  eager:    {np.array2string(self.eager, threshold=8)}\n"
                f"  compiled: {np.array2string(self.compiled, threshold=8)}")


def first_divergence(session, fetches, feed_dict=None, rtol: float = 1e-5,
                     atol: float = 1e-6) -> Optional[Divergence]:
    """Runs `fetches` once on each backend (without changing the session's state) and
    returns the first IR value where they differ, or None."""
    from flowjit.runtime import cpu
    executable, feeds = _eager_executable(session, fetches, feed_dict)
    func = executable.func
    inputs = executable.inputs(feeds, session._state)
    eager: Dict[Value, np.ndarray] = {}
    evaluate(func, inputs, trace=eager)
    compiled: Dict[Value, np.ndarray] = {}
    run, _ = cpu.build(func, keep_intermediates=True)  # one kernel per value: all kept
    run(inputs, trace=compiled)
    lines = [line for line in print_func(func).splitlines() if " = " in line]
    top_level = [line for line in lines if line.startswith("  %")]
    for index, instr in enumerate(func.body):
        for value in instr.results:
            error = _difference(eager[value], compiled[value], rtol, atol)
            if error is not None:
                line = top_level[index] if index < len(top_level) else instr.op
                return Divergence(instr, line, eager[value], compiled[value], error)
    return None


def optimized_func(session, fetches, feed_dict=None) -> Func:
    """The optimized IR function a run of `fetches` with `feed_dict` executes in `session`
    (its variables' current shapes): print it, or draw it with `flowjit.ir.dot`."""
    return _eager_executable(session, fetches, feed_dict)[0].func


def _eager_executable(session, fetches, feed_dict):
    """The run compiled for the interpreter (lowering and passes only), and its feeds."""
    request = session._request(fetches)
    feeds = session._convert_feeds(feed_dict)
    plan = build_plan(request.tensors, request.targets, tuple(feeds))
    feed_types = {t: TensorType(t.dtype, v.shape) for t, v in feeds.items()}
    variable_types = {var: TensorType(var.outputs[0].dtype, value.shape)
                      for var, value in session._state.variables.items()}
    return compile_plan(plan, feed_types, variable_types, CompileOptions("eager")), feeds


def _difference(a: Any, b: Any, rtol: float, atol: float) -> Optional[float]:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return float("inf")
    if a.dtype.kind in "fc":
        same = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
    else:
        same = a == b
    if np.all(same):
        return None
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
