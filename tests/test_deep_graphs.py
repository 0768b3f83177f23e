"""Deep graphs: every stage walks them without recursion, and compiles them in linear time.

The chains here are 5,000 steps deep, five times Python's default recursion limit, so any walk
that recurses on the depth of the graph (a tensor's inputs, an instruction's operands) fails
with RecursionError. They run on the Session's default backend (FLOWJIT_BACKEND).
"""
import numpy as np

import flowjit as tf

DEPTH = 5000
SCALE = 1e-3  # f(y) = SCALE * sin(y): y drifts from x towards pi, the gradient stays O(1)


def residual_chain(x, depth: int = DEPTH):
    """y = f(y) + y, `depth` times: each y has two consumers (f and the add)."""
    y = x
    for _ in range(depth):
        y = tf.sin(y) * SCALE + y
    return y


def residual_chain_reference(x: np.ndarray, depth: int = DEPTH):
    """The chain's value and d(y)/d(x) in float64, by the chain rule step by step."""
    y, grad = x.astype(np.float64), np.ones(x.shape)
    for _ in range(depth):
        y, grad = np.sin(y) * SCALE + y, grad * (np.cos(y) * SCALE + 1)
    return y, grad


def test_gradients_of_a_deep_residual_chain():
    x = tf.placeholder(tf.float32, [3], name="x")
    y = residual_chain(x)
    (dy_dx,) = tf.gradients(y, x)
    feed = np.array([-0.5, 0.25, 1.0], np.float32)
    with tf.Session() as sess:
        value, grad = sess.run([y, dy_dx], {x: feed})
    expected_value, expected_grad = residual_chain_reference(feed)
    np.testing.assert_allclose(value, expected_value, rtol=1e-3)
    np.testing.assert_allclose(grad, expected_grad, rtol=2e-3)
