"""Regression tests for behaviours where flowjit used to differ from TF1 (issue 11), each
named after the behaviour. They run on whichever backend FLOWJIT_BACKEND selects."""
import numpy as np
import pytest

import flowjit as tf
from flowjit import errors
from test_gradients import check_gradients


# -- feeds are converted as TF1 does: np.asarray(value, dtype=placeholder dtype) ----------------
def test_float_data_fed_to_an_int32_placeholder_is_truncated_as_numpy_does():
    n = tf.placeholder(tf.int32, [3], name="counts")
    fed = np.array([1.5, -2.7, 3.0])
    with tf.Session() as sess:
        out = sess.run(n * 2, {n: fed})
    np.testing.assert_array_equal(out, np.asarray(fed, dtype=np.int32) * 2)
    assert out.dtype == np.int32


def test_python_numbers_and_bools_convert_to_the_placeholder_dtype():
    flags = tf.placeholder(tf.bool, [2])
    small = tf.placeholder(tf.uint8, [2])
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(tf.logical_not(flags), {flags: [1, 0]}),
                                      ~np.asarray([1, 0], dtype=bool))
        np.testing.assert_array_equal(sess.run(small, {small: [True, 7.9]}),
                                      np.asarray([True, 7.9], dtype=np.uint8))


def test_strings_fed_to_a_number_placeholder_are_rejected_naming_it():
    n = tf.placeholder(tf.int32, [2], name="counts")
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError, match=r"string '1'.*'counts:0'.*int32"):
            sess.run(n, {n: ["1", "2"]})
        with pytest.raises(errors.InvalidArgumentError, match=r"'counts:0'.*int32"):
            sess.run(n, {n: np.array(["1", "2"])})


def test_out_of_range_feeds_are_rejected_naming_the_placeholder():
    n = tf.placeholder(tf.int32, [2], name="counts")
    b = tf.placeholder(tf.uint8, [1], name="byte")
    with tf.Session() as sess:
        with pytest.raises(errors.FeedError, match=r"'counts:0'.*outside the range of int32"):
            sess.run(n, {n: [1e10, 2.0]})
        with pytest.raises(errors.FeedError, match=r"'counts:0'.*NaN or infinite"):
            sess.run(n, {n: [np.nan, 2.0]})
        with pytest.raises(errors.FeedError, match=r"'byte:0'.*outside the range of uint8"):
            sess.run(b, {b: np.array([-1])})
        # The edge of the range truncates into it, as np.asarray does.
        assert sess.run(b, {b: [255.9]})[0] == np.asarray([255.9], np.uint8)[0]


# -- softmax_cross_entropy_with_logits flattens labels and logits separately ---------------
def _xent(labels, logits):
    shifted = logits - logits.max(-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    return -(labels * log_probs).sum(-1)


@pytest.mark.parametrize("api", ["softmax_cross_entropy_with_logits",
                                 "softmax_cross_entropy_with_logits_v2"])
def test_softmax_cross_entropy_flattens_labels_and_logits_to_2d_separately(api):
    rng = np.random.default_rng(0)
    logits_value = rng.standard_normal((4, 3)).astype(np.float32)
    labels_value = np.eye(3, dtype=np.float32)[[0, 2, 1, 0]][None]  # [1, 4, 3]
    logits = tf.placeholder(tf.float32, [None, 3])
    loss = getattr(tf.nn, api)(labels=labels_value, logits=logits)
    assert loss.shape.as_list() == [labels_value.shape[1]]  # rows merged with the labels'
    with tf.Session() as sess:
        out = sess.run(loss, {logits: logits_value})
    np.testing.assert_allclose(out, _xent(labels_value[0], logits_value), rtol=1e-5)


def test_softmax_cross_entropy_of_3d_logits_with_2d_labels_keeps_the_logits_batch_shape():
    rng = np.random.default_rng(1)
    logits_value = rng.standard_normal((2, 3, 5))
    labels_value = rng.dirichlet(np.ones(5), size=6)  # [6, 5]
    loss = tf.nn.softmax_cross_entropy_with_logits_v2(labels=labels_value,
                                                      logits=tf.constant(logits_value))
    assert loss.shape.as_list() == [2, 3]
    fed = tf.placeholder(tf.float64, [None, 3, 5])
    fed_loss = tf.nn.softmax_cross_entropy_with_logits_v2(labels=labels_value, logits=fed)
    # (the labels' 6 rows fix the fed batch dimension: 6 / 3)
    assert fed_loss.shape.as_list() == [labels_value.shape[0] // 3, 3]
    with tf.Session() as sess:
        out, fed_out = sess.run([loss, fed_loss], {fed: logits_value})
    want = _xent(labels_value.reshape(2, 3, 5), logits_value)
    np.testing.assert_allclose(out, want, rtol=1e-10)
    np.testing.assert_allclose(fed_out, want, rtol=1e-10)


def test_softmax_cross_entropy_flattened_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    labels = rng.dirichlet(np.ones(3), size=4)[None]
    check_gradients(lambda logits: tf.nn.softmax_cross_entropy_with_logits_v2(
        labels=labels, logits=logits), rng.standard_normal((4, 3)))
    check_gradients(lambda lab, logits: tf.nn.softmax_cross_entropy_with_logits_v2(
        labels=lab, logits=logits), labels, rng.standard_normal((4, 3)))


def test_softmax_cross_entropy_with_a_different_class_count_is_a_shape_error():
    with pytest.raises(errors.ShapeError, match="3 classes but labels"):
        tf.nn.softmax_cross_entropy_with_logits_v2(labels=np.zeros((1, 4, 2), np.float32),
                                                   logits=tf.zeros([4, 3]))


# -- nested lists holding tensors are packed wherever a tensor is expected -----------------
def test_a_list_holding_a_tensor_is_packed_as_the_second_operand():
    t = tf.placeholder(tf.float32, [], name="t")
    with tf.Session() as sess:
        value = np.float32(2.5)
        np.testing.assert_array_equal(sess.run(tf.add(1.0, [t]), {t: value}),
                                      np.add(1.0, [value], dtype=np.float32))
        np.testing.assert_array_equal(sess.run(1.0 + tf.stack([t]) * [[t, 3]], {t: value}),
                                      1.0 + np.array([value]) * np.array([[value, 3]],
                                                                         np.float32))


def test_python_numbers_in_a_packed_list_take_the_dtype_of_its_tensors():
    t = tf.placeholder(tf.float64, [], name="t")
    packed = tf.convert_to_tensor([2, [t, 1]][1])
    mixed = tf.multiply([2, t], t)
    assert packed.dtype == tf.float64 and mixed.dtype == tf.float64
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(mixed, {t: 3.0}), np.multiply([2, 3.0], 3.0))
        np.testing.assert_array_equal(sess.run(tf.concat([[t, 1], [[0, t]][0]], 0), {t: 4.0}),
                                      [4.0, 1.0, 0.0, 4.0])


def test_packed_lists_are_differentiable():
    check_gradients(lambda a, b: tf.multiply([[a[0], 2.0], [b[1], a[1]]], [a, b]),
                    np.array([0.5, -1.5]), np.array([2.0, 0.25]))
