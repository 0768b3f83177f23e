"""Host callbacks, printing, numeric checks and assertions (ops/host.py), on the backend
FLOWJIT_BACKEND selects: results against numpy, effects kept by every pass, IR round trips."""
import numpy as np
import pytest

import flowjit as tf
from flowjit import errors
from flowjit.compiler import CompileOptions, optimize
from flowjit.ir.core import TensorType
from flowjit.ir.parser import parse_func
from flowjit.ir.printer import print_func
from flowjit.lower import lower
from flowjit.ops.host import summary
from flowjit.passes import dce
from test_gradients import check_gradients

VALUES = np.array([0.5, 2.0, 3.25], np.float32)


def _roundtrip(func):
    text = print_func(func)
    assert print_func(parse_func(text)) == text
    return text


# -- py_func / numpy_function ---------------------------------------------------------------
def test_py_func_runs_numpy_code_between_compiled_ops():
    x = tf.placeholder(tf.float32, [None], name="x")
    y = tf.py_func(lambda a: np.sort(a)[::-1].copy(), [x * 2.0], tf.float32)
    y.set_shape([None])
    z = tf.reduce_sum(y * y) + tf.numpy_function(lambda a: np.float32(a.max()), [x], tf.float32)
    with tf.Session() as sess:
        got_y, got_z = sess.run([y, z], {x: VALUES})
    np.testing.assert_array_equal(got_y, np.sort(VALUES * 2)[::-1])
    np.testing.assert_allclose(got_z, np.sum((VALUES * 2) ** 2) + VALUES.max(), rtol=1e-6)


def test_py_func_with_several_outputs_and_set_shape_gives_static_ir_types():
    x = tf.placeholder(tf.float32, [3], name="x")
    low, count = tf.py_func(lambda a: (np.minimum(a, 1.0), np.int64(a.size)), [x],
                            [tf.float32, tf.int64])
    low.set_shape([3])
    func = lower([low, count], feed_types={x: TensorType(tf.float32, (3,))})
    (call,) = [i for i in func.body if i.op == "py_func"]
    assert [r.type for r in call.results] == [TensorType(tf.float32, (3,)),
                                              TensorType(tf.int64, None)]
    assert "py_func" in _roundtrip(func)
    with tf.Session() as sess:
        got_low, got_count = sess.run([low, count], {x: VALUES})
    np.testing.assert_array_equal(got_low, np.minimum(VALUES, 1.0))
    assert got_count == VALUES.size


def test_stateful_py_func_runs_every_time_and_is_never_merged():
    calls = []

    def record(a):
        calls.append(a.copy())
        return a
    x = tf.placeholder(tf.float32, [3])
    first = tf.py_func(record, [x], tf.float32)
    second = tf.py_func(record, [x], tf.float32)
    with tf.Session() as sess:
        sess.run([first, second], {x: VALUES})
        sess.run(first, {x: VALUES + 1})
    assert len(calls) == 3
    np.testing.assert_array_equal(calls[-1], VALUES + 1)


def test_py_func_errors_name_the_op():
    x = tf.placeholder(tf.float32, [3])
    wrong_dtype = tf.py_func(lambda a: a.astype(np.float64), [x], tf.float32, name="widen")
    wrong_shape = tf.py_func(lambda a: a[:2], [x], tf.float32, name="shorten")
    wrong_shape.set_shape([3])
    raising = tf.py_func(lambda a: 1 / 0, [x], tf.float32, name="divide")
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError, match=r"(?s)float64, but Tout expects "
                                                              r"float32.*'widen'"):
            sess.run(wrong_dtype, {x: VALUES})
        with pytest.raises(errors.InvalidArgumentError, match=r"(?s)shape \[2\].*'shorten'"):
            sess.run(wrong_shape, {x: VALUES})
        with pytest.raises(errors.UnknownError, match=r"(?s)ZeroDivisionError.*'divide'"):
            sess.run(raising, {x: VALUES})


def test_py_func_has_no_gradient_as_in_tf1():
    x = tf.placeholder(tf.float32, [3])
    with pytest.raises(LookupError, match="PyFunc"):
        tf.gradients(tf.py_func(np.exp, [x], tf.float32), x)


# -- tf.Print / tf.print --------------------------------------------------------------------
def test_tf_Print_passes_its_input_through_and_prints_to_stderr(capsys):
    x = tf.placeholder(tf.float32, [3], name="x")
    y = tf.Print(x * 2.0, [x, tf.reduce_sum(x)], "values: ", first_n=2, summarize=2)
    with tf.Session() as sess:
        outputs = [sess.run(y, {x: VALUES + i}) for i in range(3)]
    for i, out in enumerate(outputs):
        np.testing.assert_array_equal(out, (VALUES + i) * 2)
    err = capsys.readouterr().err.splitlines()
    assert err == [f"values: {summary(VALUES + i, 2)}[{summary(np.sum(VALUES + i), 2)}]"
                   for i in range(2)]  # first_n=2: the third run prints nothing


def test_tf_Print_is_differentiable_through_its_input():
    check_gradients(lambda x: tf.Print(tf.sin(x), [x], "x") * x, np.array([0.3, -1.2]))


def test_tf_print_prints_in_run_order_and_survives_dead_code_elimination(capsys):
    x = tf.placeholder(tf.float32, [3], name="x")
    first = tf.print("first", x)
    with tf.control_dependencies([first]):
        total = tf.reduce_sum(x)
    with tf.control_dependencies([total]):
        second = tf.print("second", total, x * 2, sep="|")
    with tf.control_dependencies([second]):
        out = tf.identity(total)
    func = lower([out], feed_types={x: TensorType(tf.float32, (3,))})
    optimized = optimize(func, CompileOptions(verify=True))
    assert [i.op for i in optimized.body].count("print_v2") == 2
    assert "print_v2" in _roundtrip(optimized)
    with tf.Session() as sess:
        got = sess.run(out, {x: VALUES})
        assert sess.run(first, {x: VALUES}) is None
    assert got == np.sum(VALUES)
    err = capsys.readouterr().err.splitlines()
    assert err == [f"first {np.array2string(VALUES, separator=' ')}",
                   f"second|{np.sum(VALUES)}|{np.array2string(VALUES * 2, separator=' ')}",
                   f"first {np.array2string(VALUES, separator=' ')}"]


def test_dce_keeps_effects_whose_results_nobody_reads():
    text = """func @main(%x: f32[3] {feed="x:0"}) {
  %0: f32[3] = neg %x
  %1: f32[3] = print %x {first_n=-1, message="m", summarize=3, token="t"}
  print_v2 %x {end="\\n", sep=" ", stream="stderr", summarize=3, template=[none]}
  return %0 {fetch="Neg:0"}
}
"""
    func = parse_func(text)
    kept, changed = dce.run(func)
    assert not changed and [i.op for i in kept.body] == ["neg", "print", "print_v2"]


# -- check_numerics ---------------------------------------------------------------------------
def test_check_numerics_names_the_op_that_produced_the_nan():
    x = tf.placeholder(tf.float32, [2], name="x")
    logged = tf.log(x, name="log_x")
    checked = tf.check_numerics(logged, "after log")
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(checked, {x: [1.0, 2.0]}), np.log([1.0, 2.0]))
        with pytest.raises(errors.InvalidArgumentError,
                           match=r"after log : Tensor had NaN values.*produced by op 'log_x'"):
            sess.run(checked, {x: [1.0, -1.0]})
        with pytest.raises(errors.InvalidArgumentError, match=r"Tensor had Inf values"):
            sess.run(tf.debugging.check_numerics(logged, "m"), {x: [0.0, 1.0]})


def test_check_numerics_checks_gradients_too():
    x = tf.placeholder(tf.float64, [2])
    y = tf.reduce_sum(tf.sqrt(tf.check_numerics(x * x, "square")))
    (grad,) = tf.gradients(tf.check_numerics(y, "y"), x)
    check_gradients(lambda v: tf.check_numerics(tf.sin(v), "sin") * v, np.array([0.4, 1.3]))
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError, match="detected in gradient"):
            sess.run(grad, {x: [0.0, 1.0]})  # d sqrt(u)/du at 0 is inf


def test_add_check_numerics_ops_checks_every_float_tensor_of_the_graph():
    x = tf.placeholder(tf.float32, [2], name="x")
    ratio = tf.divide(1.0, x, name="ratio")
    total = tf.reduce_sum(ratio * 0.0, name="total")
    check = tf.add_check_numerics_ops()
    with tf.Session() as sess:
        assert sess.run([total, check], {x: [1.0, 2.0]})[0] == 0.0
        with pytest.raises(errors.InvalidArgumentError, match=r"op 'ratio'"):
            sess.run([total, check], {x: [0.0, 2.0]})


# -- assertions -------------------------------------------------------------------------------
def test_assert_equal_and_assert_positive_fail_the_run_with_invalid_argument():
    x = tf.placeholder(tf.int32, [2], name="x")
    y = tf.placeholder(tf.int32, [2], name="y")
    with tf.control_dependencies([tf.assert_equal(x, y, message="must match"),
                                  tf.debugging.assert_positive(x)]):
        total = tf.identity(x + y)
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(total, {x: [1, 2], y: [1, 2]}), [2, 4])
        with pytest.raises(errors.InvalidArgumentError,
                           match=r"must match Condition x == y.*\[1 2\].*\[1 3\]"):
            sess.run(total, {x: [1, 2], y: [1, 3]})
        with pytest.raises(errors.InvalidArgumentError, match=r"x > 0.*\[-1 2\]"):
            sess.run(total, {x: [-1, 2], y: [-1, 2]})


def test_assertions_on_constants_fail_when_the_graph_is_built():
    with pytest.raises(errors.InvalidArgumentError, match="x == y"):
        tf.assert_equal(tf.constant([1, 2]), [1, 3])
    with pytest.raises(errors.InvalidArgumentError, match="x > 0"):
        tf.assert_positive(tf.constant([1.0, 0.0]))
    assert tf.assert_equal(tf.constant(2), 2).type == "NoOp"


def test_assert_rank_is_static_when_the_rank_is_known_else_checked_at_run_time():
    with pytest.raises(ValueError, match="must have rank 2"):
        tf.assert_rank(tf.zeros([3]), 2)
    assert tf.debugging.assert_rank(tf.zeros([3, 1]), 2).type == "NoOp"
    x = tf.placeholder(tf.float32, None, name="any_rank")
    check = tf.assert_rank(x, 2)
    with tf.Session() as sess:
        assert sess.run(check, {x: [[1.0]]}) is None
        with pytest.raises(errors.InvalidArgumentError, match=r"must have rank 2.*rank 1"):
            sess.run(check, {x: [1.0]})


def test_host_ops_round_trip_through_the_ir_text():
    x = tf.placeholder(tf.float32, [3], name="x")
    checked = tf.check_numerics(tf.Print(x, [x], 'say "hi"\n\t'), "m")
    guard = tf.Assert(tf.reduce_all(x > 0), ["x:", x, "\x01"])
    func = lower([checked], [guard], feed_types={x: TensorType(tf.float32, (3,))})
    text = _roundtrip(func)
    assert 'message="say \\"hi\\"\\n\\t"' in text and '"\\x01"' in text
