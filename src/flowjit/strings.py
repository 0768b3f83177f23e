"""`tf.strings`: ops on the string dtype (they are in ops/strings.py)."""
from flowjit.ops.strings import as_string  # noqa: F401
from flowjit.ops.strings import string_join as join  # noqa: F401
