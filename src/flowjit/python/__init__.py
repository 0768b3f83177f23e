"""`tf.python`: the one TF1 module programs import from here, `tf.python.client.timeline`."""
from flowjit.python import client  # noqa: F401
