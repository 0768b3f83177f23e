"""The op library: each module registers its ops (shape rule + numpy kernel) and defines
the TF1 API functions that build them. Importing this package registers every op."""
from flowjit.ops import base, math, array, creation, indexing, random, state, nn, conv  # noqa: F401
from flowjit.ops import normalization, ranking  # noqa: F401
from flowjit.ops import host, strings, control_flow, functional, collective  # noqa: F401
from flowjit.ops import overloads  # noqa: F401
from flowjit.ops import (gradients, math_grad, array_grad, nn_grad, conv_grad,  # noqa: F401
                         control_flow_grad)
