"""`tf.contrib.rnn`: the cells of `tf.nn.rnn_cell` and the static rnn functions."""
from flowjit.nn.rnn import static_bidirectional_rnn, static_rnn  # noqa: F401
from flowjit.nn.rnn_cell import (BasicLSTMCell, BasicRNNCell, DropoutWrapper,  # noqa: F401
                                 GRUCell, LSTMCell, LSTMStateTuple, MultiRNNCell, RNNCell)
