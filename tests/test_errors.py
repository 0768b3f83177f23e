"""Bad input gets a clear flowjit.errors exception naming the user's tensor."""
import numpy as np
import pytest

import flowjit as tf
from flowjit import errors


def test_wrong_feed_shape_names_the_placeholder():
    x = tf.placeholder(tf.float32, [None, 784], name="images")
    y = tf.reduce_sum(x)
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError) as info:
            sess.run(y, {x: np.zeros((50, 2352))})
    message = str(info.value)
    assert "(50, 2352)" in message and "'images:0'" in message and "(?, 784)" in message
    assert "test_errors.py" in message
    assert isinstance(info.value, ValueError)


def test_wrong_feed_dtype():
    n = tf.placeholder(tf.int32, [2], name="counts")
    with tf.Session() as sess:
        # Numbers convert as np.asarray(value, int32) does (TF1); strings and objects do not.
        with pytest.raises(errors.InvalidArgumentError, match="string.*'counts:0'.*int32"):
            sess.run(n * 2, {n: np.array(["1.5", "2.0"])})
        with pytest.raises(errors.InvalidArgumentError, match="dict.*bool"):
            sess.run(tf.logical_not(tf.placeholder(tf.bool)), {"Placeholder:0": {}})


def test_integer_and_float64_feeds_convert_like_tf1():
    x = tf.placeholder(tf.float32, [2])
    with tf.Session() as sess:
        out = sess.run(x * 1.0, {x: np.array([1, 2])})
        assert out.dtype == np.float32
        assert sess.run(x * 1.0, {x: np.array([0.5, 1.5])}).dtype == np.float32


def test_unfed_placeholder_names_it_and_the_fetch():
    x = tf.placeholder(tf.float32, [None, 3], name="x")
    y = tf.reduce_mean(x * 2.0, name="y")
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError) as info:
            sess.run(y)
    message = str(info.value)
    assert "You must feed a value for placeholder tensor 'x'" in message
    assert "[?,3]" in message and "'y:0'" in message


def test_uninitialized_variable():
    w = tf.Variable(1.0, name="weights")
    y = w * 2.0
    with tf.Session() as sess:
        with pytest.raises(errors.FailedPreconditionError,
                           match="uninitialized value weights.*global_variables_initializer"):
            sess.run(y)


def test_fetch_of_unknown_name():
    tf.constant(1.0, name="known")
    with tf.Session() as sess:
        with pytest.raises(errors.NotFoundError, match="'nope:0'"):
            sess.run("nope:0")
        with pytest.raises(errors.NotFoundError, match="'knwn'.*Did you mean: 'known'"):
            sess.run("knwn")


def test_feed_key_errors():
    x = tf.placeholder(tf.float32)
    with tf.Session() as sess:
        with pytest.raises(errors.NotFoundError):
            sess.run(x, {"missing:0": 1.0})
        with pytest.raises(TypeError):
            sess.run(x, {3: 1.0})
        with pytest.raises(errors.InvalidArgumentError, match="graph element"):
            sess.run(x, {x: tf.constant(1.0)})


def test_fetch_from_another_graph():
    other = tf.Graph()
    with other.as_default():
        c = tf.constant(1.0)
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError, match="not an element"):
            sess.run(c)


def test_gather_out_of_range_is_an_error():
    params = tf.constant([1.0, 2.0, 3.0])
    idx = tf.placeholder(tf.int32, [None], name="idx")
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError, match=r"indices\[1\] = 7 is not in \[0, 3\)"):
            sess.run(tf.gather(params, idx), {idx: [0, 7]})


def test_one_hot_out_of_range_gives_zeros_row():
    idx = tf.placeholder(tf.int32, [None])
    with tf.Session() as sess:
        out = sess.run(tf.one_hot(idx, 3), {idx: [0, 5, -1]})
    np.testing.assert_array_equal(out, [[1, 0, 0], [0, 0, 0], [0, 0, 0]])


def test_sparse_labels_out_of_range():
    logits = tf.zeros([2, 10])
    labels = tf.placeholder(tf.int32, [2])
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError, match="label value of 10"):
            sess.run(loss, {labels: [1, 10]})


def test_runtime_shape_mismatch_names_the_op():
    a = tf.placeholder(tf.float32, [None, 3], name="a")
    b = tf.placeholder(tf.float32, [None, 3], name="b")
    total = tf.add(a, b, name="total")
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError, match="'total'.*test_errors.py"):
            sess.run(total, {a: np.zeros((4, 3)), b: np.zeros((5, 3))})


def test_failed_run_changes_no_variable():
    v = tf.Variable(1.0)
    idx = tf.placeholder(tf.int32, [1])
    update = tf.assign_add(v, 1.0)
    with tf.control_dependencies([update]):
        bad = tf.gather(tf.constant([1.0, 2.0]), idx)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        with pytest.raises(errors.InvalidArgumentError):
            sess.run([bad, update], {idx: [5]})
        assert sess.run(v) == 1.0


def test_integer_division_by_zero():
    a = tf.placeholder(tf.int32, [2])
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError, match="division by zero"):
            sess.run(a // tf.constant([1, 0]), {a: [4, 4]})


def test_float_division_by_zero_is_inf_like_tf():
    a = tf.placeholder(tf.float32, [2])
    with tf.Session() as sess:
        out = sess.run(a / 0.0, {a: [1.0, -1.0]})
    assert np.isposinf(out[0]) and np.isneginf(out[1])


def test_static_index_out_of_range():
    x = tf.placeholder(tf.float32, [3, 2], name="x")
    with pytest.raises(errors.InvalidArgumentError, match="out of bounds"):
        x[5]
    y = tf.placeholder(tf.float32, [None, 2])
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError, match="out of bounds"):
            sess.run(y[4], {y: np.zeros((2, 2))})


def test_reshape_with_wrong_element_count_at_run_time():
    x = tf.placeholder(tf.float32, [None, 4], name="x")
    y = tf.reshape(x, [3, 4])
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError, match=r"8 (values|elements).*\[3, 4\].*Reshape"):
            sess.run(y, {x: np.zeros((2, 4))})


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="Unknown flowjit backend"):
        tf.Session(backend="tpu")


def test_bad_arguments_give_clear_errors():
    x = tf.placeholder(tf.float32, [2, 4], name="x")
    with pytest.raises(errors.ShapeError, match="positive number of parts"):
        tf.split(x, 0)
    with pytest.raises(errors.DTypeError, match="l2_loss needs a floating point"):
        tf.nn.l2_loss(tf.ones([2], tf.int32))
    with pytest.raises(errors.DTypeError, match="to string"):
        tf.cast(x, "string")
    with pytest.raises(TypeError, match="does not fit in int64"):
        tf.constant(2 ** 70)


def test_unknown_fetch_is_also_a_value_error_like_tf1():
    with tf.Session() as sess:
        with pytest.raises(ValueError, match="'y:0'"):
            sess.run("y:0")


@pytest.mark.parametrize("value,says", [
    (None, r"Cannot feed None to Tensor 'x:0'"),
    ({"a": 1}, r"Cannot feed a value of type dict to Tensor 'x:0'"),
    (object(), r"Cannot feed a value of type object to Tensor 'x:0'"),
    ("abc", r"Cannot feed the string 'abc' to Tensor 'x:0'"),
    ([1.0, None], r"a list of 2 items whose item \[1\] is None"),
    ("RAGGED_WITH_TENSOR", r"item \[1\]\[1\] is the graph element .*'c:0'.*fetch it with "
                               r"sess.run first"),
    ([[1.0], [2.0, 3.0]], r"a list of 2 items to Tensor 'x:0'.*it is ragged"),
])
def test_feeding_something_that_is_not_numbers_says_what_was_fed(value, says):
    x = tf.placeholder(tf.float32, [None, None], name="x")
    c = tf.constant(1.0, name="c")
    if value == "RAGGED_WITH_TENSOR":
        value = [[1.0], [2.0, c]]
    with tf.Session() as sess:
        with pytest.raises(errors.FeedError, match=says) as raised:
            sess.run(x * 2, {x: value})
    assert "dtype string" not in str(raised.value)


def test_argmax_and_argmin_of_a_scalar_are_rejected_when_the_graph_is_built():
    for fn in (tf.argmax, tf.argmin):
        with pytest.raises(errors.ShapeError, match=r"rank >= 1, got a scalar.*'Arg(Max|Min)"):
            fn(tf.constant(3.0), 0)


def test_argmax_of_a_fed_scalar_of_unknown_rank_is_an_invalid_argument():
    x = tf.placeholder(tf.float32, None, name="unknown_rank")
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError, match="rank >= 1, got a scalar.*ArgMax"):
            sess.run(tf.argmax(x, 0), {x: 3.0})


def test_integer_reciprocal_is_rejected_when_the_graph_is_built_as_in_tf1():
    # TF1 has no integer Reciprocal kernel; flowjit's silently returned INT_MIN for 1/0.
    for dtype in (tf.int32, tf.int64, tf.uint8):
        with pytest.raises(errors.DTypeError, match=r"dtype u?int\d+.*'Reciprocal"):
            tf.reciprocal(tf.constant([0, 2], dtype))
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(tf.reciprocal(tf.constant([0.0, 2.0]))),
                                      [np.inf, 0.5])


def test_reducing_a_scalar_over_an_axis_is_rejected_on_every_backend():
    # The compiled kernel ignored the axis (2.0), the interpreter leaked numpy's AxisError.
    with pytest.raises(errors.ShapeError, match=r"out of range for a tensor of rank 0.*'Sum"):
        tf.reduce_sum(tf.placeholder(tf.float32, []), axis=0)
    x = tf.placeholder(tf.float32, None, name="unknown_rank")
    with tf.Session() as sess:
        with pytest.raises(errors.InvalidArgumentError, match="rank 0"):
            sess.run(tf.reduce_sum(x, axis=0), {x: 2.0})
        assert sess.run(tf.reduce_sum(x), {x: 2.0}) == 2.0  # no axis: fine


def test_a_deeply_nested_fed_list_is_explained_without_recursion():
    x = tf.placeholder(tf.float32, None, name="x")
    value = [None]
    for _ in range(5000):
        value = [value]
    with tf.Session() as sess:
        with pytest.raises(errors.FeedError, match=r"Cannot feed a list of 1 items whose item "
                                                   r"(\[0\])+ is None"):
            sess.run(x * 2, {x: value})
