"""Bugs the differential fuzzer (test_fuzz_ops.py) found, as small tests.

A known bug that is not fixed yet is a strict xfail here, kept out of the fuzzer by a filter
marked "Known bug" that names it (tests/fuzz_*.py); when its fix lands, the strict xfail
fails the suite: remove the mark and the fuzzer's filter.
"""
import numpy as np
import pytest

import flowjit as tf


def run_both(fetches, feed=None):
    with tf.Session(backend="eager") as eager, tf.Session(backend="llvm") as native:
        return eager.run(fetches, feed), native.run(fetches, feed)


# -- known bugs the audit also found, fixed ------------------------------------------------------
def test_cast_float32_to_uint8_keeps_values_above_127():
    x = tf.placeholder(tf.float32, [8])
    values = np.array([0, 100, 127, 128, 129, 200, 254, 255], np.float32)
    reference, compiled = run_both(tf.cast(x, tf.uint8), {x: values})
    np.testing.assert_array_equal(compiled, reference)


def test_cast_float64_to_uint8_after_a_clamp_to_255():
    x = tf.placeholder(tf.float64, [1])
    y = tf.cast(tf.clip_by_value(x, 0.0, 255.0), tf.uint8)
    reference, compiled = run_both(y, {x: [40000.0]})
    assert reference[0] == 255
    np.testing.assert_array_equal(compiled, reference)


def test_a_1x1_constant_weight_compiles_in_a_matmul_epilogue():
    x = tf.placeholder(tf.float32, [4, 1])
    y = tf.nn.relu(tf.matmul(x, tf.constant([[2.0]])) + 1)
    reference, compiled = run_both(y, {x: np.arange(4, dtype=np.float32).reshape(4, 1) - 2})
    np.testing.assert_array_equal(compiled, reference)


def test_an_empty_constant_operand_compiles_in_a_matmul_epilogue():
    x = tf.placeholder(tf.float64, [2, 0])
    w = tf.placeholder(tf.float64, [0, 3])
    y = tf.tanh(tf.matmul(tf.ones_like(x), w))
    reference, compiled = run_both(y, {x: np.zeros((2, 0)), w: np.zeros((0, 3))})
    np.testing.assert_array_equal(compiled, reference)


def test_a_size_0_constant_in_an_elementwise_fusion_compiles():
    x = tf.placeholder(tf.float32, [0, 3])
    y = tf.exp(x + tf.constant(np.zeros((0, 3), np.float32)))
    reference, compiled = run_both(y, {x: np.zeros((0, 3), np.float32)})
    assert compiled.shape == reference.shape == (0, 3)


# -- found by the fuzzer, fixed --------------------------------------------------------------------
def test_padding_a_scalar_gives_the_scalar():
    x = tf.placeholder(tf.int16, [])
    reference, compiled = run_both([tf.pad(x, []), tf.pad(x, [], mode="REFLECT")], {x: 7})
    assert reference == compiled == [7, 7]


def test_the_gradient_of_a_slice_of_a_scalar_is_one():
    x = tf.placeholder(tf.float32, [])
    (grad,) = tf.gradients(tf.slice(x, [], []), [x])
    reference, compiled = run_both(grad, {x: 2.0})
    assert reference == compiled == 1.0


def test_padding_a_bool_tensor_pads_with_false_by_default():
    x = tf.placeholder(tf.bool, [2])
    reference, compiled = run_both(tf.pad(x, [[1, 2]]), {x: [True, True]})
    np.testing.assert_array_equal(reference, [False, True, True, False, False])
    np.testing.assert_array_equal(compiled, reference)


def test_softmax_and_its_cross_entropies_over_no_classes():
    logits = tf.placeholder(tf.float32, [3, 0])
    labels = tf.placeholder(tf.float32, [3, 0])
    outputs = [tf.nn.softmax(logits), tf.nn.log_softmax(logits),
               tf.nn.softmax_cross_entropy_with_logits_v2(labels=labels, logits=logits)]
    empty = np.zeros((3, 0), np.float32)
    reference, compiled = run_both(outputs, {logits: empty, labels: empty})
    for ref, got, shape in zip(reference, compiled, [(3, 0), (3, 0), (3,)]):
        assert ref.shape == got.shape == shape
    np.testing.assert_array_equal(compiled[2], [0, 0, 0])


@pytest.mark.parametrize("update", [tf.assign_add, tf.assign_sub])
def test_adding_to_a_bool_variable_fails_when_the_graph_is_built(update):
    v = tf.Variable(np.array([True, False]))
    with pytest.raises(TypeError, match="dtype bool"):  # (it used to fail in the Session)
        update(v, tf.constant([True, True]))
