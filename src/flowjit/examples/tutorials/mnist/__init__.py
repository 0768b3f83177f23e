"""`from flowjit.examples.tutorials.mnist import input_data`, as in TF1's tutorials."""
from flowjit.examples.tutorials.mnist import input_data  # noqa: F401
