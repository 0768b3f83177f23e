"""`tf.debugging`: numeric checks and assertions (the ops are in ops/host.py)."""
from flowjit.ops.host import (Assert, assert_equal, assert_positive, assert_rank,  # noqa: F401
                              check_numerics)
