"""What a traced `Session.run` records in `run_metadata.step_stats`.

With `options=tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE)` and a `RunMetadata`, a run
records its phases as `NodeExecStats` of one device: getting the executable ("compile" when
this run compiled it, else "cache lookup"), executing it, and committing the new variable
values. The phases are timed at the Session level: the runtime does not yet report its
native segments and host thunks one by one, so a compiled run's kernels are one "execute"
span.
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


def maybe_phase(tracer: Optional[RunTracer], name: str):
    """`tracer.phase(name)`, or a context that does nothing when there is no tracer."""
    return tracer.phase(name) if tracer is not None else contextlib.nullcontext()
