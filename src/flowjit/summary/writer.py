"""`tf.summary.FileWriter` (old name `tf.train.SummaryWriter`): TensorBoard event files.

Events are written by the tensorboard package's `EventFileWriter` (TFRecord framing with
masked CRCs, a background thread that flushes every `flush_secs`), as `Event` protos: the
graph as a real `GraphDef` (`flowjit.graph.graph_def`: scoped names, op types, attributes,
output shapes), summaries, run metadata and meta graphs.
"""
from __future__ import annotations

import time
from typing import Any, Optional

from flowjit import errors
from flowjit.graph.core import Graph
from flowjit.io.protos import MissingDependencyError, tensorflow_proto
from flowjit.runtime import mpi


def _event_file_writer_class():
    try:
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError as e:
        raise MissingDependencyError(
            f"tf.summary.FileWriter needs the 'tensorboard' package ({e}): "
            f"pip install 'flowjit[io]'") from None
    return EventFileWriter


class FileWriter:
    """`FileWriter(logdir, graph=None, max_queue=10, flush_secs=120, graph_def=None,
    filename_suffix=None)`: a new event file in `logdir` (created if needed)."""

    def __init__(self, logdir: str, graph: Optional[Graph] = None, max_queue: int = 10,
                 flush_secs: float = 120, graph_def: Any = None,
                 filename_suffix: Optional[str] = None, session: Any = None) -> None:
        self._logdir = str(logdir)
        self._options = dict(max_queue_size=max_queue, flush_secs=flush_secs,
                             filename_suffix=filename_suffix or "")
        self._writer = self._open()
        self._closed = False
        if graph is not None or graph_def is not None:
            self.add_graph(graph, graph_def=graph_def)

    def _open(self):
        """A new event file; in a flowjit.distribute job only rank 0 writes one (every rank
        runs the same program), the others' events are dropped."""
        if not mpi.writes_files():
            return _DroppedEvents()
        return _event_file_writer_class()(self._logdir, **self._options)

    def get_logdir(self) -> str:
        return self._logdir

    def _event(self, global_step: Optional[int] = None, **fields: Any):
        event = tensorflow_proto("event").Event(wall_time=time.time(), **fields)
        if global_step is not None:
            event.step = int(global_step)
        return event

    def add_event(self, event) -> None:
        if self._closed:
            raise errors.FailedPreconditionError(
                f"The FileWriter of '{self._logdir}' is closed; call reopen() to write again")
        self._writer.add_event(event)

    def add_summary(self, summary, global_step: Optional[int] = None) -> None:
        """`summary`: a serialized `Summary` (what `sess.run` of a summary op returns) or a
        `Summary` proto."""
        summary_pb2 = tensorflow_proto("summary")
        if isinstance(summary, (bytes, bytearray)):
            try:
                summary = summary_pb2.Summary.FromString(bytes(summary))
            except Exception as e:  # protobuf's DecodeError
                raise errors.InvalidArgumentError(
                    f"add_summary got {len(summary)} bytes that are not a serialized "
                    f"Summary ({e})") from None
        elif not isinstance(summary, summary_pb2.Summary):
            raise TypeError(f"add_summary needs a serialized Summary (bytes) or a Summary "
                            f"proto, got {type(summary).__name__}")
        self.add_event(self._event(global_step, summary=summary))

    def add_graph(self, graph: Optional[Graph], global_step: Optional[int] = None,
                  graph_def: Any = None) -> None:
        """Writes the graph (TensorBoard's Graphs tab) as a `GraphDef` with output shapes."""
        if graph is not None and graph_def is None:
            from flowjit.graph.graph_def import graph_to_graph_def
            graph_def = graph_to_graph_def(graph)
        if graph_def is None:
            raise ValueError("add_graph needs a Graph or a GraphDef")
        self.add_event(self._event(global_step, graph_def=graph_def.SerializeToString()))

    def add_meta_graph(self, meta_graph_def, global_step: Optional[int] = None) -> None:
        self.add_event(self._event(global_step,
                                   meta_graph_def=meta_graph_def.SerializeToString()))

    def add_run_metadata(self, run_metadata, tag: str,
                         global_step: Optional[int] = None) -> None:
        """A traced run's `RunMetadata` under `tag` (TensorBoard shows it with the graph)."""
        tagged = tensorflow_proto("event").TaggedRunMetadata(
            tag=tag, run_metadata=run_metadata.SerializeToString())
        self.add_event(self._event(global_step, tagged_run_metadata=tagged))

    def add_session_log(self, session_log, global_step: Optional[int] = None) -> None:
        self.add_event(self._event(global_step, session_log=session_log))

    def flush(self) -> None:
        if not self._closed:
            self._writer.flush()

    def close(self) -> None:
        if not self._closed:
            self._writer.close()
            self._closed = True

    def reopen(self) -> None:
        """After `close`, writes again, to a new event file."""
        if self._closed:
            self._writer = self._open()
            self._closed = False

    def __enter__(self) -> "FileWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _DroppedEvents:
    """The event writer of a rank that writes no files."""

    def add_event(self, event) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass
