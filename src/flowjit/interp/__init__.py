"""The numpy reference interpreter: runs a RunPlan op by op with the registered kernels."""
from flowjit.interp.eager import EagerExecutable, run_kernel  # noqa: F401
