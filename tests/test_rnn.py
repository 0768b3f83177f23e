"""Recurrent cells and networks: TF1's variable names, each cell step by step against numpy
written from the cell's equations (with the fetched variables), sequence_length masking,
time_major, the bidirectional networks, and gradients against finite differences."""
import numpy as np
import pytest

import flowjit as tf
from flowjit import errors

R = np.random.default_rng(3)
rnn_cell = tf.nn.rnn_cell


@pytest.fixture(autouse=True)
def fresh_graph():
    with tf.Graph().as_default() as graph:
        yield graph


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def np_step(kind, cell, weights, x, state):
    """One step of a cell in numpy, from its equations."""
    if kind == "rnn":
        h = np.tanh(np.concatenate([x, state], 1) @ weights["kernel"] + weights["bias"])
        return h, h
    if kind == "gru":
        xh = np.concatenate([x, state], 1)
        r, u = np.split(sigmoid(xh @ weights["gates/kernel"] + weights["gates/bias"]), 2, 1)
        c = np.tanh(np.concatenate([x, r * state], 1) @ weights["candidate/kernel"]
                    + weights["candidate/bias"])
        h = u * state + (1 - u) * c
        return h, h
    c_prev, m_prev = state
    z = np.concatenate([x, m_prev], 1) @ weights["kernel"] + weights["bias"]
    i, j, f, o = np.split(z, 4, 1)
    peep = kind == "lstm_peep"
    fg = sigmoid(f + 1.0 + (weights["w_f_diag"] * c_prev if peep else 0))
    ig = sigmoid(i + (weights["w_i_diag"] * c_prev if peep else 0))
    c = fg * c_prev + ig * np.tanh(j)
    if peep:
        c = np.clip(c, -0.5, 0.5)
    og = sigmoid(o + (weights["w_o_diag"] * c if peep else 0))
    m = og * np.tanh(c)
    if peep:
        m = m @ weights["projection/kernel"]
    return m, (c, m)


CELLS = {
    "rnn": (lambda: rnn_cell.BasicRNNCell(4), "basic_rnn_cell", ["kernel", "bias"]),
    "lstm": (lambda: rnn_cell.BasicLSTMCell(4), "basic_lstm_cell", ["kernel", "bias"]),
    "lstm_peep": (lambda: rnn_cell.LSTMCell(4, use_peepholes=True, cell_clip=0.5, num_proj=3),
                  "lstm_cell", ["kernel", "bias", "w_f_diag", "w_i_diag", "w_o_diag",
                                "projection/kernel"]),
    "gru": (lambda: rnn_cell.GRUCell(4), "gru_cell", ["gates/kernel", "gates/bias",
                                                      "candidate/kernel", "candidate/bias"]),
}


def zero_state(kind, batch):
    if kind.startswith("lstm"):
        return (np.zeros((batch, 4)), np.zeros((batch, 3 if kind == "lstm_peep" else 4)))
    return np.zeros((batch, 4))


def np_rnn(kind, weights, xs, lengths):
    """xs [batch, time, depth]: outputs and final state with TF1's masking."""
    batch, steps, _ = xs.shape
    state = zero_state(kind, batch)
    outputs = []
    for t in range(steps):
        out, new = np_step(kind, None, weights, xs[:, t], state)
        alive = (lengths > t)[:, None]
        outputs.append(np.where(alive, out, 0))
        if isinstance(new, tuple):
            state = tuple(np.where(alive, a, b) for a, b in zip(new, state))
        else:
            state = np.where(alive, new, state)
    return np.stack(outputs, 1), state


@pytest.mark.parametrize("time_major", [False, True])
@pytest.mark.parametrize("kind", sorted(CELLS))
def test_dynamic_rnn_matches_numpy_with_masking(kind, time_major):
    make, name, weight_names = CELLS[kind]
    xs = R.standard_normal((3, 5, 2))
    lengths = np.array([5, 2, 0])
    x = tf.placeholder(tf.float64, [5, 3, 2] if time_major else [3, 5, 2])
    outputs, state = tf.nn.dynamic_rnn(make(), x, sequence_length=lengths, dtype=tf.float64,
                                       time_major=time_major)
    assert [v.name for v in tf.trainable_variables()] == [f"rnn/{name}/{w}:0"
                                                         for w in weight_names]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        weights = dict(zip(weight_names, sess.run(tf.trainable_variables())))
        got_out, got_state = sess.run([outputs, state],
                                      {x: xs.transpose(1, 0, 2) if time_major else xs})
    expected_out, expected_state = np_rnn(kind, weights, xs, lengths)
    if time_major:
        expected_out = expected_out.transpose(1, 0, 2)
    np.testing.assert_allclose(got_out, expected_out, rtol=1e-10, atol=1e-12)
    lstm = kind.startswith("lstm")
    assert isinstance(state, rnn_cell.LSTMStateTuple) == lstm
    for got, want in zip(got_state if lstm else [got_state],
                         expected_state if lstm else [expected_state]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_static_rnn_multi_cell_and_dropout_wrapper():
    cells = [rnn_cell.BasicLSTMCell(3), rnn_cell.DropoutWrapper(rnn_cell.GRUCell(2),
                                                                output_keep_prob=1.0)]
    stacked = rnn_cell.MultiRNNCell(cells)
    inputs = [tf.placeholder(tf.float64, [2, 4]) for _ in range(3)]
    outputs, state = tf.contrib.rnn.static_rnn(stacked, inputs, dtype=tf.float64)
    assert [v.name for v in tf.trainable_variables()] == [
        "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/kernel:0",
        "rnn/multi_rnn_cell/cell_0/basic_lstm_cell/bias:0",
        "rnn/multi_rnn_cell/cell_1/gru_cell/gates/kernel:0",
        "rnn/multi_rnn_cell/cell_1/gru_cell/gates/bias:0",
        "rnn/multi_rnn_cell/cell_1/gru_cell/candidate/kernel:0",
        "rnn/multi_rnn_cell/cell_1/gru_cell/candidate/bias:0"]
    assert len(outputs) == 3 and isinstance(state, tuple) and len(state) == 2
    xs = R.standard_normal((3, 2, 4))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        values = sess.run(tf.trainable_variables())
        got = sess.run(outputs, dict(zip(inputs, xs)))
    lstm = dict(zip(["kernel", "bias"], values[:2]))
    gru = dict(zip(["gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"],
                   values[2:]))
    s1, s2 = (np.zeros((2, 3)), np.zeros((2, 3))), np.zeros((2, 2))
    for t in range(3):
        h, s1 = np_step("lstm", None, lstm, xs[t], s1)
        h, s2 = np_step("gru", None, gru, h, s2)
        np.testing.assert_allclose(got[t], h, rtol=1e-10, atol=1e-12)
    tf.contrib.rnn.static_rnn(rnn_cell.GRUCell(2), inputs, dtype=tf.float64)
    with pytest.raises(ValueError, match="rnn/gru_cell/gates/kernel already exists"):
        tf.contrib.rnn.static_rnn(rnn_cell.GRUCell(2), inputs, dtype=tf.float64)


def test_dropout_wrapper_drops_outputs():
    cell = rnn_cell.DropoutWrapper(rnn_cell.BasicRNNCell(200), output_keep_prob=0.5, seed=3)
    out, _ = tf.nn.dynamic_rnn(cell, tf.ones([4, 2, 3]), dtype=tf.float32)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got = sess.run(out)
    assert 0.4 < np.mean(got == 0) < 0.6


@pytest.mark.parametrize("dynamic", [True, False])
def test_bidirectional_rnn_reverses_within_each_length(dynamic):
    xs = R.standard_normal((2, 4, 3))
    lengths = np.array([4, 2])
    fw, bw = rnn_cell.GRUCell(4), rnn_cell.BasicRNNCell(4)
    x = tf.constant(xs)
    if dynamic:
        (out_fw, out_bw), (s_fw, s_bw) = tf.nn.bidirectional_dynamic_rnn(
            fw, bw, x, sequence_length=lengths, dtype=tf.float64)
    else:
        outs, s_fw, s_bw = tf.nn.static_bidirectional_rnn(
            fw, bw, tf.unstack(x, axis=1), sequence_length=lengths, dtype=tf.float64)
        out_fw, out_bw = tf.stack(outs, 1)[:, :, :4], tf.stack(outs, 1)[:, :, 4:]
    names = [v.name for v in tf.trainable_variables()]
    assert names[0] == "bidirectional_rnn/fw/gru_cell/gates/kernel:0"
    assert names[-1] == "bidirectional_rnn/bw/basic_rnn_cell/bias:0"
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        values = sess.run(tf.trainable_variables())
        got_fw, got_bw, got_sbw = sess.run([out_fw, out_bw, s_bw])
    gru = dict(zip(["gates/kernel", "gates/bias", "candidate/kernel", "candidate/bias"],
                   values[:4]))
    basic = dict(zip(["kernel", "bias"], values[4:]))
    expected_fw, _ = np_rnn("gru", gru, xs, lengths)
    reversed_xs = np.stack([np.concatenate([xs[b, :n][::-1], xs[b, n:]]) for b, n in
                            enumerate(lengths)])
    out_rev, expected_sbw = np_rnn("rnn", basic, reversed_xs, lengths)
    expected_bw = np.stack([np.concatenate([out_rev[b, :n][::-1], out_rev[b, n:]])
                            for b, n in enumerate(lengths)])
    np.testing.assert_allclose(got_fw, expected_fw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_bw, expected_bw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_sbw, expected_sbw, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["lstm_peep", "gru"])
def test_rnn_gradients_match_finite_differences(kind):
    xs = R.standard_normal((2, 3, 2))
    x = tf.placeholder(tf.float64, [2, 3, 2])
    outputs, _ = tf.nn.dynamic_rnn(CELLS[kind][0](), x, sequence_length=[3, 2],
                                   dtype=tf.float64)
    w = R.standard_normal(outputs.shape.as_list())
    loss = tf.reduce_sum(outputs * w)
    variables = tf.trainable_variables()
    grads = tf.gradients(loss, [x, variables[0]])
    step = 1e-6
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got_x, got_k = sess.run(grads, {x: xs})
        kernel = sess.run(variables[0])
        for i in range(xs.size):
            d = np.zeros(xs.size)
            d[i] = step
            d = d.reshape(xs.shape)
            numeric = (sess.run(loss, {x: xs + d}) - sess.run(loss, {x: xs - d})) / (2 * step)
            assert got_x.flat[i] == pytest.approx(numeric, rel=1e-6, abs=1e-7)
        for i in range(0, kernel.size, 7):
            values = []
            for sign in (1, -1):
                shifted = kernel.copy()
                shifted.flat[i] += sign * step
                variables[0].load(shifted, sess)
                values.append(sess.run(loss, {x: xs}))
            variables[0].load(kernel, sess)
            assert got_k.flat[i] == pytest.approx((values[0] - values[1]) / (2 * step),
                                                  rel=1e-6, abs=1e-7)


def test_unknown_time_dimension_is_an_unimplemented_error_naming_the_tensor():
    x = tf.placeholder(tf.float32, [None, None, 3], name="seq")
    with pytest.raises(errors.UnimplementedError, match=r"time dimension of 'seq:0'.*unrolls"):
        tf.nn.dynamic_rnn(rnn_cell.GRUCell(2), x, dtype=tf.float32)


def test_zero_state_with_a_run_time_batch_size():
    x = tf.placeholder(tf.float32, [None, 2, 3])
    out, state = tf.nn.dynamic_rnn(rnn_cell.BasicLSTMCell(5), x, dtype=tf.float32)
    assert out.shape.as_list() == [None, 2, 5] and state.h.shape.as_list() == [None, 5]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run(out, {x: np.ones((7, 2, 3))}).shape == (7, 2, 5)
