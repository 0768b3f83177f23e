"""tf.nn: activations, softmax, cross-entropies, bias_add, l2_loss and dropout vs numpy.

References are computed in float64 from the textbook formulas (log-sum-exp where the naive
formula would overflow). Tolerances: float64 rtol 1e-6; float32 rtol 1e-5 / atol 1e-6.
"""
import numpy as np
import pytest

import flowjit as tf
from flowjit import errors

F = [np.float32, np.float64]
TF_DTYPE = {np.float32: tf.float32, np.float64: tf.float64}
TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-6, atol=1e-12)}


def run(fetches, feed_dict=None):
    with tf.Session() as sess:
        return sess.run(fetches, feed_dict)


def check(actual, expected, dtype):
    actual = np.asarray(actual)
    assert actual.dtype == np.dtype(dtype)
    assert actual.shape == np.shape(expected)
    assert np.all(np.isfinite(actual))
    np.testing.assert_allclose(actual, expected, **TOL[dtype])


def _log_softmax(x, axis=-1):
    x = np.asarray(x, np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    return x - (m + np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)))


def _softplus(x):
    return np.logaddexp(0.0, np.asarray(x, np.float64))


ACTIVATIONS = [
    ("relu", tf.nn.relu, lambda x: np.maximum(x, 0)),
    ("relu6", tf.nn.relu6, lambda x: np.minimum(np.maximum(x, 0), 6)),
    ("sigmoid", tf.nn.sigmoid, lambda x: 1 / (1 + np.exp(-x))),
    ("tanh", tf.nn.tanh, np.tanh),
    ("softplus", tf.nn.softplus, _softplus),
    ("elu", tf.nn.elu, lambda x: np.where(x > 0, x, np.exp(x) - 1)),
    ("leaky_relu", tf.nn.leaky_relu, lambda x: np.where(x > 0, x, 0.2 * x)),
    ("leaky_relu_0.01", lambda x: tf.nn.leaky_relu(x, alpha=0.01),
     lambda x: np.where(x > 0, x, 0.01 * x)),
]


@pytest.mark.parametrize("dtype", F)
@pytest.mark.parametrize("name, tf_fn, np_fn", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activation(name, tf_fn, np_fn, dtype):
    rng = np.random.default_rng(0)
    x_val = rng.uniform(-8, 8, (5, 7)).astype(dtype)
    x_val[0, :3] = [0.0, 6.0, -6.0]
    x = tf.placeholder(TF_DTYPE[dtype], [None, 7])
    y = tf_fn(x)
    assert y.shape.as_list() == [None, 7] and y.dtype is TF_DTYPE[dtype]
    check(run(y, {x: x_val}), np_fn(x_val.astype(np.float64)), dtype)


@pytest.mark.parametrize("fn", [tf.nn.relu, tf.nn.relu6])
def test_relu_on_ints(fn):
    x = tf.placeholder(tf.int32, [None])
    got = run(fn(x), {x: [-3, 0, 4, 9]})
    np.testing.assert_array_equal(got, np.clip([-3, 0, 4, 9], 0, 6 if fn is tf.nn.relu6 else 99))
    assert got.dtype == np.int32


@pytest.mark.parametrize("name, tf_fn, np_fn", [
    ("relu", tf.nn.relu, lambda x: np.maximum(x, 0)),
    ("sigmoid", tf.nn.sigmoid, lambda x: np.exp(-_softplus(-x))),
    ("softplus", tf.nn.softplus, _softplus),
    ("elu", tf.nn.elu, lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0)))),
    ("tanh", tf.nn.tanh, np.tanh),
])
@pytest.mark.parametrize("dtype", F)
def test_activation_extremes_are_finite(name, tf_fn, np_fn, dtype):
    x_val = np.array([-1e4, -100.0, -30.0, 0.0, 30.0, 100.0, 1e4], dtype)
    x = tf.placeholder(TF_DTYPE[dtype], [None])
    check(run(tf_fn(x), {x: x_val}), np_fn(x_val.astype(np.float64)), dtype)


# -- softmax ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", F)
@pytest.mark.parametrize("axis", [None, -1, 0, 1, 2])
@pytest.mark.parametrize("log", [False, True])
def test_softmax(dtype, axis, log):
    rng = np.random.default_rng(1)
    x_val = rng.normal(0, 3, (2, 3, 5)).astype(dtype)
    x = tf.placeholder(TF_DTYPE[dtype], [None, 3, 5])
    fn = tf.nn.log_softmax if log else tf.nn.softmax
    y = fn(x) if axis is None else fn(x, axis=axis)
    assert y.shape.as_list() == [None, 3, 5]
    ref = _log_softmax(x_val, -1 if axis is None else axis)
    check(run(y, {x: x_val}), ref if log else np.exp(ref), dtype)


def test_softmax_tf1_dim_argument():
    x_val = np.random.default_rng(2).normal(size=(3, 4))
    x = tf.placeholder(tf.float64, [None, 4])
    check(run(tf.nn.softmax(x, dim=0), {x: x_val}), np.exp(_log_softmax(x_val, 0)), np.float64)


@pytest.mark.parametrize("dtype", F)
def test_softmax_stable_for_huge_logits(dtype):
    x_val = np.array([[1e4, -1e4, 0.0, 1e4 - 1], [-1e4, -1e4 + 2, -1e4 + 1, -1e4]], dtype)
    x = tf.placeholder(TF_DTYPE[dtype], [None, 4])
    ref = _log_softmax(x_val)
    s, ls = run([tf.nn.softmax(x), tf.nn.log_softmax(x)], {x: x_val})
    check(s, np.exp(ref), dtype)
    check(ls, ref, dtype)


# -- cross-entropies ---------------------------------------------------------------------------
def _random_distribution(rng, shape):
    p = rng.random(shape)
    return p / p.sum(axis=-1, keepdims=True)


XENT_FNS = [tf.nn.softmax_cross_entropy_with_logits, tf.nn.softmax_cross_entropy_with_logits_v2]


@pytest.mark.parametrize("fn", XENT_FNS, ids=["v1", "v2"])
@pytest.mark.parametrize("dtype", F)
@pytest.mark.parametrize("scale", [1.0, 1e4])   # 1e4: the naive formula overflows
def test_softmax_cross_entropy(fn, dtype, scale):
    rng = np.random.default_rng(3)
    logits_val = (rng.normal(size=(6, 5)) * scale).astype(dtype)
    labels_val = _random_distribution(rng, (6, 5)).astype(dtype)
    logits = tf.placeholder(TF_DTYPE[dtype], [None, 5])
    labels = tf.placeholder(TF_DTYPE[dtype], [None, 5])
    loss = fn(labels=labels, logits=logits)
    assert loss.shape.as_list() == [None] and loss.dtype is TF_DTYPE[dtype]
    expected = -np.sum(labels_val * _log_softmax(logits_val), axis=-1)
    check(run(loss, {logits: logits_val, labels: labels_val}), expected, dtype)


@pytest.mark.parametrize("fn", XENT_FNS, ids=["v1", "v2"])
def test_softmax_cross_entropy_axis_and_list_labels(fn):
    rng = np.random.default_rng(4)
    logits_val = rng.normal(size=(5, 3))
    labels_val = _random_distribution(rng, (3, 5)).T
    logits = tf.placeholder(tf.float64, [5, 3])
    loss = fn(labels=labels_val.tolist(), logits=logits, dim=0)
    expected = -np.sum(labels_val * _log_softmax(logits_val, 0), axis=0)
    check(run(loss, {logits: logits_val}), expected, np.float64)


def test_softmax_cross_entropy_requires_keywords():
    x = tf.placeholder(tf.float32, [2, 3])
    with pytest.raises(ValueError):
        tf.nn.softmax_cross_entropy_with_logits(x, x)
    with pytest.raises(errors.ShapeError):
        tf.nn.softmax_cross_entropy_with_logits_v2(labels=tf.placeholder(tf.float32, [2, 4]),
                                                   logits=x)


@pytest.mark.parametrize("label_dtype", [tf.int32, tf.int64])
@pytest.mark.parametrize("dtype", F)
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_sparse_softmax_cross_entropy(label_dtype, dtype, scale):
    rng = np.random.default_rng(5)
    logits_val = (rng.normal(size=(8, 6)) * scale).astype(dtype)
    labels_val = rng.integers(0, 6, 8)
    logits = tf.placeholder(TF_DTYPE[dtype], [None, 6])
    labels = tf.placeholder(label_dtype, [None])
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    assert loss.shape.as_list() == [None] and loss.dtype is TF_DTYPE[dtype]
    expected = -_log_softmax(logits_val)[np.arange(8), labels_val]
    check(run(loss, {logits: logits_val, labels: labels_val}), expected, dtype)


def test_sparse_softmax_cross_entropy_rank3_and_bad_labels():
    rng = np.random.default_rng(6)
    logits_val = rng.normal(size=(2, 3, 4))
    labels_val = rng.integers(0, 4, (2, 3))
    logits = tf.placeholder(tf.float64, [None, 3, 4])
    labels = tf.placeholder(tf.int32, [None, 3])
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    expected = -np.take_along_axis(_log_softmax(logits_val), labels_val[..., None], -1)[..., 0]
    check(run(loss, {logits: logits_val, labels: labels_val}), expected, np.float64)
    for bad in (4, -1):
        labels_val[0, 0] = bad
        with pytest.raises(errors.InvalidArgumentError):
            run(loss, {logits: logits_val, labels: labels_val})
    with pytest.raises(errors.ShapeError):
        tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.placeholder(tf.int32, [None]), logits=logits)


@pytest.mark.parametrize("dtype", F)
@pytest.mark.parametrize("scale", [1.0, 1e4])
def test_sigmoid_cross_entropy(dtype, scale):
    rng = np.random.default_rng(7)
    logits_val = (rng.normal(size=(6, 4)) * scale).astype(dtype)
    labels_val = rng.random((6, 4)).astype(dtype)
    logits = tf.placeholder(TF_DTYPE[dtype], [None, 4])
    labels = tf.placeholder(TF_DTYPE[dtype], [None, 4])
    loss = tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)
    assert loss.shape.as_list() == [None, 4] and loss.op.name == "logistic_loss"
    x, z = logits_val.astype(np.float64), labels_val.astype(np.float64)
    # -z log(sigmoid(x)) - (1 - z) log(1 - sigmoid(x)), each log via log-sum-exp
    expected = z * np.logaddexp(0, -x) + (1 - z) * np.logaddexp(0, x)
    check(run(loss, {logits: logits_val, labels: labels_val}), expected, dtype)


# -- bias_add / l2_loss ------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", F)
@pytest.mark.parametrize("shape", [(4, 3), (2, 5, 3), (1, 3)])
def test_bias_add(dtype, shape):
    rng = np.random.default_rng(8)
    x_val, b_val = rng.normal(size=shape).astype(dtype), rng.normal(size=3).astype(dtype)
    x = tf.placeholder(TF_DTYPE[dtype], [None] + list(shape[1:]))
    b = tf.placeholder(TF_DTYPE[dtype], [3])
    y = tf.nn.bias_add(x, b)
    assert y.shape.as_list() == [None] + list(shape[1:]) and y.op.name == "BiasAdd"
    check(run(y, {x: x_val, b: b_val}), x_val.astype(np.float64) + b_val, dtype)


def test_bias_add_shape_errors():
    x = tf.placeholder(tf.float32, [None, 3])
    with pytest.raises(errors.ShapeError):
        tf.nn.bias_add(x, tf.placeholder(tf.float32, [4]))
    with pytest.raises(errors.ShapeError):
        tf.nn.bias_add(x, tf.placeholder(tf.float32, [1, 3]))


@pytest.mark.parametrize("dtype", F)
@pytest.mark.parametrize("shape", [(), (7,), (4, 3, 2)])
def test_l2_loss(dtype, shape):
    rng = np.random.default_rng(9)
    x_val = rng.normal(size=shape).astype(dtype)
    x = tf.placeholder(TF_DTYPE[dtype], [None] * len(shape))
    y = tf.nn.l2_loss(x)
    assert y.shape.as_list() == [] and y.op.name == "L2Loss"
    check(run(y, {x: x_val}), np.sum(x_val.astype(np.float64) ** 2) / 2, dtype)


@pytest.mark.parametrize("build, name", [
    (tf.nn.relu, "Relu"), (tf.nn.relu6, "Relu6"), (tf.nn.elu, "Elu"),
    (tf.nn.softplus, "Softplus"), (tf.nn.softmax, "Softmax"), (tf.nn.log_softmax, "LogSoftmax"),
    (tf.nn.leaky_relu, "LeakyRelu"), (tf.nn.sigmoid, "Sigmoid"), (tf.nn.tanh, "Tanh"),
])
def test_tf1_default_names(build, name):
    x = tf.placeholder(tf.float32, [2, 3])
    assert build(x).op.name == name
    assert build(x).op.name == name + "_1"


# -- dropout ---------------------------------------------------------------------------------
def _dropout_program(seed=None, **kwargs):
    x = tf.placeholder(tf.float32, [None, 100])
    return x, tf.nn.dropout(x, seed=seed, **kwargs)


ONES = np.ones((500, 100), np.float32)


@pytest.mark.parametrize("kwargs, keep", [({"keep_prob": 0.5}, 0.5), ({"keep_prob": 0.8}, 0.8),
                                          ({"rate": 0.3}, 0.7), ({"rate": 0.9}, 0.1)])
def test_dropout_scales_kept_and_keeps_the_right_fraction(kwargs, keep):
    tf.set_random_seed(1234)
    x, y = _dropout_program(**kwargs)
    assert y.shape.as_list() == [None, 100] and y.dtype is tf.float32
    x_val = np.random.default_rng(10).uniform(0.5, 2.0, (500, 100)).astype(np.float32)
    out = run(y, {x: x_val})
    kept = out != 0
    np.testing.assert_allclose(out[kept], x_val[kept] / np.float32(keep), rtol=1e-6)
    # 50,000 Bernoulli(keep) draws: the fraction's sd is <= 0.0023; allow ~4 sd.
    assert abs(kept.mean() - keep) < 0.01
    # Not a fixed pattern: rows differ from each other.
    assert len({row.tobytes() for row in kept[:20]}) > 1


def _dropout_mask_in_fresh_graph(seed, graph_seed=None):
    with tf.Graph().as_default():
        if graph_seed is not None:
            tf.set_random_seed(graph_seed)
        x, y = _dropout_program(seed=seed, keep_prob=0.5)
        with tf.Session() as sess:
            return sess.run(y, {x: ONES}) != 0


def test_dropout_seeded_by_graph_seed_is_reproducible():
    a = _dropout_mask_in_fresh_graph(None, graph_seed=7)
    b = _dropout_mask_in_fresh_graph(None, graph_seed=7)
    c = _dropout_mask_in_fresh_graph(None, graph_seed=8)
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.3


def test_dropout_seeded_by_op_seed_is_reproducible():
    a = _dropout_mask_in_fresh_graph(5)
    b = _dropout_mask_in_fresh_graph(5)
    c = _dropout_mask_in_fresh_graph(6)
    np.testing.assert_array_equal(a, b)
    assert (a != c).mean() > 0.3


def test_dropout_unseeded_differs_between_graphs():
    a = _dropout_mask_in_fresh_graph(None)
    b = _dropout_mask_in_fresh_graph(None)
    assert (a != b).mean() > 0.3


def test_dropout_new_mask_each_run_and_restart_in_new_session():
    tf.set_random_seed(3)
    x, y = _dropout_program(keep_prob=0.5)
    with tf.Session() as sess:
        first = sess.run(y, {x: ONES})
        second = sess.run(y, {x: ONES})
    with tf.Session() as sess:
        again = sess.run(y, {x: ONES})
    assert ((first != 0) != (second != 0)).mean() > 0.3
    np.testing.assert_array_equal(first, again)


def test_dropout_on_unknown_batch_sizes():
    tf.set_random_seed(4)
    x, y = _dropout_program(keep_prob=0.5)
    with tf.Session() as sess:
        for batch in (1, 7, 64):
            out = sess.run(y, {x: np.ones((batch, 100), np.float32)})
            assert out.shape == (batch, 100)
            assert set(np.unique(out)) <= {0.0, 2.0}


def test_dropout_keep_prob_placeholder():
    tf.set_random_seed(5)
    x = tf.placeholder(tf.float32, [None, 100])
    keep = tf.placeholder(tf.float32)
    y = tf.nn.dropout(x, keep)
    x_val = np.random.default_rng(11).normal(size=(50, 100)).astype(np.float32)
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(y, {x: x_val, keep: 1.0}), x_val)
        out = sess.run(y, {x: x_val, keep: 0.25})
    kept = out != 0
    np.testing.assert_allclose(out[kept], x_val[kept] * 4, rtol=1e-6)
    assert abs(kept.mean() - 0.25) < 0.03


def test_dropout_noise_shape_drops_whole_rows():
    tf.set_random_seed(6)
    x = tf.placeholder(tf.float32, [200, 10])
    y = tf.nn.dropout(x, keep_prob=0.5, noise_shape=[200, 1])
    out = run(y, {x: np.ones((200, 10), np.float32)})
    rows_kept = out[:, 0] != 0
    np.testing.assert_array_equal(out, np.where(rows_kept[:, None], 2.0, 0.0) * ONES[:200, :10])
    assert 0.3 < rows_kept.mean() < 0.7


@pytest.mark.parametrize("kwargs", [{}, {"keep_prob": 0.5, "rate": 0.5}, {"keep_prob": 0.0},
                                    {"keep_prob": 1.5}, {"rate": 1.0}])
def test_dropout_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        tf.nn.dropout(tf.placeholder(tf.float32, [None, 3]), **kwargs)


@pytest.mark.parametrize("shape", [[3, 0], [0, 0], [0, 4]])
def test_softmax_family_over_an_empty_axis_gives_empty_results_as_in_tf1(shape):
    logits = tf.placeholder(tf.float32, shape)
    labels = tf.placeholder(tf.float32, shape)
    loss = tf.nn.softmax_cross_entropy_with_logits_v2(labels=labels, logits=logits)
    fetches = [tf.nn.softmax(logits), tf.nn.log_softmax(logits), tf.nn.softmax(logits * 2 + 1),
               loss, tf.gradients(tf.reduce_sum(loss), logits)[0]]
    zeros = np.zeros(shape, np.float32)
    with tf.Session() as sess:
        *probabilities, losses, grad = sess.run(fetches, {logits: zeros, labels: zeros})
    for p in probabilities + [grad]:
        assert p.shape == tuple(shape) and p.dtype == np.float32
    np.testing.assert_array_equal(losses, np.zeros(shape[0], np.float32))
