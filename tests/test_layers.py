"""tf.layers, tf.contrib.layers, tf.losses and tf.metrics: TF1's variable names, default
initializers, collections, and values computed again in numpy from the fetched variables."""
import math

import numpy as np
import pytest

import flowjit as tf
from flowjit import errors

from test_ops_conv import ref_conv, ref_pool

R = np.random.default_rng(5)


@pytest.fixture(autouse=True)
def fresh_graph():
    with tf.Graph().as_default() as graph:
        yield graph


def session():
    sess = tf.Session()
    sess.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
    return sess


def test_dense_names_initializers_and_value():
    x = tf.placeholder(tf.float32, [None, 5])
    y = tf.layers.dense(x, 4, activation=tf.nn.relu)
    y2 = tf.layers.dense(y, 3, name="logits")
    y3 = tf.layers.dense(y, 3)
    names = [v.name for v in tf.trainable_variables()]
    assert names == ["dense/kernel:0", "dense/bias:0", "logits/kernel:0", "logits/bias:0",
                     "dense_1/kernel:0", "dense_1/bias:0"]
    value = R.standard_normal((2, 5)).astype(np.float32)
    with session() as sess:
        k, b, k2, b2 = sess.run(tf.trainable_variables()[:4])
        got, got2 = sess.run([y, y2], {x: value})
    limit = math.sqrt(6 / (5 + 4))  # glorot_uniform
    assert np.all(np.abs(k) <= limit) and np.std(k) > limit / 4
    np.testing.assert_array_equal(b, np.zeros(4))
    np.testing.assert_allclose(got, np.maximum(value @ k + b, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got2, got @ k2 + b2, rtol=1e-5, atol=1e-6)
    assert y3.shape.as_list() == [None, 3]


def test_dense_reuse_and_regularizers():
    x = tf.placeholder(tf.float32, [None, 3])
    reg = tf.contrib.layers.l2_regularizer(0.5)
    tf.layers.dense(x, 2, name="fc", kernel_regularizer=reg, bias_regularizer=reg)
    tf.layers.dense(x, 2, name="fc", reuse=True)
    assert len(tf.trainable_variables()) == 2
    losses = tf.get_collection(tf.GraphKeys.REGULARIZATION_LOSSES)
    assert [t.name for t in losses] == ["fc/kernel/Regularizer/l2_regularizer:0",
                                        "fc/bias/Regularizer/l2_regularizer:0"]
    with session() as sess:
        k, got = sess.run([tf.trainable_variables()[0], losses[0]])
    assert got == pytest.approx(0.5 * np.sum(k.astype(np.float64) ** 2) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="already exists"):
        tf.layers.dense(x, 2, name="fc")


@pytest.mark.parametrize("fmt", ["channels_last", "channels_first"])
def test_conv2d_and_pooling_layers(fmt):
    shape = [2, 7, 6, 3] if fmt == "channels_last" else [2, 3, 7, 6]
    x = tf.placeholder(tf.float64, shape)
    y = tf.layers.conv2d(x, 4, (3, 2), strides=2, padding="same", data_format=fmt,
                         activation=tf.nn.relu)
    p = tf.layers.max_pooling2d(y, 2, 1, data_format=fmt)
    a = tf.layers.average_pooling2d(y, [2, 2], 2, padding="same", data_format=fmt)
    assert [v.name for v in tf.trainable_variables()] == ["conv2d/kernel:0", "conv2d/bias:0"]
    assert tf.trainable_variables()[0].shape.as_list() == [3, 2, 3, 4]
    value = R.standard_normal(shape)
    with session() as sess:
        k, b = sess.run(tf.trainable_variables())
        got_y, got_p, got_a = sess.run([y, p, a], {x: value})
    nhwc = value if fmt == "channels_last" else value.transpose(0, 2, 3, 1)
    expected = np.maximum(ref_conv(nhwc, k, (2, 2), ("SAME", "SAME")) + b, 0)
    back = (lambda v: v) if fmt == "channels_last" else (lambda v: v.transpose(0, 3, 1, 2))
    np.testing.assert_allclose(got_y, back(expected), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got_p, back(ref_pool(expected, (2, 2), (1, 1), "VALID",
                                                    "max")[0]))
    np.testing.assert_allclose(got_a, back(ref_pool(expected, (2, 2), (2, 2), "SAME",
                                                    "avg")[0]), rtol=1e-12)


def test_conv1d_conv2d_transpose_pool1d_and_flatten_shapes():
    x = tf.placeholder(tf.float32, [4, 10, 3])
    c = tf.layers.conv1d(x, 5, 3, strides=2)
    assert c.shape.as_list() == [4, 4, 5]
    assert tf.layers.max_pooling1d(c, 2, 2).shape.as_list() == [4, 2, 5]
    assert tf.layers.average_pooling1d(c, 2, 1, padding="same").shape.as_list() == [4, 4, 5]
    img = tf.placeholder(tf.float32, [4, 5, 5, 2])
    t = tf.layers.conv2d_transpose(img, 3, 3, strides=2, padding="valid")
    assert t.shape.as_list() == [4, 11, 11, 3]
    assert tf.trainable_variables()[2].name == "conv2d_transpose/kernel:0"
    assert tf.trainable_variables()[2].shape.as_list() == [3, 3, 3, 2]
    assert tf.layers.flatten(t).shape.as_list() == [4, 363]
    with session() as sess:
        assert sess.run(t, {img: np.ones((4, 5, 5, 2))}).shape == (4, 11, 11, 3)


def test_dropout_training_flag():
    x = tf.ones([100, 100])
    training = tf.placeholder(tf.bool, [])
    off = tf.layers.dropout(x, 0.25)
    fixed = tf.layers.dropout(x, 0.25, training=True, seed=1)
    switch = tf.layers.dropout(x, 0.25, training=training, seed=2)
    with session() as sess:
        np.testing.assert_array_equal(sess.run(off), np.ones((100, 100)))
        dropped = sess.run(fixed)
        assert set(np.unique(dropped)) <= {0.0, np.float32(1 / 0.75)}
        assert 0.2 < np.mean(dropped == 0) < 0.3
        np.testing.assert_array_equal(sess.run(switch, {training: False}), np.ones((100, 100)))
        assert 0.2 < np.mean(sess.run(switch, {training: True}) == 0) < 0.3


@pytest.mark.parametrize("shape, axis", [((6, 4), -1), ((3, 2, 2, 4), -1), ((3, 4, 2, 2), 1)])
def test_batch_normalization_layer_and_its_moving_averages(shape, axis):
    x = tf.placeholder(tf.float64, shape)
    training = tf.placeholder(tf.bool, [])
    y = tf.layers.batch_normalization(x, axis=axis, momentum=0.9, training=training)
    updates = tf.get_collection(tf.GraphKeys.UPDATE_OPS)
    assert [v.name for v in tf.global_variables()] == [
        "batch_normalization/gamma:0", "batch_normalization/beta:0",
        "batch_normalization/moving_mean:0", "batch_normalization/moving_variance:0"]
    assert len(updates) == 2 and len(tf.trainable_variables()) == 2
    value = R.standard_normal(shape) * 3 + 1
    axes = tuple(a for a in range(len(shape)) if a != axis % len(shape))
    n = value.size // 4
    m = value.mean(axis=axes)
    var = value.var(axis=axes)
    corrected = var * n / (n - 1) if len(shape) == 4 else var
    kept = [1] * len(shape)
    kept[axis] = 4
    with session() as sess:
        got, _ = sess.run([y, updates], {x: value, training: True})
        mean_after, var_after = sess.run(tf.global_variables()[2:])
        infer = sess.run(y, {x: value, training: False})
    np.testing.assert_allclose(got, (value - m.reshape(kept)) / np.sqrt(
        var.reshape(kept) + 1e-3), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(mean_after, 0.1 * m, rtol=1e-9)
    np.testing.assert_allclose(var_after, 0.9 + 0.1 * corrected, rtol=1e-9)
    np.testing.assert_allclose(infer, (value - mean_after.reshape(kept)) / np.sqrt(
        var_after.reshape(kept) + 1e-3), rtol=1e-9)


def test_contrib_fully_connected_and_initializers():
    x = tf.placeholder(tf.float32, [None, 6])
    y = tf.contrib.layers.fully_connected(x, 4, weights_regularizer=
                                          tf.contrib.layers.l1_regularizer(0.1))
    z = tf.contrib.layers.fully_connected(y, 2, activation_fn=None, scope="out")
    assert [v.name for v in tf.trainable_variables()] == [
        "fully_connected/weights:0", "fully_connected/biases:0", "out/weights:0",
        "out/biases:0"]
    flat = tf.contrib.layers.flatten(tf.zeros([3, 2, 2]))
    assert flat.shape.as_list() == [3, 4]
    w = tf.get_variable("w", [200, 300], initializer=tf.contrib.layers.xavier_initializer())
    value = R.standard_normal((3, 6)).astype(np.float32)
    with session() as sess:
        w1, b1, w2, b2 = sess.run(tf.trainable_variables()[:4])
        got, reg, wv = sess.run([z, tf.losses.get_regularization_loss(), w], {x: value})
    np.testing.assert_allclose(got, np.maximum(value @ w1 + b1, 0) @ w2 + b2, rtol=1e-5,
                               atol=1e-6)
    assert reg == pytest.approx(0.1 * np.abs(w1).sum(), rel=1e-5)
    assert np.abs(wv).max() <= math.sqrt(6 / 500) and wv.std() == pytest.approx(
        math.sqrt(2 / 500), rel=0.05)


# -- losses ------------------------------------------------------------------------------------
def _reduce(losses, weights, reduction):
    weighted = losses * weights
    if reduction == tf.losses.Reduction.NONE:
        return weighted
    total = weighted.sum()
    if reduction == tf.losses.Reduction.SUM:
        return total
    if reduction == tf.losses.Reduction.MEAN:
        w = (np.ones_like(losses) * weights).sum()
        return total / w if w else 0.0
    if reduction == tf.losses.Reduction.SUM_OVER_BATCH_SIZE:
        return total / losses.size
    nonzero = np.count_nonzero(np.ones_like(losses) * weights)
    return total / nonzero if nonzero else 0.0


LABELS = R.uniform(0, 1, (4, 3))
PRED = R.uniform(0.05, 0.95, (4, 3))
LOSS_CASES = {
    "mean_squared_error": (tf.losses.mean_squared_error, {}, lambda y, p: (p - y) ** 2),
    "absolute_difference": (tf.losses.absolute_difference, {}, lambda y, p: np.abs(p - y)),
    "huber_loss": (tf.losses.huber_loss, {"delta": 0.3}, lambda y, p: np.where(
        np.abs(p - y) <= 0.3, 0.5 * (p - y) ** 2, 0.3 * (np.abs(p - y) - 0.15))),
    "log_loss": (tf.losses.log_loss, {}, lambda y, p: -y * np.log(p + 1e-7)
                 - (1 - y) * np.log(1 - p + 1e-7)),
    "hinge_loss": (lambda labels, predictions, **kw: tf.losses.hinge_loss(
        labels, predictions * 4 - 2, **kw), {},
        lambda y, p: np.maximum(0, 1 - (2 * y - 1) * (p * 4 - 2))),
    "sigmoid_cross_entropy": (
        lambda labels, predictions, **kw: tf.losses.sigmoid_cross_entropy(
            labels, predictions * 4 - 2, **kw), {"label_smoothing": 0.2},
        lambda y, p: _sigmoid_xent(y * 0.8 + 0.1, p * 4 - 2)),
}


def _sigmoid_xent(z, x):
    return -(z * np.log(1 / (1 + np.exp(-x))) + (1 - z) * np.log(1 - 1 / (1 + np.exp(-x))))


@pytest.mark.parametrize("reduction", tf.losses.Reduction.all())
@pytest.mark.parametrize("name", sorted(LOSS_CASES))
def test_losses_with_weights_and_reductions(name, reduction):
    fn, kwargs, per_element = LOSS_CASES[name]
    weights = np.array([[1.0], [0.0], [2.0], [0.5]])
    loss = fn(labels=tf.constant(LABELS), predictions=tf.constant(PRED), weights=weights,
              reduction=reduction, **kwargs)
    assert tf.get_collection(tf.GraphKeys.LOSSES) == [loss]
    with session() as sess:
        got = sess.run(loss)
    np.testing.assert_allclose(got, _reduce(per_element(LABELS, PRED), weights, reduction),
                               rtol=1e-10)


def test_softmax_losses_label_smoothing_and_total_loss():
    logits = R.standard_normal((4, 3))
    onehot = np.eye(3)[[0, 2, 1, 1]]
    smooth = tf.losses.softmax_cross_entropy(onehot, tf.constant(logits), label_smoothing=0.3)
    sparse = tf.losses.sparse_softmax_cross_entropy([0, 2, 1, 1], tf.constant(logits),
                                                    weights=[1.0, 2.0, 0.0, 1.0])
    w = tf.get_variable("w", [2], tf.float64, initializer=tf.ones_initializer(),
                        regularizer=tf.contrib.layers.l2_regularizer(1.0))
    total = tf.losses.get_total_loss()
    log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    labels = onehot * 0.7 + 0.1
    with session() as sess:
        got_smooth, got_sparse, got_total = sess.run([smooth, sparse, total])
        assert sess.run(w).tolist() == [1, 1]
    assert got_smooth == pytest.approx(np.mean(-(labels * log_p).sum(1)), rel=1e-10)
    picked = -log_p[range(4), [0, 2, 1, 1]]
    assert got_sparse == pytest.approx((picked[0] + 2 * picked[1] + picked[3]) / 3, rel=1e-10)
    assert got_total == pytest.approx(got_smooth + got_sparse + 1.0, rel=1e-10)


def test_losses_shape_mismatch_is_a_shape_error():
    with pytest.raises(errors.ShapeError, match=r"labels .* shape \(4, 3\) .* shape \(3,\)"):
        tf.losses.mean_squared_error(tf.zeros([4, 3]), tf.zeros([3]))


# -- metrics -----------------------------------------------------------------------------------
def test_streaming_metrics_over_batches():
    labels = tf.placeholder(tf.int64, [None])
    preds = tf.placeholder(tf.int64, [None])
    scores = tf.placeholder(tf.float32, [None])
    acc, acc_up = tf.metrics.accuracy(labels, preds)
    mean, mean_up = tf.metrics.mean(scores, weights=tf.cast(labels, tf.float32) + 1)
    prec, prec_up = tf.metrics.precision(labels, preds)
    rec, rec_up = tf.metrics.recall(labels, preds)
    auc, auc_up = tf.metrics.auc(labels, scores, num_thresholds=50)
    assert {v.name for v in tf.local_variables()} >= {"accuracy/total:0", "accuracy/count:0"}
    assert not tf.trainable_variables()
    batches = [([1, 0, 1, 1], [1, 1, 0, 1], [0.9, 0.6, 0.3, 0.8]),
               ([0, 0, 1], [0, 1, 1], [0.1, 0.7, 0.65])]
    with session() as sess:
        for y, p, s in batches:
            sess.run([acc_up, mean_up, prec_up, rec_up, auc_up],
                     {labels: y, preds: p, scores: s})
        got = sess.run([acc, mean, prec, rec, auc])
    y = np.concatenate([b[0] for b in batches])
    p = np.concatenate([b[1] for b in batches])
    s = np.concatenate([b[2] for b in batches])
    tp = np.sum((y == 1) & (p == 1))
    w = y + 1.0
    expected_auc = 0.0  # the trapezoidal ROC over the same thresholds, point by point
    thresholds = [-1e-7] + [(i + 1) / 49 for i in range(48)] + [1 + 1e-7]
    points = []
    for t in thresholds:
        pos = s > np.float32(t)
        tpr = np.sum(pos & (y == 1)) / (np.sum(y == 1) + 1e-7)
        fpr = np.sum(pos & (y == 0)) / (np.sum(y == 0) + 1e-7)
        points.append((fpr, tpr))
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        expected_auc += (x0 - x1) * (y0 + y1) / 2
    np.testing.assert_allclose(got, [np.mean(y == p), np.sum(w * s) / np.sum(w),
                                     tp / np.sum(p == 1), tp / np.sum(y == 1), expected_auc],
                               rtol=1e-5)
