"""`tf.contrib`: the parts TF1 tutorials use (`layers`, `rnn`)."""
from flowjit.contrib import layers, rnn  # noqa: F401
