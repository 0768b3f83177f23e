"""tf.nn's normalization, ranking, embedding and extra activations/losses vs numpy written
from their definitions (loops where the kernel vectorizes), and their gradients vs finite
differences."""
import math

import numpy as np
import pytest

import flowjit as tf
from flowjit import errors

from test_gradients import check_gradients

R = np.random.default_rng(11)


def run(fetches, feed=None):
    with tf.Session() as sess:
        return sess.run(fetches, feed)


def test_moments_and_batch_normalization():
    x = R.standard_normal((4, 3, 5))
    mean, var = tf.nn.moments(tf.constant(x), axes=[0, 1])
    got_mean, got_var = run([mean, var])
    for c in range(5):
        values = x[:, :, c].reshape(-1)
        m = sum(values) / len(values)
        assert got_mean[c] == pytest.approx(m, rel=1e-12)
        assert got_var[c] == pytest.approx(sum((v - m) ** 2 for v in values) / len(values),
                                           rel=1e-12)
    kept = tf.nn.moments(tf.constant(x), [1], keep_dims=True)
    assert [t.shape.as_list() for t in kept] == [[4, 1, 5], [4, 1, 5]]
    offset, scale = R.standard_normal(5), R.standard_normal(5)
    y = tf.nn.batch_normalization(tf.constant(x), mean, var, offset, scale, 1e-3)
    expected = (x - got_mean) / np.sqrt(got_var + 1e-3) * scale + offset
    np.testing.assert_allclose(run(y), expected, rtol=1e-10)


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
def test_fused_batch_norm_training_and_inference(fmt):
    x = R.standard_normal((3, 2, 4, 5) if fmt == "NHWC" else (3, 5, 2, 4))
    scale, offset = R.uniform(0.5, 2, 5), R.standard_normal(5)
    y, mean, var = tf.nn.fused_batch_norm(tf.constant(x), scale, offset, epsilon=1e-3,
                                          data_format=fmt)
    got_y, got_mean, got_var = run([y, mean, var])
    axes = (0, 1, 2) if fmt == "NHWC" else (0, 2, 3)
    shape = (1, 1, 1, 5) if fmt == "NHWC" else (1, 5, 1, 1)
    n = x.size // 5
    m = x.sum(axis=axes) / n
    biased = ((x - m.reshape(shape)) ** 2).sum(axis=axes) / n
    np.testing.assert_allclose(got_mean, m, rtol=1e-10)
    np.testing.assert_allclose(got_var, biased * n / (n - 1), rtol=1e-10)  # Bessel
    np.testing.assert_allclose(got_y, (x - m.reshape(shape)) / np.sqrt(
        biased.reshape(shape) + 1e-3) * scale.reshape(shape) + offset.reshape(shape), rtol=1e-9)
    y2, _, _ = tf.nn.fused_batch_norm(tf.constant(x), scale, offset, mean=m, variance=biased,
                                      epsilon=1e-3, data_format=fmt, is_training=False)
    np.testing.assert_allclose(run(y2), got_y, rtol=1e-9)
    small = R.standard_normal((2, 2, 3, 5) if fmt == "NHWC" else (2, 5, 2, 3))
    check_gradients(lambda a: tf.nn.fused_batch_norm(a, scale, offset, data_format=fmt)[0],
                    small)


def test_l2_normalize():
    x = R.standard_normal((3, 4))
    got = run(tf.nn.l2_normalize(tf.constant(x), axis=1))
    for i in range(3):
        norm = math.sqrt(sum(v * v for v in x[i]))
        np.testing.assert_allclose(got[i], x[i] / norm, rtol=1e-12)
    np.testing.assert_array_equal(run(tf.nn.l2_normalize(tf.zeros([2]), 0)), [0, 0])
    check_gradients(lambda a: tf.nn.l2_normalize(a, 0), x)


def test_local_response_normalization():
    x = R.standard_normal((2, 2, 3, 7))
    r, bias, alpha, beta = 2, 1.5, 0.3, 0.75
    got = run(tf.nn.local_response_normalization(tf.constant(x), r, bias, alpha, beta))
    expected = np.zeros_like(x)
    for idx in np.ndindex(x.shape[:3]):
        for d in range(7):
            window = sum(x[idx][k] ** 2 for k in range(max(0, d - r), min(7, d + r + 1)))
            expected[idx][d] = x[idx][d] / (bias + alpha * window) ** beta
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    check_gradients(lambda a: tf.nn.lrn(a, 1, 1.0, 0.5, 0.75), R.standard_normal((1, 2, 1, 4)))


def test_embedding_lookup_and_its_scatter_add_gradient():
    table = R.standard_normal((6, 3))
    ids = np.array([[1, 4], [1, 0]])
    params = tf.constant(table)
    y = tf.nn.embedding_lookup(params, ids)
    np.testing.assert_array_equal(run(y), table[ids])
    (g,) = tf.gradients(tf.reduce_sum(y * 2.0), [params])
    expected = np.zeros_like(table)
    for i in ids.reshape(-1):
        expected[i] += 2.0
    np.testing.assert_array_equal(run(g), expected)
    shards = [table[:2], table[2:4], table[4:]]  # 'mod': id i in shard i % 3, row i // 3
    y2 = tf.nn.embedding_lookup([tf.constant(s) for s in shards], [0, 1, 2, 3, 4, 5])
    rows = [shards[i % 3][i // 3] for i in range(6)]
    np.testing.assert_array_equal(run(y2), rows)
    y3 = tf.nn.embedding_lookup([tf.constant(s) for s in shards], [5, 0],
                                partition_strategy="div")
    np.testing.assert_array_equal(run(y3), table[[5, 0]])


def test_top_k_and_its_gradient():
    x = np.array([[1.0, 3.0, 3.0, -1.0, 2.0], [0.5, 0.1, 0.9, 0.2, 0.9]])
    values, indices = tf.nn.top_k(tf.constant(x), 3)
    got_v, got_i = run([values, indices])
    for row in range(2):  # by repeated selection of the first largest
        rest = list(x[row])
        picked = []
        for _ in range(3):
            best = max(range(5), key=lambda j: (rest[j], -j))
            picked.append(best)
            rest[best] = -np.inf
        np.testing.assert_array_equal(got_i[row], picked)
        np.testing.assert_array_equal(got_v[row], x[row][picked])
    assert got_i.dtype == np.int32
    check_gradients(lambda a: tf.nn.top_k(a, 2)[0], R.permutation(12).reshape(3, 4) * 1.0)


def test_in_top_k_counts_ties_at_the_boundary_as_in():
    p = np.array([[0.1, 0.5, 0.5, 0.2], [0.9, 0.0, 0.3, 0.4], [np.nan, 1, 2, 3]], np.float32)
    targets = np.array([2, 1, 0])
    got = run(tf.nn.in_top_k(p, targets, 1))
    expected = [sum(v > p[i][t] for v in p[i]) < 1 and np.isfinite(p[i][t])
                for i, t in enumerate(targets)]
    np.testing.assert_array_equal(got, expected)
    assert list(run(tf.nn.in_top_k(p, [3, 3, 3], 2))) == [False, True, True]


ACTIVATIONS = [
    ("selu", tf.nn.selu, lambda v: 1.0507009873554804934193349852946 * (
        v if v > 0 else 1.6732632423543772848170429916717 * (math.exp(v) - 1))),
    ("swish", tf.nn.swish, lambda v: v / (1 + math.exp(-v))),
    ("softsign", tf.nn.softsign, lambda v: v / (1 + abs(v))),
]


@pytest.mark.parametrize("name, fn, scalar", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activations(name, fn, scalar):
    x = R.uniform(-4, 4, (3, 5))
    x[0, 0] = 0.3
    np.testing.assert_allclose(run(fn(tf.constant(x))), np.vectorize(scalar)(x), rtol=1e-12)
    check_gradients(fn, np.where(np.abs(x) < 0.1, 0.5, x)[:2, :3])


def test_crelu():
    x = R.standard_normal((2, 3))
    got = run(tf.nn.crelu(tf.constant(x)))
    np.testing.assert_array_equal(got, np.concatenate([np.maximum(x, 0), np.maximum(-x, 0)], 1))
    check_gradients(tf.nn.crelu, np.where(np.abs(x) < 0.1, 0.5, x))


def test_weighted_cross_entropy_and_log_poisson_loss():
    z, x = R.uniform(0, 1, (3, 4)), R.uniform(-30, 30, (3, 4))
    got = run(tf.nn.weighted_cross_entropy_with_logits(labels=z, logits=x, pos_weight=2.5))
    sig = 1 / (1 + np.exp(-np.clip(x, -700, 700)))
    # the definition: -(q z log(sigmoid(x)) + (1 - z) log(1 - sigmoid(x))), via log-sigmoid
    log_sig, log_one_minus = -np.logaddexp(0, -x), -np.logaddexp(0, x)
    np.testing.assert_allclose(got, -(2.5 * z * log_sig + (1 - z) * log_one_minus), rtol=1e-10)
    assert np.all(np.isfinite(sig))
    check_gradients(lambda a, b: tf.nn.weighted_cross_entropy_with_logits(
        labels=a, logits=b, pos_weight=0.5), z[:2], x[:2] / 10)
    t, log_in = np.array([0.0, 1.0, 2.0, 5.0]), R.standard_normal(4)
    full = run(tf.nn.log_poisson_loss(t, log_in, compute_full_loss=True))
    part = run(tf.nn.log_poisson_loss(t, log_in))
    np.testing.assert_allclose(part, np.exp(log_in) - log_in * t, rtol=1e-12)
    stirling = [v * math.log(v) - v + 0.5 * math.log(2 * math.pi * v) if v > 1 else 0 for v in t]
    np.testing.assert_allclose(full, part + stirling, rtol=1e-12)
    check_gradients(lambda a: tf.nn.log_poisson_loss(t, a, compute_full_loss=True), log_in)


def test_top_k_with_too_few_columns_is_a_shape_error():
    with pytest.raises(errors.ShapeError, match=r"at least k=5 columns, has 3.*TopKV2"):
        tf.nn.top_k(tf.zeros([2, 3]), 5)
