"""What a traced `Session.run` records in `run_metadata.step_stats`.

With `options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE)` and a `RunMetadata`, a run
records its phases as `NodeExecStats` of one device: getting the executable ("compile" when
this run compiled it, else "cache lookup"), executing it, and committing the new variable
values; and, inside "execute", each step the runtime took (`kernel`): a native segment (named
by its first and last ops), a native kernel or a numpy thunk (named by the user's op) on the
LLVM backend, each instruction on the eager one. Untraced runs pass no timer, and so pay
nothing for this.
"""
from __future__ import annotations

import contextlib
import threading
import time
from typing import Any, Callable, List, Optional, Tuple

DEVICE = "/job:localhost/replica:0/task:0/device:CPU:0"
_NO_TRACE_LEVEL = 0


def _micros() -> int:
    return time.time_ns() // 1000


class RunTracer:
    """Records named, timed phases of one run; `finish` writes them to the RunMetadata."""

    def __init__(self, run_metadata: Any, compiles: Callable[[], int], what: str) -> None:
        self._run_metadata = run_metadata
        self._compiles = compiles
        self._compiles_before = compiles()
        self._what = what
        self._spans: List[Tuple[str, int, int]] = []
        self._kernels: List[Tuple[Tuple[str, str], int, int]] = []

    @staticmethod
    def start(options: Any, run_metadata: Any, compiles: Callable[[], int],
              what: str) -> Optional["RunTracer"]:
        """A tracer when `options` asks for a trace and `run_metadata` can take it."""
        level = getattr(options, "trace_level", _NO_TRACE_LEVEL) if options is not None \
            else _NO_TRACE_LEVEL
        if not level or run_metadata is None or not hasattr(run_metadata, "step_stats"):
            return None
        return RunTracer(run_metadata, compiles, what)

    @contextlib.contextmanager
    def phase(self, name: str):
        start = _micros()
        try:
            yield
        finally:
            self._spans.append((name, start, _micros()))

    def kernel(self, label: Tuple[str, str], start_ns: int, end_ns: int) -> None:
        """The runtime's timer: one step of the executable, `label` (node name, kind)."""
        self._kernels.append((label, start_ns, end_ns))

    def finish(self) -> None:
        compiled = self._compiles() > self._compiles_before
        device = self._run_metadata.step_stats.dev_stats.add(device=DEVICE)
        thread = threading.get_ident() & 0x7FFFFFFF
        for name, start, end in self._spans:
            if name == "prepare":
                name = "compile" if compiled else "cache lookup"
            node = device.node_stats.add(node_name=f"flowjit/{name}", all_start_micros=start,
                                         op_start_rel_micros=0,
                                         op_end_rel_micros=end - start,
                                         all_end_rel_micros=end - start, thread_id=thread)
            node.timeline_label = f"{name}: {self._what}"
        for (name, kind), start_ns, end_ns in self._kernels:
            start, end = start_ns // 1000, end_ns // 1000
            node = device.node_stats.add(node_name=name, all_start_micros=start,
                                         op_start_rel_micros=0,
                                         op_end_rel_micros=end - start,
                                         all_end_rel_micros=end - start, thread_id=thread)
            node.timeline_label = f"{kind}: {name}"


def instr_label(instr: Any) -> Tuple[str, str]:
    """(the user's op name, its op type) of an IR instruction, as a trace names it; a
    fusion's type says its kind."""
    name = instr.loc.name if instr.loc else instr.op
    if instr.is_fusion:
        return name, f"Fusion({instr.attrs.get('kind', 'loop')})"
    return name, (instr.loc.op_type if instr.loc and instr.loc.op_type else instr.op)


def maybe_phase(tracer: Optional[RunTracer], name: str):
    """`tracer.phase(name)`, or a context that does nothing when there is no tracer."""
    return tracer.phase(name) if tracer is not None else contextlib.nullcontext()
