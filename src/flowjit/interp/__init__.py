"""The numpy reference interpreter: evaluates IR at any stage with the registered kernels."""
from flowjit.interp.evaluate import evaluate, execute  # noqa: F401
