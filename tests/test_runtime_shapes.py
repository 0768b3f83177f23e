"""Shapes given as tensors computed from run-time shapes (ops/shape_values.py): partially known
static shapes at graph build, concrete shapes in the IR, results checked against numpy on
the backend FLOWJIT_BACKEND selects, gradients against finite differences."""
import numpy as np
import pytest

import flowjit as tf
from flowjit import errors
from flowjit.ir.parser import parse_func
from flowjit.ir.printer import print_func
from flowjit.lower import lower
from flowjit.ir.core import TensorType
from test_gradients import check_gradients

X = np.arange(24, dtype=np.float32).reshape(4, 2, 3)


def _batch_placeholder():
    return tf.placeholder(tf.float32, [None, 2, 3], name="x")


def test_reshape_to_a_shape_made_of_tf_shape_and_ints():
    x = _batch_placeholder()
    flat = tf.reshape(x, [tf.shape(x)[0], -1])
    back = tf.reshape(flat, tf.shape(x))
    assert flat.shape.ndims == 2 and back.shape.as_list() == [None, 2, 3]
    with tf.Session() as sess:
        for batch in (X, X[:1]):
            out_flat, out_back = sess.run([flat, back], {x: batch})
            np.testing.assert_array_equal(out_flat, batch.reshape(batch.shape[0], -1))
            np.testing.assert_array_equal(out_back, batch)


def test_zeros_ones_fill_with_tensor_shapes_and_mixed_lists():
    x = _batch_placeholder()
    zeros = tf.zeros(tf.shape(x))
    ones = tf.ones([tf.shape(x)[0], 1], tf.int32)
    filled = tf.fill([2, tf.shape(x)[2] * 2], 7.5)
    assert zeros.shape.as_list() == [None, 2, 3]
    assert ones.shape.as_list() == [None, 1] and filled.shape.as_list() == [2, None]
    with tf.Session() as sess:
        z, o, f = sess.run([zeros, ones, filled], {x: X})
    np.testing.assert_array_equal(z, np.zeros_like(X))
    np.testing.assert_array_equal(o, np.ones((X.shape[0], 1), np.int32))
    np.testing.assert_array_equal(f, np.full((2, X.shape[2] * 2), 7.5, np.float32))


def test_tile_and_slice_with_tensor_arguments():
    x = _batch_placeholder()
    n = tf.shape(x)[0]
    tiled = tf.tile(x, tf.stack([1, n, 1]))
    sliced = tf.slice(x, [1, 0, tf.shape(x)[2] - 2], [n - 1, -1, 2])
    assert tiled.shape.as_list() == [None, None, 3]
    assert sliced.shape.as_list() == [None, 2, 2]
    with tf.Session() as sess:
        t, s = sess.run([tiled, sliced], {x: X})
    np.testing.assert_array_equal(t, np.tile(X, [1, X.shape[0], 1]))
    np.testing.assert_array_equal(s, X[1:, :, 1:3])


def test_random_ops_with_a_tensor_shape_match_their_static_twins():
    x = _batch_placeholder()
    shape = tf.shape(x)
    dynamic = [tf.random_normal(shape, seed=3), tf.truncated_normal(shape, seed=4),
               tf.random_uniform(shape, seed=5),
               tf.random_uniform(shape, 0, 10, dtype=tf.int32, seed=6)]
    static = [tf.random_normal(X.shape, seed=3), tf.truncated_normal(X.shape, seed=4),
              tf.random_uniform(X.shape, seed=5),
              tf.random_uniform(X.shape, 0, 10, dtype=tf.int32, seed=6)]
    assert all(d.shape.as_list() == [None, 2, 3] for d in dynamic)
    with tf.Session() as sess:
        got = sess.run(dynamic, {x: X})
    with tf.Session() as sess:
        want = sess.run(static)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_range_over_a_run_time_dimension():
    x = _batch_placeholder()
    rows = tf.range(tf.shape(x)[0])
    odd = tf.range(1, tf.shape(x)[0] * 2, 2)
    floats = tf.range(tf.cast(tf.shape(x)[1], tf.float32), delta=0.5)
    with tf.Session() as sess:
        r, o, f = sess.run([rows, odd, floats], {x: X})
    np.testing.assert_array_equal(r, np.arange(X.shape[0], dtype=np.int32))
    np.testing.assert_array_equal(o, np.arange(1, X.shape[0] * 2, 2, dtype=np.int32))
    np.testing.assert_array_equal(f, np.arange(0, X.shape[1], 0.5, dtype=np.float32))
    assert f.dtype == np.float32


def test_shape_size_rank_fold_to_constants_when_lowering():
    x = _batch_placeholder()
    y = tf.reshape(x, [tf.size(x) // tf.shape(x)[0], tf.shape(x)[0] * tf.rank(x) // 3])
    func = lower([y, tf.shape(x)], feed_types={x: TensorType(tf.float32, (4, 2, 3))})
    text = print_func(func)
    assert "shape_of" not in text and "reshape_dynamic" not in text
    assert all(r.type.is_static for instr in func.body for r in instr.results)
    assert print_func(parse_func(text)) == text
    with tf.Session() as sess:
        out, shape = sess.run([y, tf.shape(x)], {x: X})
    np.testing.assert_array_equal(out, X.reshape(6, 4))
    np.testing.assert_array_equal(shape, X.shape)


def test_gradients_flow_through_ops_given_tensor_shapes():
    def build(x):
        flat = tf.reshape(x, [tf.shape(x)[0], -1])
        part = tf.slice(flat, [0, 1], [tf.shape(x)[0], tf.shape(flat)[1] - 1])
        return tf.tile(part, [1, tf.shape(x)[0]]) * tf.ones([tf.shape(x)[0], 1], tf.float64)
    check_gradients(build, np.random.default_rng(0).standard_normal((3, 2, 2)))


def test_a_shape_that_depends_on_data_is_an_error_naming_the_op():
    x = _batch_placeholder()
    n = tf.placeholder(tf.int32, [None], name="n")
    reshaped = tf.reshape(x, tf.reduce_max(n), name="by_data")
    zeros = tf.zeros([tf.shape(x)[0], tf.reduce_sum(n)], name="zeros_by_data")
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError,
                           match=r"shape of 'by_data'.*'Max:0'.*depends on the data"):
            sess.run(reshaped, {x: X, n: [24]})
        with pytest.raises(errors.InvalidArgumentError,
                           match=r"shape of 'zeros_by_data'.*depends on the data"):
            sess.run(zeros, {x: X, n: [1, 2]})


def test_invalid_run_time_shape_values_are_errors_naming_the_op():
    x = _batch_placeholder()
    bad = tf.zeros([tf.shape(x)[0] - 10], name="negative")
    wrong = tf.reshape(x, [tf.shape(x)[0], 5], name="wrong_size")
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError, match=r"negative entry -6.*'negative'"):
            sess.run(bad, {x: X})
        with pytest.raises(errors.InvalidArgumentError, match=r"24 elements.*'wrong_size'"):
            sess.run(wrong, {x: X})


def test_shape_arguments_must_be_integer_vectors():
    x = _batch_placeholder()
    with pytest.raises(TypeError, match="int32 or int64"):
        tf.reshape(x, tf.cast(tf.shape(x), tf.float32))
    with pytest.raises(errors.ShapeError, match="must be a vector"):
        tf.zeros(tf.reshape(tf.shape(x), [tf.shape(x)[0], -1]))


def test_graphs_with_tensor_shapes_serialize_and_run_again(tmp_path):
    x = _batch_placeholder()
    tf.reshape(tf.slice(x, [0, 0, 0], [tf.shape(x)[0], 1, -1]), [-1, tf.shape(x)[2]],
               name="out")
    tf.train.write_graph(tf.get_default_graph(), str(tmp_path), "g.graph")
    graph = tf.train.load_graph(str(tmp_path / "g.graph"))
    with tf.Session(graph=graph) as sess:
        out = sess.run("out:0", {"x:0": X})
    np.testing.assert_array_equal(out, X[:, :1, :].reshape(-1, 3))
