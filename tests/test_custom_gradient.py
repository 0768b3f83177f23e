"""User-written gradients (ops/custom_gradient.py): tf.custom_gradient, and
gradient_override_map with tf.RegisterGradient, on the backend FLOWJIT_BACKEND selects;
gradients against finite differences where the custom gradient is the true one, against the
user's formula where it is not (a straight-through estimator); their IR printed, parsed and
verified; the errors."""
import itertools

import numpy as np
import pytest

import flowjit as tf
from flowjit import errors
from flowjit.compiler import CompileOptions, optimize
from flowjit.ir.core import TensorType
from flowjit.ir.parser import parse_func
from flowjit.ir.printer import print_func
from flowjit.ir.verifier import verify
from flowjit.lower import lower
from test_gradients import check_gradients

V = np.array([0.5, -1.0, 2.0])
_names = itertools.count()


def _fresh(prefix: str) -> str:
    """A gradient name not yet registered in this process (registrations are global)."""
    return f"{prefix}_{next(_names)}"


@tf.custom_gradient
def log1pexp(x):
    """The numerically stable gradient of log(1 + e^x) (TF1's documentation example)."""
    e = tf.exp(x)

    def grad(dy):
        return dy * (1 - 1 / (1 + e))
    return tf.log(1 + e), grad


def test_custom_gradient_is_the_true_gradient_against_finite_differences():
    check_gradients(log1pexp, V)


def test_custom_gradient_replaces_autodiff_where_autodiff_gives_nan():
    x = tf.placeholder(tf.float32, [3])
    y = log1pexp(x)
    g = tf.gradients(tf.reduce_sum(y), x)[0]
    plain = tf.gradients(tf.reduce_sum(tf.log(1 + tf.exp(x))), x)[0]
    with tf.Session() as sess:
        got, naive = sess.run([g, plain], {x: [0.0, 1.0, 100.0]})
    np.testing.assert_allclose(got, [0.5, 1 / (1 + np.exp(-1.0)), 1.0], rtol=1e-6)
    assert np.isnan(naive[2])  # inf / inf: why the custom gradient exists


def test_custom_gradient_with_several_inputs_outputs_and_a_none_gradient():
    @tf.custom_gradient
    def scaled(a, b):
        def grad(da, db):
            return da * 3.0 + db, None  # the gradient the user says, not d/da of a*2
        return (a * 2.0, a + b), grad

    a = tf.placeholder(tf.float32, [2])
    b = tf.placeholder(tf.float32, [2])
    y0, y1 = scaled(a, b)
    assert y0.shape.as_list() == [2]
    ga, gb = tf.gradients(tf.reduce_sum(y0 * [1.0, 2.0]) + tf.reduce_sum(y1), [a, b])
    only_y0 = tf.gradients(tf.reduce_sum(y0), a)[0]  # y1 has no cotangent: zeros
    with tf.Session() as sess:
        out = sess.run([y0, y1, ga, gb, only_y0], {a: [1.0, 2.0], b: [5.0, 6.0]})
    np.testing.assert_allclose(out[0], [2.0, 4.0])
    np.testing.assert_allclose(out[1], [6.0, 8.0])
    np.testing.assert_allclose(out[2], [4.0, 7.0])
    np.testing.assert_allclose(out[3], [0.0, 0.0])
    np.testing.assert_allclose(out[4], [3.0, 3.0])


def test_custom_gradient_makes_a_py_func_differentiable():
    @tf.custom_gradient
    def cube(x):
        y = tf.py_func(lambda v: v ** 3, [x], tf.float64)
        y.set_shape(x.shape)

        def grad(dy):
            return dy * 3.0 * x * x
        return y, grad
    check_gradients(cube, V)


def test_custom_gradient_inside_a_cond_branch():
    def build(x):
        flag = tf.placeholder_with_default(True, [])
        return tf.cond(flag, lambda: log1pexp(x) * 2.0, lambda: x)
    check_gradients(build, V)


def test_py_func_gradient_through_gradient_override_map():
    name = _fresh("CubeGrad")

    @tf.RegisterGradient(name)
    def _cube_grad(op, grad):
        return grad * 3.0 * op.inputs[0] * op.inputs[0]

    def build(x):
        with tf.get_default_graph().gradient_override_map({"PyFunc": name}):
            y = tf.py_func(lambda v: v ** 3, [x], tf.float64)
        y.set_shape(x.shape)
        return tf.sin(y)
    check_gradients(build, V)


def test_straight_through_estimator_trains_through_sign():
    w = tf.Variable([0.3, -0.2, 0.1], name="w")
    with tf.get_default_graph().gradient_override_map({"Sign": "Identity"}):
        binary = tf.sign(w)
    loss = tf.reduce_sum(binary * [1.0, 2.0, -3.0])
    (grad,) = tf.gradients(loss, [w])
    step = tf.train.GradientDescentOptimizer(0.5).minimize(loss)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_allclose(sess.run(grad), [1.0, 2.0, -3.0])
        sess.run(step)
        np.testing.assert_allclose(sess.run(w), [-0.2, -1.2, 1.6], rtol=1e-6)


def test_override_applies_only_inside_the_context_and_to_the_mapped_type():
    name = _fresh("Doubled")

    @tf.RegisterGradient(name)
    def _doubled(op, grad):
        return [grad * 2.0]

    x = tf.placeholder(tf.float32, [2])
    with tf.get_default_graph().gradient_override_map({"Sin": name}):
        inside, untouched = tf.sin(x), tf.cos(x)
    outside = tf.sin(x)
    grads = [tf.gradients(tf.reduce_sum(y), x)[0] for y in (inside, untouched, outside)]
    feed = {x: [0.0, 1.0]}
    with tf.Session() as sess:
        got = sess.run(grads, feed)
    np.testing.assert_allclose(got[0], [2.0, 2.0])
    np.testing.assert_allclose(got[1], -np.sin([0.0, 1.0]), rtol=1e-6)
    np.testing.assert_allclose(got[2], np.cos([0.0, 1.0]), rtol=1e-6)


def test_custom_gradient_ir_prints_parses_and_verifies_and_autodiff_removes_it():
    x = tf.placeholder(tf.float32, [3], name="x")
    y = log1pexp(x)
    g = tf.gradients(tf.reduce_sum(y), x)[0]
    func = lower([y, g], feed_types={x: TensorType(tf.float32, (3,))})
    text = print_func(func)
    assert " custom_gradient %" in text and "n_outputs=1" in text
    parsed = parse_func(text)
    verify(parsed)
    assert print_func(parsed) == text
    optimized = optimize(func, CompileOptions(verify=True))
    assert " custom_gradient %" not in print_func(optimized)


def test_unregistered_override_name_and_double_registration_are_errors():
    x = tf.placeholder(tf.float32, [2], name="x")
    with tf.get_default_graph().gradient_override_map({"Sin": "NoSuchGradient"}):
        y = tf.sin(x, name="my_sin")
    with pytest.raises(LookupError, match="my_sin.*NoSuchGradient"):
        tf.gradients(y, x)
    name = _fresh("Twice")
    tf.RegisterGradient(name)(lambda op, g: g)
    with pytest.raises(KeyError, match=name):
        tf.RegisterGradient(name)(lambda op, g: g)
    with pytest.raises(TypeError, match="gradient_override_map"):
        with tf.get_default_graph().gradient_override_map(["Sin"]):
            pass


def test_gradient_functions_returning_the_wrong_count_or_dtype_are_errors():
    name = _fresh("TooMany")

    @tf.RegisterGradient(name)
    def _too_many(op, grad):
        return [grad, grad]

    x = tf.placeholder(tf.float32, [2], name="x")
    with tf.get_default_graph().gradient_override_map({"Exp": name}):
        y = tf.exp(x)
    with pytest.raises(errors.StructureError, match="returned 2 gradients for 1 inputs"):
        tf.gradients(y, x)

    @tf.custom_gradient
    def bad_dtype(a):
        return a * 2.0, lambda dy: tf.cast(dy, tf.float64)
    with pytest.raises(errors.DTypeError, match="float64 gradient"):
        bad_dtype(x)


def test_override_gradient_reading_another_tensor_is_unimplemented():
    name = _fresh("Foreign")
    other = tf.placeholder(tf.float32, [2], name="other")

    @tf.RegisterGradient(name)
    def _foreign(op, grad):
        return grad * other

    x = tf.placeholder(tf.float32, [2], name="x")
    with tf.get_default_graph().gradient_override_map({"Exp": name}):
        y = tf.exp(x)
    with pytest.raises(errors.UnimplementedError, match="other"):
        tf.gradients(y, x)


def test_overrides_apply_to_ops_in_cond_branches_and_loop_bodies():
    """`with gradient_override_map({"Round": "Identity"})` around a cond or a loop reaches
    the ops traced inside (a straight-through round in a loop)."""
    x = tf.placeholder(tf.float32, [3])
    p = tf.placeholder_with_default(True, [])
    graph = tf.get_default_graph()
    with graph.gradient_override_map({"Round": "Identity"}):
        in_cond = tf.cond(p, lambda: tf.round(x * 1.5), lambda: x)
        _, in_loop = tf.while_loop(lambda i, v: i < 3, lambda i, v: (i + 1, tf.round(v * 1.5)),
                                   [0, x])
    grads = [tf.gradients(tf.reduce_sum(y), x)[0] for y in (in_cond, in_loop)]
    with tf.Session() as sess:
        got = sess.run(grads, {x: [1.2, -0.3, 2.0]})
    np.testing.assert_allclose(got[0], [1.5] * 3)
    np.testing.assert_allclose(got[1], [1.5 ** 3] * 3, rtol=1e-6)


def test_custom_gradient_reading_a_variable_is_an_error_not_a_missing_gradient():
    v = tf.Variable(2.0, name="scale")

    @tf.custom_gradient
    def scaled(x):
        return x * v, lambda dy: dy * v
    with pytest.raises(errors.UnimplementedError, match="'scale'.*variables"):
        scaled(tf.placeholder(tf.float32, [2]))
