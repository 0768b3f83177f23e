"""Global step and learning-rate schedules."""
from __future__ import annotations

from typing import Optional

from flowjit import dtypes
from flowjit.graph.core import Graph, GraphKeys, get_default_graph
from flowjit.ops import math
from flowjit.ops.base import convert_to_tensor
from flowjit.variables import Variable


def get_global_step(graph: Optional[Graph] = None) -> Optional[Variable]:
    graph = graph or get_default_graph()
    steps = graph.get_collection(GraphKeys.GLOBAL_STEP)
    if len(steps) > 1:
        raise TypeError("There are multiple global steps.")
    return steps[0] if steps else None


def get_or_create_global_step(graph: Optional[Graph] = None) -> Variable:
    graph = graph or get_default_graph()
    step = get_global_step(graph)
    if step is None:
        with graph.as_default(), graph.name_scope(None):
            step = Variable(0, dtype=dtypes.int64, name="global_step", trainable=False,
                            collections=[GraphKeys.GLOBAL_VARIABLES, GraphKeys.GLOBAL_STEP])
    return step


create_global_step = get_or_create_global_step


def exponential_decay(learning_rate, global_step, decay_steps, decay_rate, staircase=False,
                      name=None):
    """learning_rate * decay_rate ^ (global_step / decay_steps), floored if staircase."""
    if global_step is None:
        raise ValueError("global_step is required for exponential_decay.")
    with get_default_graph().name_scope(name or "ExponentialDecay"):
        lr = convert_to_tensor(learning_rate, dtype_hint=dtypes.float32, name="learning_rate")
        step = math.cast(global_step, lr.dtype)
        p = math.divide(step, math.cast(convert_to_tensor(decay_steps), lr.dtype))
        if staircase:
            p = math.floor(p)
        return math.multiply(lr, math.pow(math.cast(convert_to_tensor(decay_rate), lr.dtype),
                                          p))
