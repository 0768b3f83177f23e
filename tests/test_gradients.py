"""tf.gradients: every rule against central finite differences, and TF1's semantics.

Tolerance: inputs and outputs are float64; the numeric derivative uses central differences
with step 1e-6, whose truncation error is ~1e-12 and rounding error ~1e-10 relative, so we
require |analytic - numeric| <= 1e-6 * |numeric| + 1e-7. Inputs avoid the kinks of
non-smooth ops (0 for relu/abs, ties for max/min).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import flowjit as tf

RTOL, ATOL, STEP = 1e-6, 1e-7, 1e-6


def away_from(values, points, margin=0.1):
    """Pushes values at least `margin` away from each of `points` (kinks)."""
    values = np.array(values, dtype=np.float64)
    for p in points:
        close = np.abs(values - p) < margin
        values[close] = p + margin * np.where(values[close] >= p, 1.5, -1.5)
    return values


def check_gradients(build, *inputs, seed=0):
    """Compares tf.gradients of sum(build(*xs) * w) (random w) with finite differences."""
    rng = np.random.default_rng(seed)
    with tf.Graph().as_default():
        xs = [tf.placeholder(tf.float64, np.shape(x)) for x in inputs]
        out = build(*xs)
        outs = out if isinstance(out, (list, tuple)) else [out]
        weights = [rng.standard_normal(o.shape.as_list()) for o in outs]
        loss = tf.add_n([tf.reduce_sum(o * w) for o, w in zip(outs, weights)])
        grads = tf.gradients(loss, xs)
        with tf.Session() as sess:
            feed = dict(zip(xs, inputs))
            analytic = sess.run([g for g in grads if g is not None], feed)
            analytic_iter = iter(analytic)
            for i, (x, g) in enumerate(zip(inputs, grads)):
                numeric = _numeric(sess, loss, xs, list(inputs), i)
                got = next(analytic_iter) if g is not None else np.zeros_like(numeric)
                np.testing.assert_allclose(got, numeric, rtol=RTOL, atol=ATOL,
                                           err_msg=f"gradient of input {i}")


def _numeric(sess, loss, xs, inputs, i):
    x = np.array(inputs[i], dtype=np.float64)
    grad = np.zeros_like(x)
    for j in np.ndindex(x.shape):
        values = []
        for delta in (STEP, -STEP):
            shifted = x.copy()
            shifted[j] += delta
            inputs[i] = shifted
            values.append(sess.run(loss, dict(zip(xs, inputs))))
        grad[j] = (values[0] - values[1]) / (2 * STEP)
    inputs[i] = x
    return grad


R = np.random.default_rng(42)
M34 = R.standard_normal((3, 4))
M34b = R.standard_normal((3, 4))
V4 = R.standard_normal(4)
POS34 = np.abs(M34) + 0.5
NONZERO34 = away_from(M34, [0.0])

UNARY_CASES = {
    "negative": (tf.negative, M34), "abs": (tf.abs, NONZERO34),
    "reciprocal": (tf.reciprocal, NONZERO34), "square": (tf.square, M34),
    "sqrt": (tf.sqrt, POS34), "rsqrt": (tf.rsqrt, POS34), "exp": (tf.exp, M34),
    "expm1": (tf.expm1, M34), "log": (tf.log, POS34), "log1p": (tf.log1p, POS34),
    "sin": (tf.sin, M34), "cos": (tf.cos, M34), "tanh": (tf.tanh, M34),
    "sigmoid": (tf.sigmoid, M34), "relu": (tf.nn.relu, NONZERO34),
    "relu6": (tf.nn.relu6, away_from(M34 * 4, [0.0, 6.0])),
    "softplus": (tf.nn.softplus, M34), "elu": (tf.nn.elu, NONZERO34),
    "leaky_relu": (tf.nn.leaky_relu, NONZERO34), "identity": (tf.identity, M34),
    "clip_by_value": (lambda x: tf.clip_by_value(x, -0.5, 0.5), away_from(M34, [-0.5, 0.5])),
    "softmax": (tf.nn.softmax, M34), "log_softmax": (tf.nn.log_softmax, M34),
    "softmax_axis0": (lambda x: tf.nn.softmax(x, axis=0), M34),
    "l2_loss": (tf.nn.l2_loss, M34),
    "x_pow_const": (lambda x: x ** 3.0, M34),
}


@pytest.mark.parametrize("name", sorted(UNARY_CASES))
def test_unary_gradient(name):
    fn, x = UNARY_CASES[name]
    check_gradients(fn, x)


BINARY_CASES = {
    "add": tf.add, "subtract": tf.subtract, "multiply": tf.multiply,
    "divide": lambda x, y: x / (tf.abs(y) + 0.5),
    "maximum": tf.maximum, "minimum": tf.minimum,
    "pow": lambda x, y: tf.pow(tf.abs(x) + 0.5, y),
    "squared_difference": tf.squared_difference,
    "where": lambda x, y: tf.where(tf.constant(R.standard_normal((3, 4)) > 0), x, y + x * 0),
}
SHAPE_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((3, 1), (1, 4)), ((), (3, 4))]


BINARY_PARAMS = [(name, shapes) for name in sorted(BINARY_CASES) for shapes in SHAPE_PAIRS
                 if name != "where" or shapes == SHAPE_PAIRS[0]]  # where: equal shapes


@pytest.mark.parametrize("name,shapes", BINARY_PARAMS, ids=str)
def test_binary_gradient_with_broadcasting(name, shapes):
    rng = np.random.default_rng(len(name))
    x = rng.standard_normal(shapes[0])
    y = rng.standard_normal(shapes[1])
    if name in ("maximum", "minimum"):  # no ties
        y = y + 0.25 * np.sign(np.broadcast_to(y, np.broadcast(x, y).shape).mean() or 1)
        x = np.where(np.abs(x - np.mean(y)) < 0.05, x + 0.3, x)
    check_gradients(BINARY_CASES[name], x, y)


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_matmul_gradient(ta, tb):
    a = R.standard_normal((4, 3) if ta else (3, 4))
    b = R.standard_normal((5, 4) if tb else (4, 5))
    check_gradients(lambda x, y: tf.matmul(x, y, transpose_a=ta, transpose_b=tb), a, b)


def test_batched_and_broadcast_matmul_gradient():
    check_gradients(tf.matmul, R.standard_normal((2, 3, 4)), R.standard_normal((2, 4, 5)))
    check_gradients(tf.matmul, R.standard_normal((2, 3, 4)), R.standard_normal((4, 5)))


def test_tensordot_gradient():
    check_gradients(lambda x, y: tf.tensordot(x, y, axes=[[1], [0]]),
                    R.standard_normal((3, 4)), R.standard_normal((4, 2)))


REDUCTIONS = {"sum": tf.reduce_sum, "mean": tf.reduce_mean, "max": tf.reduce_max,
              "min": tf.reduce_min, "prod": tf.reduce_prod}


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
@pytest.mark.parametrize("axis,keepdims", [(None, False), (0, False), (-1, True),
                                           ((0, 2), False), ((1,), True)])
def test_reduction_gradient(name, axis, keepdims):
    x = np.random.default_rng(7).permutation(24).reshape(2, 3, 4) / 7.0 + 0.3  # no ties
    check_gradients(lambda t: REDUCTIONS[name](t, axis=axis, keepdims=keepdims), x)


def test_max_gradient_is_shared_between_ties_like_tf1():
    x = tf.constant([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]], tf.float64)
    (g,) = tf.gradients(tf.reduce_max(x, axis=1), x)
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(g), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    (g2,) = tf.gradients(tf.maximum(x, 2.0), x)
    with tf.Session() as sess:  # a tie goes to the first operand (x >= y)
        np.testing.assert_allclose(sess.run(g2), [[0, 1, 1], [1, 1, 1]])


ARRAY_CASES = {
    "reshape": (lambda x: tf.reshape(x, [2, 6]), M34),
    "transpose": (lambda x: tf.transpose(x), M34),
    "transpose_3d": (lambda x: tf.transpose(x, [1, 2, 0]), R.standard_normal((2, 3, 4))),
    "squeeze": (lambda x: tf.squeeze(x, [1]), R.standard_normal((3, 1, 4))),
    "expand_dims": (lambda x: tf.expand_dims(x, 1), M34),
    "concat": (lambda x: tf.concat([x, 2 * x, tf.square(x)], axis=1), M34),
    "split": (lambda x: tf.split(x, [1, 3], axis=1), M34),
    "split_one_used": (lambda x: tf.split(x, 2, axis=1)[1], M34),
    "stack": (lambda x: tf.stack([x, tf.exp(x)], axis=1), M34),
    "unstack": (lambda x: tf.unstack(x, axis=1), M34),
    "unstack_one_used": (lambda x: tf.unstack(x)[2], M34),
    "slice": (lambda x: tf.slice(x, [1, 1], [2, -1]), M34),
    "getitem": (lambda x: x[1:, ::-2], M34),
    "getitem_index_newaxis": (lambda x: x[1, None, 1:3], M34),
    "gather_repeated": (lambda x: tf.gather(x, [2, 0, 2]), M34),
    "gather_axis1": (lambda x: tf.gather(x, [[3, 1], [1, 1]], axis=1), M34),
    "tile": (lambda x: tf.tile(x, [2, 3]), M34),
    "pad": (lambda x: tf.pad(x, [[1, 0], [2, 3]]), M34),
    "broadcast_to": (lambda x: tf.broadcast_to(x, [2, 3, 4]), V4),
    "add_n": (lambda x: tf.add_n([x, tf.square(x), x]), M34),
    "bias_add": (lambda x: tf.nn.bias_add(x, tf.sin(x[0])), M34),
    "segment_sum": (lambda x: tf.unsorted_segment_sum(x, [0, 2, 0], 3), M34),
}


@pytest.mark.parametrize("name", sorted(ARRAY_CASES))
def test_array_op_gradient(name):
    fn, x = ARRAY_CASES[name]
    check_gradients(fn, x)


def test_cross_entropy_gradients():
    labels = np.random.default_rng(3).dirichlet(np.ones(4), size=3)
    check_gradients(lambda z: tf.nn.softmax_cross_entropy_with_logits(labels=labels, logits=z),
                    M34)
    check_gradients(lambda z, y: tf.nn.softmax_cross_entropy_with_logits_v2(labels=y, logits=z),
                    M34, labels)
    check_gradients(lambda z: tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.constant([1, 0, 3]), logits=z), M34)
    check_gradients(lambda z, y: tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=z),
                    M34, (M34b > 0).astype(np.float64))


def test_stop_gradient_blocks_its_input():
    x = tf.placeholder(tf.float64, [3])
    (g,) = tf.gradients(tf.reduce_sum(x * tf.stop_gradient(tf.exp(x))), x)
    with tf.Session() as sess:
        values = np.array([0.0, 1.0, -2.0])
        np.testing.assert_allclose(sess.run(g, {x: values}), np.exp(values))


def test_cast_gradient_is_cast_back():
    x = tf.placeholder(tf.float64, [3])
    w = np.array([0.5, -2.0, 3.0], np.float32)
    (g,) = tf.gradients(tf.reduce_sum(tf.cast(x, tf.float32) * w), x)
    assert g.dtype is tf.float64
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(g, {x: [1.0, 2.0, 3.0]}), w.astype(np.float64))


def test_second_derivative():
    x = tf.placeholder(tf.float64, [3])
    (dy,) = tf.gradients(x ** 3.0, x)
    (d2y,) = tf.gradients(dy, x)
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(d2y, {x: [1.0, 2.0, -1.0]}), [6.0, 12.0, -6.0])


# -- semantics ------------------------------------------------------------------------------
def test_unconnected_xs_get_none():
    x = tf.placeholder(tf.float32, [2])
    z = tf.placeholder(tf.float32, [2])
    y = tf.reduce_sum(x * 2.0)
    assert tf.gradients(y, [x, z])[1] is None
    assert tf.gradients(y, z) == [None]
    assert tf.gradients(tf.stop_gradient(x) * 3.0, x) == [None]


def test_gradients_sum_over_paths_and_ys():
    x = tf.placeholder(tf.float32, [])
    y1 = x * x        # 2x
    y2 = 3.0 * x      # 3
    (g,) = tf.gradients([y1, y2], x)
    (g_twice,) = tf.gradients(y1 + y1 * x, x)  # 2x + 3x^2
    with tf.Session() as sess:
        assert sess.run(g, {x: 2.0}) == 7.0
        assert sess.run(g_twice, {x: 2.0}) == 16.0


def test_grad_ys_and_stop_gradients():
    x = tf.placeholder(tf.float32, [2])
    y = x * 3.0
    (g,) = tf.gradients(y, x, grad_ys=tf.constant([1.0, 10.0]))
    a = x * 2.0
    b = a * x  # 2x^2: through a (2x) and directly (a)
    (g_stop,) = tf.gradients(b, x, stop_gradients=[a])
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(g, {x: [1.0, 1.0]}), [3.0, 30.0])
        np.testing.assert_array_equal(sess.run(g_stop, {x: [1.0, 2.0]}), [2.0, 4.0])


def test_gradient_with_respect_to_a_variable_and_an_intermediate():
    w = tf.Variable([1.0, 2.0], name="w")
    h = w * 3.0
    loss = tf.reduce_sum(h * h)
    g_w, g_h = tf.gradients(loss, [w, h])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        gw, gh = sess.run([g_w, g_h])
    np.testing.assert_allclose(gh, [6.0, 12.0])
    np.testing.assert_allclose(gw, [18.0, 36.0])


def test_no_gradient_through_an_assignment_is_a_lookup_error():
    v = tf.Variable(1.0)
    x = tf.placeholder(tf.float32, [])
    with pytest.raises(LookupError, match="No gradient defined for operation"):
        tf.gradients(tf.assign(v, x * 2.0), x)


def test_gradient_of_integer_y_is_a_type_error():
    x = tf.placeholder(tf.float32, [3])
    with pytest.raises(TypeError, match="int"):
        tf.gradients(tf.argmax(x), x)


def test_gradient_is_optimized_with_the_forward_graph():
    from flowjit.compiler import CompileOptions, optimize
    from flowjit.ir.core import TensorType
    from flowjit.lower import lower
    x = tf.placeholder(tf.float32, [4, 3], name="x")
    w = tf.Variable(np.ones((3, 2), np.float32), name="w")
    loss = tf.reduce_mean(tf.square(tf.nn.relu(tf.matmul(x, w))))
    (g,) = tf.gradients(loss, w)
    func = lower([loss, g], [], {x: TensorType(tf.float32, (4, 3))})
    text = str(optimize(func, CompileOptions(verify=True)))
    assert "gradients" not in text.split("{")[0]
    assert text.count("= matmul") == 0 or text.count("fusion") >= 1
    assert text.count("relu") == 1  # the forward relu is computed once and reused


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["exp", "tanh", "square", "sin", "mul_w", "add_w", "sigmoid",
                                 "mean", "softplus"]), min_size=1, max_size=6),
       st.integers(0, 1000))
def test_random_compositions_match_finite_differences(chain, seed):
    w = np.random.default_rng(seed).standard_normal((2, 3))

    def build(x):
        for step in chain:
            if step == "mul_w":
                x = x * w[: x.shape[0]] if x.shape.ndims == 2 else x * 1.5
            elif step == "add_w":
                x = x + 0.5
            elif step == "mean":
                x = tf.reduce_mean(x, axis=-1, keepdims=True) * x
            elif step == "softplus":
                x = tf.nn.softplus(x)
            elif step in ("exp", "square"):  # squash first so chains cannot overflow
                x = getattr(tf, step)(tf.tanh(x))
            else:
                x = getattr(tf, step)(x)
        return x
    x0 = np.random.default_rng(seed + 1).uniform(-1, 1, (2, 3))
    check_gradients(build, x0, seed=seed)
