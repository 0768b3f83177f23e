"""`Timeline(step_stats).generate_chrome_trace_format()`: a run's trace as the JSON of
Chrome's trace-event format, which chrome://tracing and Perfetto open (as TF1's
`tensorflow.python.client.timeline`)."""
from __future__ import annotations

import json
from typing import Any, Dict, List


class Timeline:
    """The trace of one `RunMetadata.step_stats`."""

    def __init__(self, step_stats: Any, graph: Any = None) -> None:
        self._step_stats = step_stats
        self._graph = graph

    def _events(self) -> List[Dict[str, Any]]:
        events: List[Dict[str, Any]] = []
        for pid, device in enumerate(self._step_stats.dev_stats):
            events.append({"name": "process_name", "ph": "M", "pid": pid, "tid": 0,
                           "args": {"name": f"{device.device} Compute"}})
            events.append({"name": "process_sort_index", "ph": "M", "pid": pid, "tid": 0,
                           "args": {"sort_index": pid}})
            for node in device.node_stats:
                label = node.timeline_label or node.node_name
                events.append({
                    "name": label.split(":")[0], "ph": "X", "cat": "Op", "pid": pid,
                    "tid": node.thread_id, "ts": node.all_start_micros,
                    "dur": max(node.all_end_rel_micros, 0),
                    "args": {"name": node.node_name, "op": label}})
        return events

    def generate_chrome_trace_format(self, show_dataflow: bool = True,
                                     show_memory: bool = False,
                                     op_time: str = "schedule") -> str:
        """The trace as a JSON string: {"traceEvents": [...]}."""
        return json.dumps({"traceEvents": self._events()}, separators=(",", ":"))
