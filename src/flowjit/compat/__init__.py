"""`tf.compat.v1`: flowjit is TF1's API, so `tf.compat.v1.layers` is `tf.layers`."""
import sys

v1 = sys.modules["flowjit"]
