"""Random graphs on shapes large enough for full GEMM register tiles, packed B panels,
vector loop bodies with remainders and parallel shares: compiled (and fused) against the
interpreter. (The fuzzers' graphs use small shapes; these reach the code paths they miss.)"""
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowjit as tf

UNARY = [tf.tanh, tf.sigmoid, tf.nn.relu, lambda t: t * 0.5 + 1.0, tf.abs, tf.square]


@st.composite
def programs(draw):
    m = draw(st.integers(1, 140))
    k = draw(st.integers(1, 300))
    n = draw(st.integers(1, 140))
    steps = draw(st.lists(st.sampled_from(["unary", "bias", "reduce0", "reduce1", "softmax",
                                           "matmul_t", "transpose"]), min_size=1, max_size=4))
    return m, k, n, steps, draw(st.integers(0, 2 ** 31 - 1)), draw(st.lists(
        st.integers(0, len(UNARY) - 1), min_size=4, max_size=4))


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_big_random_graphs_match_the_interpreter(program):
    m, k, n, steps, seed, unary = program
    rng = np.random.default_rng(seed)
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [m, k])
        w = tf.Variable((rng.standard_normal((k, n)) / np.sqrt(k)).astype(np.float32))
        h = tf.matmul(x, w)
        outputs = [h]
        for step, u in zip(steps, unary):
            if step == "unary":
                h = UNARY[u](h)
            elif step == "bias":
                h = h + tf.constant(rng.standard_normal(h.shape.as_list()[-1:])
                                    .astype(np.float32))
            elif step in ("reduce0", "reduce1"):
                outputs.append(tf.reduce_sum(h, int(step[-1])))
            elif step == "softmax":
                h = tf.nn.softmax(h)
            elif step == "matmul_t":
                h = tf.matmul(h, h, transpose_b=True)
            else:
                h = tf.transpose(h)
            outputs.append(h)
        loss = tf.reduce_mean(tf.square(h))
        outputs += tf.gradients(loss, [w, x])
        feed = {x: rng.standard_normal((m, k)).astype(np.float32)}
        with tf.Session(backend="eager") as eager, tf.Session(backend="llvm") as native:
            eager.run(w.initializer)
            native.run(w.initializer)
            reference, compiled = eager.run(outputs, feed), native.run(outputs, feed)
    for want, got in zip(reference, compiled):
        scale = max(1.0, float(np.max(np.abs(want)))) if np.size(want) else 1.0
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4 * scale)
