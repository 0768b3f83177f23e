"""`tf.summary`: the summary ops (`scalar`, `histogram`, `image`, `audio`, `text`,
`tensor_summary`, `merge`, `merge_all`: ops returning serialized `Summary` protos as string
tensors) and `FileWriter`, which writes them to TensorBoard's event files."""
from flowjit.summary.ops import (audio, histogram, image, merge, merge_all, scalar,  # noqa: F401
                                 tensor_summary, text)
from flowjit.lazy import lazy_attributes

# The writer (and the MPI world it asks which rank writes) is imported on first use.
_writer_getattr, __dir__ = lazy_attributes(__name__, {
    "FileWriter": "flowjit.summary.writer:FileWriter"})

# TF1's `tf.summary.Summary`, `SummaryDescription`, `Event`, ...: the protos, on first use.
_PROTOS = {"Summary": "summary", "SummaryDescription": "summary",
           "SummaryMetadata": "summary", "HistogramProto": "summary", "Event": "event",
           "SessionLog": "event", "TaggedRunMetadata": "event"}


def __getattr__(name):
    if name in _PROTOS:
        from flowjit.io.protos import tensorflow_proto
        return getattr(tensorflow_proto(_PROTOS[name]), name)
    return _writer_getattr(name)
