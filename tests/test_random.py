"""Random ops and variable initializers: distributions and TF1 seed semantics.

Statistical checks use 10^5 samples and tolerances of about 5 standard errors; every test sets
a seed, so the outcomes are deterministic (no flakes), yet a wrong distribution (mean, scale,
range) fails them by a wide margin.
"""
import math

import numpy as np
import pytest

import flowjit as tf

N = 100_000
TRUNC_SD = 0.8796256610342398   # sd of a standard normal truncated to [-2, 2]


def run(fetches, feed_dict=None):
    with tf.Session() as sess:
        return sess.run(fetches, feed_dict)


def assert_moments(x, mean, sd, k=5.0):
    x = np.asarray(x, np.float64).reshape(-1)
    n = x.size
    assert abs(x.mean() - mean) < k * sd / math.sqrt(n), (x.mean(), mean)
    # sd of the sample variance is about var * sqrt(2 / n) (exact for normals, close otherwise)
    assert abs(x.var() - sd ** 2) < k * sd ** 2 * math.sqrt(2.5 / n), (x.std(), sd)


# -- distributions -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("mean, stddev", [(0.0, 1.0), (2.0, 3.0), (-1.0, 0.01)])
def test_random_normal(dtype, mean, stddev):
    tf.set_random_seed(1)
    r = tf.random_normal([N // 100, 100], mean=mean, stddev=stddev, dtype=dtype)
    assert r.shape.as_list() == [N // 100, 100] and r.dtype is dtype
    x = run(r)
    assert x.dtype == dtype.np_dtype and x.shape == (N // 100, 100)
    assert_moments(x, mean, stddev)
    z = (x.astype(np.float64) - mean) / stddev
    assert abs(np.mean(z ** 3)) < 0.05                  # skewness 0
    assert abs(np.mean(z ** 4) - 3.0) < 0.1             # kurtosis 3
    assert abs(np.mean(np.abs(z) < 1) - 0.6827) < 0.01  # the 68% rule
    if stddev >= 1:   # (a small sd around a larger mean is coarse in float32)
        assert len(np.unique(x)) > 0.99 * N


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("mean, stddev", [(0.0, 1.0), (5.0, 0.5)])
def test_truncated_normal(dtype, mean, stddev):
    tf.set_random_seed(2)
    x = run(tf.truncated_normal([N], mean=mean, stddev=stddev, dtype=dtype))
    assert x.dtype == dtype.np_dtype
    tol = 1e-6 * abs(mean) + 1e-6
    assert x.min() >= mean - 2 * stddev - tol and x.max() <= mean + 2 * stddev + tol
    assert_moments(x, mean, stddev * TRUNC_SD)
    # Uses the whole [-2sd, 2sd] range, not a narrower one.
    assert x.min() < mean - 1.95 * stddev and x.max() > mean + 1.95 * stddev


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("minval, maxval", [(0, None), (-3.0, 5.0), (10.0, 10.5)])
def test_random_uniform_float(dtype, minval, maxval):
    tf.set_random_seed(3)
    x = run(tf.random_uniform([N], minval=minval, maxval=maxval, dtype=dtype))
    lo, hi = minval, 1.0 if maxval is None else maxval
    assert x.dtype == dtype.np_dtype
    assert x.min() >= lo
    # [0, 1) draws are half-open; after `u * (hi - lo) + lo` in float32 a value may round up to
    # maxval, exactly as in TF (tensorflow/tensorflow#51465).
    assert x.max() < hi if (lo, hi) == (0, 1.0) or dtype is tf.float64 else x.max() <= hi
    assert_moments(x, (lo + hi) / 2, (hi - lo) / math.sqrt(12))
    counts, _ = np.histogram(x, bins=10, range=(lo, hi))
    assert np.all(np.abs(counts - N / 10) < 5 * math.sqrt(N / 10))


@pytest.mark.parametrize("dtype", [tf.int32, tf.int64])
@pytest.mark.parametrize("minval, maxval", [(0, 10), (-5, 3), (100, 101)])
def test_random_uniform_int(dtype, minval, maxval):
    tf.set_random_seed(4)
    x = run(tf.random_uniform([N], minval=minval, maxval=maxval, dtype=dtype))
    assert x.dtype == dtype.np_dtype
    assert x.min() >= minval and x.max() < maxval
    counts = np.bincount(x - minval, minlength=maxval - minval)
    assert len(counts) == maxval - minval and np.all(counts > 0)
    expected = N / (maxval - minval)
    chi2 = np.sum((counts - expected) ** 2 / expected)
    assert chi2 < (maxval - minval) + 6 * math.sqrt(2 * (maxval - minval))


def test_random_uniform_int_needs_maxval():
    with pytest.raises(ValueError):
        tf.random_uniform([3], dtype=tf.int32)


def test_random_ops_with_tensor_bounds():
    tf.set_random_seed(5)
    lo = tf.placeholder(tf.float32, [])
    x = run(tf.random_uniform([N], minval=lo, maxval=4.0), {lo: 2.0})
    assert x.min() >= 2.0 and x.max() < 4.0
    assert_moments(x, 3.0, 2 / math.sqrt(12))


# -- initializers ------------------------------------------------------------------------------
def _initial_value(name, shape, initializer, dtype=None):
    v = tf.get_variable(name, shape, dtype=dtype, initializer=initializer)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        return v, sess.run(v)


@pytest.mark.parametrize("dtype", [None, tf.float64])
def test_random_normal_initializer(dtype):
    tf.set_random_seed(6)
    v, x = _initial_value("w", [400, 250], tf.random_normal_initializer(1.0, 2.0), dtype)
    assert x.shape == (400, 250) and x.dtype == (dtype or tf.float32).np_dtype
    assert v.shape.as_list() == [400, 250]
    assert_moments(x, 1.0, 2.0)


def test_truncated_normal_initializer():
    tf.set_random_seed(7)
    _, x = _initial_value("w", [400, 250], tf.truncated_normal_initializer(0.0, 0.1))
    assert np.all(np.abs(x) <= 0.2 + 1e-7)
    assert_moments(x, 0.0, 0.1 * TRUNC_SD)


def test_random_uniform_initializer():
    tf.set_random_seed(8)
    _, x = _initial_value("w", [400, 250], tf.random_uniform_initializer(-0.3, 0.7))
    assert x.min() >= -0.3 and x.max() < 0.7
    assert_moments(x, 0.2, 1.0 / math.sqrt(12))


@pytest.mark.parametrize("shape", [[300, 200], [5, 5, 40, 60]])
@pytest.mark.parametrize("initializer", [tf.glorot_uniform_initializer(), None],
                         ids=["glorot_uniform", "default"])
def test_glorot_uniform_initializer(shape, initializer):
    # The default initializer of get_variable is glorot_uniform too (TF1).
    tf.set_random_seed(9)
    _, x = _initial_value("w", shape, initializer)
    receptive = int(np.prod(shape[:-2]))
    fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    assert np.abs(x).max() <= limit
    assert np.abs(x).max() > 0.99 * limit
    assert_moments(x, 0.0, limit / math.sqrt(3))


@pytest.mark.parametrize("initializer, dtype, expected", [
    (tf.zeros_initializer(), None, np.zeros((3, 4), np.float32)),
    (tf.ones_initializer(), None, np.ones((3, 4), np.float32)),
    (tf.ones_initializer(), tf.float64, np.ones((3, 4), np.float64)),
    (tf.zeros_initializer(), tf.int32, np.zeros((3, 4), np.int32)),
    (tf.constant_initializer(3.5), None, np.full((3, 4), 3.5, np.float32)),
    (tf.constant_initializer(-2), tf.int32, np.full((3, 4), -2, np.int32)),
    (tf.constant_initializer(np.arange(12)), None, np.arange(12, dtype=np.float32).reshape(3, 4)),
    (tf.constant_initializer([[1, 2, 3, 4]] * 3), None,
     np.array([[1, 2, 3, 4]] * 3, np.float32)),
])
def test_deterministic_initializers(initializer, dtype, expected):
    _, x = _initial_value("w", [3, 4], initializer, dtype)
    assert x.dtype == expected.dtype
    np.testing.assert_array_equal(x, expected)


@pytest.mark.parametrize("initializer_class, value", [(tf.zeros_initializer, 0.0),
                                                      (tf.ones_initializer, 1.0)])
def test_initializer_class_without_call(initializer_class, value):
    # TF1 accepts the class itself: get_variable('b', [3], initializer=tf.zeros_initializer)
    _, x = _initial_value("b", [3], initializer_class)
    np.testing.assert_array_equal(x, np.full(3, value, np.float32))


def test_seeded_initializer_reproducible_across_graphs():
    values = []
    for _ in range(2):
        with tf.Graph().as_default():
            _, x = _initial_value("w", [20, 10], tf.random_normal_initializer(seed=42))
            values.append(x)
    np.testing.assert_array_equal(values[0], values[1])
    with tf.Graph().as_default():
        _, other = _initial_value("w", [20, 10], tf.random_normal_initializer(seed=43))
    assert not np.array_equal(values[0], other)


# -- TF1 seed semantics ------------------------------------------------------------------------
def _sample_in_fresh_graph(graph_seed=None, op_seed=None, runs=1, op=tf.random_normal):
    with tf.Graph().as_default():
        if graph_seed is not None:
            tf.set_random_seed(graph_seed)
        tf.placeholder(tf.float32, name="something_before")   # the same program each time
        r = op([50], seed=op_seed)
        with tf.Session() as sess:
            return [sess.run(r) for _ in range(runs)]


@pytest.mark.parametrize("op", [tf.random_normal, tf.truncated_normal, tf.random_uniform])
def test_graph_seed_reproduces_in_fresh_graph(op):
    a = _sample_in_fresh_graph(graph_seed=10, op=op, runs=2)
    b = _sample_in_fresh_graph(graph_seed=10, op=op, runs=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = _sample_in_fresh_graph(graph_seed=11, op=op)
    assert not np.any(a[0] == c[0])


def test_op_seed_alone_is_reproducible():
    a = _sample_in_fresh_graph(op_seed=3)
    b = _sample_in_fresh_graph(op_seed=3)
    c = _sample_in_fresh_graph(op_seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.any(a[0] == c[0])


def test_graph_and_op_seed_both_matter():
    base = _sample_in_fresh_graph(graph_seed=1, op_seed=1)[0]
    np.testing.assert_array_equal(base, _sample_in_fresh_graph(graph_seed=1, op_seed=1)[0])
    assert not np.any(base == _sample_in_fresh_graph(graph_seed=2, op_seed=1)[0])
    assert not np.any(base == _sample_in_fresh_graph(graph_seed=1, op_seed=2)[0])


def test_no_seed_differs_between_graphs():
    a = _sample_in_fresh_graph()
    b = _sample_in_fresh_graph()
    assert not np.any(a[0] == b[0])


def test_two_ops_under_one_graph_seed_differ():
    tf.set_random_seed(12)
    a, b = tf.random_normal([50]), tf.random_normal([50])
    va, vb = run([a, b])
    assert not np.any(va == vb)


@pytest.mark.parametrize("op", [tf.random_normal, tf.random_uniform,
                                lambda shape, seed=None: tf.random_uniform(shape, 0, 1000,
                                                                           tf.int32, seed)])
def test_each_run_draws_new_values_and_new_session_restarts(op):
    tf.set_random_seed(13)
    r = op([50])
    with tf.Session() as sess:
        first, second, third = sess.run(r), sess.run(r), sess.run(r)
    assert np.mean(first == second) < 0.1 and np.mean(second == third) < 0.1
    with tf.Session() as sess:
        again = [sess.run(r), sess.run(r)]
    np.testing.assert_array_equal(again[0], first)
    np.testing.assert_array_equal(again[1], second)


def test_one_draw_per_run_shared_by_all_consumers():
    tf.set_random_seed(14)
    r = tf.random_normal([50])
    doubled = r * 2.0
    v, d, v2 = run([r, doubled, r])
    np.testing.assert_array_equal(v, v2)
    np.testing.assert_allclose(d, 2 * v, rtol=1e-6)


def test_get_seed_rules():
    assert tf.get_seed(None)[0] != tf.get_seed(None)[0]     # fresh random seeds
    assert tf.get_seed(5) == tf.get_seed(5)
    tf.set_random_seed(21)
    s1, s2 = tf.get_seed(None)
    assert s1 == 21
    assert tf.get_seed(7) == (21, 7)
