"""`tf.summary`: event files for TensorBoard. `FileWriter` is here; the summary ops
(`scalar`, `histogram`, ... returning serialized `Summary` string tensors) need string tensors
and are not built yet."""
from flowjit.summary.writer import FileWriter  # noqa: F401
