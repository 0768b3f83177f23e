"""Variables, get_variable and variable scopes."""
import numpy as np
import pytest

import flowjit as tf
from flowjit import errors


def test_variable_names_and_dtype():
    w = tf.Variable(initial_value=2, dtype=tf.float32, name="w")
    assert w.name == "w:0" and w.dtype is tf.float32 and w.shape.as_list() == []
    assert tf.Variable(1.0, name="w").name == "w_1:0"
    assert "w" in repr(w)


def test_get_variable_with_initializer_value():
    W = tf.get_variable("W", initializer=[0.2, 0.7])
    assert W.name == "W:0" and W.shape.as_list() == [2]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_allclose(sess.run(W), [0.2, 0.7], rtol=1e-7)


def test_variable_scope_and_reuse():
    with tf.variable_scope("layer1"):
        w = tf.get_variable("weights", [3, 2], initializer=tf.zeros_initializer())
    assert w.name == "layer1/weights:0"
    with pytest.raises(ValueError, match="already exists"):
        with tf.variable_scope("layer1"):
            tf.get_variable("weights", [3, 2])
    with tf.variable_scope("layer1", reuse=True):
        assert tf.get_variable("weights", [3, 2]) is w
    with tf.variable_scope("layer1", reuse=tf.AUTO_REUSE):
        assert tf.get_variable("weights") is w
        fresh = tf.get_variable("bias", [2], initializer=tf.ones_initializer())
    assert fresh.name == "layer1/bias:0"
    with pytest.raises(ValueError, match="does not exist"):
        with tf.variable_scope("other", reuse=True):
            tf.get_variable("weights", [1])


def test_variable_scope_reuse_variables():
    with tf.variable_scope("net") as scope:
        a = tf.get_variable("a", [1])
        scope.reuse_variables()
        assert tf.get_variable("a", [1]) is a


def test_get_variable_default_initializer_is_glorot_uniform():
    w = tf.get_variable("w", [100, 50])
    limit = np.sqrt(6.0 / 150)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        values = sess.run(w)
    assert values.shape == (100, 50)
    assert np.all(np.abs(values) <= limit) and values.std() > limit / 3


def test_constant_initializer_fills_shape():
    b = tf.get_variable("b", [3], initializer=tf.constant_initializer(0))
    c = tf.get_variable("c", [2, 2], initializer=tf.constant_initializer([1, 2, 3, 4]))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_array_equal(sess.run(b), [0, 0, 0])
        np.testing.assert_array_equal(sess.run(c), [[1, 2], [3, 4]])


def test_variables_initializer_subset():
    a = tf.Variable(1.0)
    b = tf.Variable(2.0)
    with tf.Session() as sess:
        sess.run(tf.variables_initializer([a]))
        assert sess.run(a) == 1.0
        with pytest.raises(errors.FailedPreconditionError):
            sess.run(b)


def test_variable_from_random_initial_value():
    tf.set_random_seed(1)
    w = tf.Variable(tf.random_normal([784, 10]))
    assert w.shape.as_list() == [784, 10]
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        values = sess.run(w)
    assert abs(values.mean()) < 0.05 and abs(values.std() - 1) < 0.05


def test_assign_with_wrong_shape_is_a_build_error():
    v = tf.Variable([1.0, 2.0], name="v")
    with pytest.raises(errors.ShapeError, match="'v:0'"):
        tf.assign(v, [1.0, 2.0, 3.0])


def test_local_variables_initializer_is_runnable():
    with tf.Session() as sess:
        assert sess.run(tf.local_variables_initializer()) is None
