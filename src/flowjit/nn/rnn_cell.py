"""`tf.nn.rnn_cell` (also `tf.contrib.rnn`): recurrent cells with TF1's variable names
('rnn/basic_lstm_cell/kernel', 'rnn/multi_rnn_cell/cell_0/gru_cell/gates/bias', ...).

A cell makes its variables on its first call, in the variable scope it is called in (the
rnn's 'rnn' scope) under its own name, and uses the same variables on every later call (each
unrolled time step), as TF1's cells do.
"""
from __future__ import annotations

import collections
from typing import Any, Callable, Optional

from flowjit import errors
from flowjit.graph.core import get_default_graph
from flowjit.initializers import Constant, Zeros
from flowjit.ops import array, creation, math, nn
from flowjit.ops.base import convert_to_tensor
from flowjit.variables import get_variable, variable_scope


class LSTMStateTuple(collections.namedtuple("LSTMStateTuple", ("c", "h"))):
    """An LSTM's state: the memory `c` and the output `h`."""

    __slots__ = ()

    @property
    def dtype(self):
        return self.c.dtype


def map_structure(fn: Callable, *structures: Any) -> Any:
    """fn applied to the leaves (tensors) of equally nested tuples/namedtuples/lists."""
    first = structures[0]
    if isinstance(first, (tuple, list)):
        items = [map_structure(fn, *parts) for parts in zip(*structures)]
        if hasattr(first, "_fields"):
            return type(first)(*items)
        return type(first)(items)
    return fn(*structures)


def flatten(structure: Any) -> list:
    if isinstance(structure, (tuple, list)):
        return [leaf for part in structure for leaf in flatten(part)]
    return [structure]


class RNNCell:
    """The cell interface: `output, new_state = cell(inputs, state)`, `state_size`,
    `output_size`, `zero_state(batch_size, dtype)`."""

    default_name = "rnn_cell"

    def __init__(self, name: Optional[str] = None, reuse: Any = None) -> None:
        self.name = name
        self._reuse = reuse
        self._weights: Optional[dict] = None

    num_units = 0

    @property
    def state_size(self) -> Any:
        return self.num_units

    @property
    def output_size(self) -> int:
        return self.num_units

    def zero_state(self, batch_size, dtype) -> Any:
        with get_default_graph().name_scope(type(self).__name__ + "ZeroState"):
            return map_structure(lambda size: creation.zeros([batch_size, size], dtype),
                                 self.state_size)

    def __call__(self, inputs, state, scope=None):
        inputs = convert_to_tensor(inputs)
        if self._weights is None:
            depth = inputs.shape.dims[-1] if inputs.shape.dims else None
            if depth is None:
                raise errors.ShapeError(f"{type(self).__name__}: the last dimension of the "
                                        f"inputs {inputs.describe()} must be known, got shape "
                                        f"{inputs.shape}")
            with variable_scope(scope or self.name or self.default_name, reuse=self._reuse):
                self._weights = self.build(depth, inputs.dtype)
        with get_default_graph().name_scope(self.name or self.default_name):
            return self.call(inputs, state)

    def build(self, depth: int, dtype) -> dict:
        return {}

    def call(self, inputs, state):
        raise NotImplementedError


def _linear(x, h, kernel, bias):
    return nn.bias_add(math.matmul(array.concat([x, h], 1), kernel), bias)


class BasicRNNCell(RNNCell):
    """h' = activation([x, h] @ kernel + bias)."""

    default_name = "basic_rnn_cell"

    def __init__(self, num_units: int, activation=None, reuse=None, name=None, dtype=None):
        super().__init__(name, reuse)
        self.num_units = num_units
        self.activation = activation or math.tanh

    def build(self, depth, dtype):
        n = self.num_units
        return {"kernel": get_variable("kernel", [depth + n, n], dtype),
                "bias": get_variable("bias", [n], dtype, initializer=Zeros())}

    def call(self, inputs, state):
        w = self._weights
        h = self.activation(_linear(inputs, state, w["kernel"], w["bias"]))
        return h, h


class BasicLSTMCell(RNNCell):
    """Gates i, j, f, o from [x, h] @ kernel + bias; c' = c * sigmoid(f + forget_bias) +
    sigmoid(i) * tanh(j); h' = tanh(c') * sigmoid(o). The state is LSTMStateTuple(c, h)."""

    default_name = "basic_lstm_cell"

    def __init__(self, num_units: int, forget_bias: float = 1.0, state_is_tuple: bool = True,
                 activation=None, reuse=None, name=None, dtype=None):
        super().__init__(name, reuse)
        if not state_is_tuple:
            raise errors.UnimplementedError("LSTM cells need state_is_tuple=True")
        self.num_units = num_units
        self.forget_bias = forget_bias
        self.activation = activation or math.tanh

    @property
    def state_size(self):
        return LSTMStateTuple(self.num_units, self.num_units)

    @property
    def output_size(self):
        return self.num_units

    def build(self, depth, dtype):
        n = self.num_units
        return {"kernel": get_variable("kernel", [depth + n, 4 * n], dtype),
                "bias": get_variable("bias", [4 * n], dtype, initializer=Zeros())}

    def call(self, inputs, state):
        c, h = state
        w = self._weights
        i, j, f, o = array.split(_linear(inputs, h, w["kernel"], w["bias"]), 4, axis=1)
        new_c = math.add(math.multiply(c, math.sigmoid(math.add(f, self.forget_bias))),
                         math.multiply(math.sigmoid(i), self.activation(j)))
        new_h = math.multiply(self.activation(new_c), math.sigmoid(o))
        return new_h, LSTMStateTuple(new_c, new_h)


class LSTMCell(BasicLSTMCell):
    """The LSTM with optional peepholes (w_i_diag, w_f_diag, w_o_diag), cell clipping and
    an output projection (num_proj, 'projection/kernel') with its clipping."""

    default_name = "lstm_cell"

    def __init__(self, num_units: int, use_peepholes: bool = False, cell_clip=None,
                 initializer=None, num_proj=None, proj_clip=None, num_unit_shards=None,
                 num_proj_shards=None, forget_bias: float = 1.0, state_is_tuple: bool = True,
                 activation=None, reuse=None, name=None, dtype=None):
        super().__init__(num_units, forget_bias, state_is_tuple, activation, reuse, name)
        self.use_peepholes, self.cell_clip = use_peepholes, cell_clip
        self.initializer, self.num_proj, self.proj_clip = initializer, num_proj, proj_clip

    @property
    def state_size(self):
        return LSTMStateTuple(self.num_units, self.num_proj or self.num_units)

    @property
    def output_size(self):
        return self.num_proj or self.num_units

    def build(self, depth, dtype):
        n, m = self.num_units, self.num_proj or self.num_units
        weights = {"kernel": get_variable("kernel", [depth + m, 4 * n], dtype,
                                          initializer=self.initializer),
                   "bias": get_variable("bias", [4 * n], dtype, initializer=Zeros())}
        if self.use_peepholes:
            for gate in ("w_f_diag", "w_i_diag", "w_o_diag"):
                weights[gate] = get_variable(gate, [n], dtype, initializer=self.initializer)
        if self.num_proj:
            with variable_scope("projection"):
                weights["projection"] = get_variable("kernel", [n, self.num_proj], dtype,
                                                     initializer=self.initializer)
        return weights

    def call(self, inputs, state):
        c_prev, m_prev = state
        w = self._weights
        i, j, f, o = array.split(_linear(inputs, m_prev, w["kernel"], w["bias"]), 4, axis=1)
        forget = math.add(f, self.forget_bias)
        if self.use_peepholes:
            forget = math.add(forget, math.multiply(w["w_f_diag"], c_prev))
            i = math.add(i, math.multiply(w["w_i_diag"], c_prev))
        c = math.add(math.multiply(math.sigmoid(forget), c_prev),
                     math.multiply(math.sigmoid(i), self.activation(j)))
        if self.cell_clip is not None:
            c = math.clip_by_value(c, -self.cell_clip, self.cell_clip)
        if self.use_peepholes:
            o = math.add(o, math.multiply(w["w_o_diag"], c))
        m = math.multiply(math.sigmoid(o), self.activation(c))
        if self.num_proj:
            m = math.matmul(m, w["projection"])
            if self.proj_clip is not None:
                m = math.clip_by_value(m, -self.proj_clip, self.proj_clip)
        return m, LSTMStateTuple(c, m)


class GRUCell(RNNCell):
    """r, u = sigmoid([x, h] @ gates/kernel + gates/bias) (bias initialized to 1);
    c = tanh([x, r * h] @ candidate/kernel + candidate/bias); h' = u * h + (1 - u) * c."""

    default_name = "gru_cell"

    def __init__(self, num_units: int, activation=None, reuse=None, kernel_initializer=None,
                 bias_initializer=None, name=None, dtype=None):
        super().__init__(name, reuse)
        self.num_units = num_units
        self.activation = activation or math.tanh
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer

    def build(self, depth, dtype):
        n, weights = self.num_units, {}
        for part, width, bias in (("gates", 2 * n, Constant(1.0)), ("candidate", n, Zeros())):
            with variable_scope(part):
                weights[part] = (
                    get_variable("kernel", [depth + n, width], dtype,
                                 initializer=self.kernel_initializer),
                    get_variable("bias", [width], dtype,
                                 initializer=self.bias_initializer or bias))
        return weights

    def call(self, inputs, state):
        w = self._weights
        r, u = array.split(math.sigmoid(_linear(inputs, state, *w["gates"])), 2, axis=1)
        c = self.activation(_linear(inputs, math.multiply(r, state), *w["candidate"]))
        new_h = math.add(math.multiply(u, state), math.multiply(math.subtract(1.0, u), c))
        return new_h, new_h


class MultiRNNCell(RNNCell):
    """Cells stacked: each one's output is the next one's input; the state is the tuple of
    their states ('multi_rnn_cell/cell_<i>/...')."""

    default_name = "multi_rnn_cell"

    def __init__(self, cells, state_is_tuple: bool = True):
        super().__init__()
        if not cells:
            raise ValueError("MultiRNNCell needs at least one cell")
        if not state_is_tuple:
            raise errors.UnimplementedError("MultiRNNCell needs state_is_tuple=True")
        self.cells = list(cells)

    @property
    def state_size(self):
        return tuple(cell.state_size for cell in self.cells)

    @property
    def output_size(self):
        return self.cells[-1].output_size

    def __call__(self, inputs, state, scope=None):
        with variable_scope(scope or self.default_name):
            outputs, states = inputs, []
            for i, (cell, cell_state) in enumerate(zip(self.cells, state)):
                with variable_scope(f"cell_{i}"):
                    outputs, new_state = cell(outputs, cell_state)
                states.append(new_state)
            return outputs, tuple(states)


class DropoutWrapper(RNNCell):
    """Dropout on a cell's inputs, outputs and new state, with keep probabilities (floats
    or tensors)."""

    def __init__(self, cell, input_keep_prob=1.0, output_keep_prob=1.0, state_keep_prob=1.0,
                 variational_recurrent=False, input_size=None, dtype=None, seed=None,
                 dropout_state_filter_visitor=None):
        super().__init__()
        if variational_recurrent:
            raise errors.UnimplementedError("DropoutWrapper(variational_recurrent=True) is "
                                            "not supported")
        self.cell, self.seed = cell, seed
        self.keep = (input_keep_prob, output_keep_prob, state_keep_prob)

    @property
    def state_size(self):
        return self.cell.state_size

    @property
    def output_size(self):
        return self.cell.output_size

    def zero_state(self, batch_size, dtype):
        return self.cell.zero_state(batch_size, dtype)

    def _drop(self, x, keep):
        if isinstance(keep, (int, float)) and keep == 1:
            return x
        return nn.dropout(x, keep_prob=keep, seed=self.seed)

    def __call__(self, inputs, state, scope=None):
        keep_in, keep_out, keep_state = self.keep
        output, new_state = self.cell(self._drop(convert_to_tensor(inputs), keep_in), state,
                                      scope)
        return self._drop(output, keep_out), self._drop_state(new_state, keep_state)

    def _drop_state(self, state, keep):
        """Every part of the state but an LSTM's memory c (TF1's default filter)."""
        if isinstance(state, LSTMStateTuple):
            return LSTMStateTuple(state.c, self._drop(state.h, keep))
        if isinstance(state, tuple):
            return tuple(self._drop_state(s, keep) for s in state)
        return self._drop(state, keep)
