"""tf.TensorArray (ops/tensor_array.py): written and read in tf.while_loop bodies (an RNN as
TF1 tutorials write it) and outside them, against numpy, its gradients against finite
differences, on the backend FLOWJIT_BACKEND selects; and its errors."""
import numpy as np
import pytest

import flowjit as tf
from flowjit import errors
from test_gradients import check_gradients

RNG = np.random.default_rng(5)
XS = RNG.standard_normal((4, 3))


def _rnn(x):
    """h_t = tanh(x_t + 0.5 h_{t-1}), every h_t written to an array that enters the loop
    before any write (its element shape comes from the body's write)."""
    steps = x.shape.as_list()[0]
    inputs = tf.TensorArray(x.dtype, size=steps).unstack(x)
    outputs = tf.TensorArray(x.dtype, size=steps)

    def body(t, h, out):
        h = tf.tanh(inputs.read(t) + h * 0.5)
        return t + 1, h, out.write(t, h)
    _, _, outputs = tf.while_loop(lambda t, *_: t < steps, body,
                                  (0, tf.zeros(x.shape[1:], x.dtype), outputs))
    return outputs.stack()


def test_an_rnn_written_with_tensor_arrays_matches_numpy():
    x = tf.placeholder(tf.float64, [4, 3])
    ys = _rnn(x)
    assert ys.shape.as_list() == [4, 3]
    with tf.Session() as sess:
        got = sess.run(ys, {x: XS})
    h, want = np.zeros(3), []
    for row in XS:
        h = np.tanh(row + 0.5 * h)
        want.append(h)
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_tensor_array_loops_are_differentiable():
    check_gradients(_rnn, XS)


def test_methods_outside_loops():
    x = tf.placeholder(tf.float32, [3, 2])
    ta = tf.TensorArray(tf.float32, size=3, element_shape=[2])
    ta = ta.write(2, x[0]).write(0, x[1] * 2.0)
    scattered = tf.TensorArray(tf.float32, size=3).scatter([2, 0], x[:2] + 1.0)
    whole = tf.TensorArray(tf.float32, size=3).unstack(x)
    fetches = [ta.stack(), ta.read(1), ta.gather([2, 0]), whole.concat(), ta.size(),
               scattered.stack()]
    xv = np.arange(6, dtype=np.float32).reshape(3, 2)
    with tf.Session() as sess:
        stack, read, gathered, concat, size, scatter = sess.run(fetches, {x: xv})
    np.testing.assert_array_equal(stack, [xv[1] * 2, [0, 0], xv[0]])
    np.testing.assert_array_equal(read, [0, 0])
    np.testing.assert_array_equal(gathered, [xv[0], xv[1] * 2])
    np.testing.assert_array_equal(concat, xv.reshape(-1))
    assert size == 3
    np.testing.assert_array_equal(scatter, [xv[1] + 1, [0, 0], xv[0] + 1])


def test_size_from_a_run_time_shape():
    x = tf.placeholder(tf.float32, [None, 2])
    n = tf.shape(x)[0]
    ta = tf.TensorArray(tf.float32, size=n, element_shape=[2])
    _, ta = tf.while_loop(lambda i, _: i < n, lambda i, a: (i + 1, a.write(i, tf.gather(x, i) * 3.0)),
                          (0, ta))
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(ta.stack(), {x: np.ones((5, 2))}),
                                   np.full((5, 2), 3.0))


def test_errors_name_the_array_and_what_was_wrong():
    ta = tf.TensorArray(tf.float32, size=2, tensor_array_name="acc")
    with pytest.raises(errors.UnimplementedError, match="'acc'.*element_shape"):
        ta.read(0)
    written = ta.write(0, tf.ones([3]))
    with pytest.raises(errors.ShapeError, match="'acc'.*shape"):
        written.write(1, tf.ones([4]))
    past_end = written.write(2, tf.ones([3]))
    with tf.Session() as sess:
        with pytest.raises(errors.IndexOutOfRangeError, match="index 2"):
            sess.run(past_end.stack())
    never = tf.TensorArray(tf.float32, size=2, tensor_array_name="never")
    with pytest.raises(errors.UnimplementedError, match="never.*element_shape"):
        tf.while_loop(lambda i, a: i < 2, lambda i, a: (i + 1, a), (0, never))
    with pytest.raises(ValueError, match="size"):
        tf.TensorArray(tf.float32)
    with pytest.raises(errors.UnimplementedError, match="dynamic_size=True with size=0"):
        tf.TensorArray(tf.float32, size=0, dynamic_size=True)
