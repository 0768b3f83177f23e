"""Recurrent networks: static_rnn, dynamic_rnn, static_bidirectional_rnn and
bidirectional_dynamic_rnn, unrolled when the graph is built.

Why unrolled: a Session compiles per feed signature, so the number of time steps is known
whenever a run is compiled, and an unrolled network is plain IR that autodiff, fusion and
the GEMM kernels handle like any other (each step's matmuls and gate math fuse). So
dynamic_rnn is static_rnn over the time axis, and needs that axis known when the graph is
built (a placeholder [batch, 28, 28], not [batch, None, 28]); `sequence_length` masks per
example, as TF1 does: outputs past an example's length are zeros and its state stops
changing there.
"""
from __future__ import annotations

from flowjit import errors
from flowjit.graph.core import get_default_graph
from flowjit.ops import array, creation, indexing, math
from flowjit.ops.base import convert_to_tensor
from flowjit.nn.rnn_cell import map_structure
from flowjit.variables import variable_scope


def _initial_state(cell, initial_state, batch_size, dtype):
    if initial_state is not None:
        return initial_state
    if dtype is None:
        raise ValueError("If no initial_state is given, dtype must be")
    return cell.zero_state(batch_size, dtype)


def _batch_size(x):
    batch = x.shape.dims[0] if x.shape.dims else None
    return batch if batch is not None else array.shape(x)[0]


def _unroll(cell, inputs, state, sequence_length):
    """Runs `cell` over the list of per-step inputs; with sequence_length, an example's
    outputs past its length are zeros and its state is carried unchanged."""
    outputs = []
    lengths = None
    if sequence_length is not None:
        lengths = math.cast(convert_to_tensor(sequence_length), "int32")
    for t, x in enumerate(inputs):
        with get_default_graph().name_scope(f"step_{t}"):
            output, new_state = cell(x, state)
            if lengths is not None:
                alive = array.expand_dims(math.greater(lengths, t), 1)
                output = array.where_v2(alive, output, creation.zeros_like(output))
                new_state = map_structure(lambda new, old: array.where_v2(alive, new, old),
                                          new_state, state)
        outputs.append(output)
        state = new_state
    return outputs, state


def static_rnn(cell, inputs, initial_state=None, dtype=None, sequence_length=None, scope=None):
    """(outputs, state) of `cell` over a list of [batch, depth] inputs."""
    if not inputs:
        raise ValueError("static_rnn needs a non-empty list of inputs")
    inputs = [convert_to_tensor(x) for x in inputs]
    with variable_scope(scope or "rnn"):
        state = _initial_state(cell, initial_state, _batch_size(inputs[0]), dtype)
        return _unroll(cell, inputs, state, sequence_length)


def _time_steps(inputs, time_major: bool, api: str) -> list:
    x = convert_to_tensor(inputs)
    if x.shape.ndims is None or x.shape.ndims < 3:
        raise errors.ShapeError(f"{api}: inputs {x.describe()} must be [batch, time, depth] "
                                f"(or [time, batch, depth] with time_major), got shape "
                                f"{x.shape}")
    axis = 0 if time_major else 1
    steps = x.shape.dims[axis]
    if steps is None:
        raise errors.UnimplementedError(
            f"{api}: the time dimension of {x.describe()} (shape {x.shape}) must be known "
            f"when the graph is built: flowjit unrolls recurrent networks (give the "
            f"placeholder its number of steps)")
    return array.unstack(x, num=steps, axis=axis)


def dynamic_rnn(cell, inputs, sequence_length=None, initial_state=None, dtype=None,
                parallel_iterations=None, swap_memory=False, time_major=False, scope=None):
    """(outputs [batch, time, output], final state); [time, batch, ...] with time_major."""
    steps = _time_steps(inputs, time_major, "dynamic_rnn")
    with variable_scope(scope or "rnn"):
        state = _initial_state(cell, initial_state, _batch_size(steps[0]), dtype)
        outputs, state = _unroll(cell, steps, state, sequence_length)
        return array.stack(outputs, axis=0 if time_major else 1), state


def _reversed(steps, sequence_length):
    """The per-step list reversed, within each example's length when one is given (TF1's
    reverse_sequence): step t of example b takes step length_b - 1 - t, or t past it."""
    if sequence_length is None:
        return steps[::-1]
    count = len(steps)
    lengths = math.cast(convert_to_tensor(sequence_length), "int32")
    stacked = array.stack(steps, axis=1)  # [batch, time, depth]
    result = []
    for t in range(count):
        source = array.where_v2(math.greater(lengths, t), math.subtract(lengths, 1 + t), t)
        pick = indexing.one_hot(source, count, dtype=stacked.dtype)  # [batch, time]
        result.append(math.reduce_sum(math.multiply(stacked, array.expand_dims(pick, 2)), 1))
    return result


def _bidirectional(cell_fw, cell_bw, steps, initial_state_fw, initial_state_bw, dtype,
                   sequence_length, scope):
    with variable_scope(scope or "bidirectional_rnn"):
        batch = _batch_size(steps[0])
        with variable_scope("fw"):
            state = _initial_state(cell_fw, initial_state_fw, batch, dtype)
            out_fw, state_fw = _unroll(cell_fw, steps, state, sequence_length)
        with variable_scope("bw"):
            state = _initial_state(cell_bw, initial_state_bw, batch, dtype)
            out_bw, state_bw = _unroll(cell_bw, _reversed(steps, sequence_length), state,
                                       sequence_length)
            out_bw = _reversed(out_bw, sequence_length)
    return out_fw, out_bw, state_fw, state_bw


def static_bidirectional_rnn(cell_fw, cell_bw, inputs, initial_state_fw=None,
                             initial_state_bw=None, dtype=None, sequence_length=None,
                             scope=None):
    """(outputs: per step concat(forward, backward), forward state, backward state)."""
    steps = [convert_to_tensor(x) for x in inputs]
    out_fw, out_bw, state_fw, state_bw = _bidirectional(
        cell_fw, cell_bw, steps, initial_state_fw, initial_state_bw, dtype, sequence_length,
        scope)
    outputs = [array.concat([f, b], 1) for f, b in zip(out_fw, out_bw)]
    return outputs, state_fw, state_bw


def bidirectional_dynamic_rnn(cell_fw, cell_bw, inputs, sequence_length=None,
                              initial_state_fw=None, initial_state_bw=None, dtype=None,
                              parallel_iterations=None, swap_memory=False, time_major=False,
                              scope=None):
    """((outputs_fw, outputs_bw), (state_fw, state_bw)), outputs as dynamic_rnn's."""
    steps = _time_steps(inputs, time_major, "bidirectional_dynamic_rnn")
    out_fw, out_bw, state_fw, state_bw = _bidirectional(
        cell_fw, cell_bw, steps, initial_state_fw, initial_state_bw, dtype, sequence_length,
        scope)
    axis = 0 if time_major else 1
    return (array.stack(out_fw, axis=axis), array.stack(out_bw, axis=axis)), \
        (state_fw, state_bw)
