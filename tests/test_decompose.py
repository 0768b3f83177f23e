"""Data-movement ops expanded into kernel primitives (passes/decompose.py), and reshapes as
buffer aliases inside native segments (runtime/cpu.py): the results match the interpreter,
and nothing runs in numpy."""
import numpy as np
import pytest

import flowjit as tf
from flowjit.compiler import CompileOptions, optimize
from flowjit.interp.evaluate import evaluate
from flowjit.ir.core import TensorType
from flowjit.lower import lower
from flowjit.passes import decompose
from flowjit.runtime import cpu

RNG = np.random.default_rng(11)
X = RNG.standard_normal((4, 6)).astype(np.float32)


def _programs():
    """name -> (fetches of x)"""
    return {
        "stack": lambda x: [tf.stack([x, 2 * x, x + 1], axis=1) * 1.5],
        "split": lambda x: [a * 2.0 for a in tf.split(x, [1, 3, 2], axis=1)],
        "unstack": lambda x: [tf.add_n(tf.unstack(x * 3.0, axis=0))],
        "tile": lambda x: [tf.tile(x * 0.5, [2, 3]) + 1.0],
        "pad": lambda x: [tf.pad(x * 2.0, [[1, 2], [0, 3]], constant_values=-1.0)],
        "pad-scalar-axis": lambda x: [tf.pad(tf.reduce_sum(x, 1), [[2, 0]]) - 1.0],
        # aliases seen by Python: a fetched reshape of an internal value, of a feed, a
        # reshape chain, and a reshape read by a numpy instruction (argmax)
        "alias-fetch": lambda x: [tf.reshape(tf.exp(x), [3, 8]), tf.reshape(x, [24]) * 1.0,
                                  tf.reshape(tf.reshape(x * 2.0, [2, 12]), [6, 4]) + 1.0],
        "alias-to-numpy": lambda x: [tf.argmax(tf.reshape(x * x, [8, 3]), 1)],
    }


@pytest.mark.parametrize("name", sorted(_programs()))
def test_expanded_ops_match_the_interpreter_natively(name):
    x = tf.placeholder(tf.float32, [4, 6])
    fetches = _programs()[name](x)
    func = optimize(lower(fetches, [], {x: TensorType(tf.float32, (4, 6))}), CompileOptions())
    assert not {"stack", "split", "unstack", "tile", "pad"} & {i.op for i in func.body}
    expected = evaluate(func, [X])
    run, stats = cpu.build(func)
    allowed = 1 if name == "alias-to-numpy" else 0  # (argmax has no kernel)
    assert stats["numpy"] == allowed, stats["fallbacks"]
    if name.startswith("alias"):  # the reshapes ran inside a segment, as aliases
        assert stats["segments"] >= 1 and any(i.op == "reshape" for i in func.body)
    for _ in range(2):  # the second run reuses every buffer
        for want, got in zip(expected, run([X])):
            np.testing.assert_allclose(got, want, rtol=1e-6)
    with tf.Session(backend="llvm") as native, tf.Session(backend="eager") as eager:
        for want, got in zip(eager.run(fetches, {x: X}), native.run(fetches, {x: X})):
            np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_variable_updated_through_a_reshape_keeps_its_values():
    """The new value is an alias of a kernel's output: the Session copies it (buffers
    the next run reuses never become state)."""
    v = tf.Variable(np.zeros((2, 6), np.float32))
    x = tf.placeholder(tf.float32, [4, 3])
    step = tf.assign_add(v, tf.reshape(x * 2.0, [2, 6]))
    feed = {x: np.arange(12, dtype=np.float32).reshape(4, 3)}
    with tf.Session(backend="llvm") as sess:
        sess.run(tf.global_variables_initializer())
        for i in range(1, 4):
            sess.run(step.op, feed)
            np.testing.assert_array_equal(sess.run(v), 2.0 * i * feed[x].reshape(2, 6))


def test_the_decompose_pass_on_ir_text():
    from flowjit.ir.parser import parse_func as parse
    from flowjit.ir.printer import print_func
    func = parse("""
func @f(%x: f32[2,3] {feed="x:0"}) {
  %0: f32[3], %1: f32[3] = unstack %x {axis=0, num=2}
  %2: f32[4,3] = tile %x {multiples=[2, 1]}
  return %0 {fetch="a:0"}, %1 {fetch="b:0"}, %2 {fetch="c:0"}
}
""")
    out, changed = decompose.run(func)
    text = print_func(out)
    assert changed and "unstack" not in text and "tile" not in text
    assert text.count("slice") == 2 and "broadcast_to" in text
    x = RNG.standard_normal((2, 3)).astype(np.float32)
    for want, got in zip(evaluate(func, [x]), evaluate(out, [x])):
        np.testing.assert_array_equal(got, want)
    assert print_func(parse(text)) == text  # (round trip)


@pytest.mark.parametrize("a_shape,b_shape,ta,tb", [
    ((3, 5, 4), (3, 4, 6), False, False),
    ((2, 1, 4, 5), (3, 4, 6), True, False),   # broadcast batch dims, A transposed
    ((2, 3, 5, 4), (1, 6, 4), False, True),
])
def test_batched_matmuls_run_natively_one_gemm_per_batch_element(a_shape, b_shape, ta, tb):
    a = tf.placeholder(tf.float32, a_shape)
    b = tf.placeholder(tf.float32, b_shape)
    y = tf.matmul(a, b, transpose_a=ta, transpose_b=tb) + 1.0
    feed = {a: RNG.standard_normal(a_shape).astype(np.float32),
            b: RNG.standard_normal(b_shape).astype(np.float32)}
    func = optimize(lower([y], [], {a: TensorType(tf.float32, a_shape),
                                    b: TensorType(tf.float32, b_shape)}), CompileOptions())
    run, stats = cpu.build(func)
    assert stats["numpy"] == 0, stats["fallbacks"]
    want = np.matmul(np.swapaxes(feed[a], -1, -2) if ta else feed[a],
                     np.swapaxes(feed[b], -1, -2) if tb else feed[b]) + 1.0
    np.testing.assert_allclose(run([feed[a], feed[b]])[0], want, rtol=1e-5, atol=1e-5)
    with tf.Session(backend="llvm") as sess:
        np.testing.assert_allclose(sess.run(y, feed), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding,dilation,k,size", [("SAME", 1, 5, 9), ("SAME", 2, 3, 8),
                                                     ("VALID", 1, 3, 7), ("SAME", 1, 4, 6),
                                                     ("VALID", 2, 2, 9)])
def test_conv_input_gradient_becomes_a_native_convolution(padding, dilation, k, size):
    """conv2d_backprop_input at stride 1 is conv2d of dy with the flipped, channel-swapped
    filter; it matches the op's own numpy kernel (an independent scatter of dy . W^T)."""
    from flowjit.graph.registry import get_op_def
    w = RNG.standard_normal((k, k, 3, 5)).astype(np.float32)
    attrs = {"strides": (1, 1, 1, 1), "padding": padding, "explicit_paddings": (),
             "dilations": (1, dilation, dilation, 1), "data_format": "NHWC"}
    g = tf.placeholder(tf.float32, None)
    dx = tf.nn.conv2d_backprop_input([2, size, size, 3], tf.constant(w), g, attrs["strides"],
                                     padding, dilations=attrs["dilations"])
    from flowjit.ops.conv import windows
    wh, ww = windows((2, size, size, 3), k, k, attrs)
    dy = RNG.standard_normal((2, wh.out, ww.out, 5)).astype(np.float32)
    func = optimize(lower([dx], [], {g: TensorType(tf.float32, dy.shape)}), CompileOptions())
    assert "conv2d_backprop_input" not in {i.op for i in func.body}
    assert any(i.op == "conv2d" or (i.op == "fusion" and any(
        j.op == "conv2d" for j in i.region.body)) for i in func.body)
    want = get_op_def("Conv2DBackpropInput").kernel(w, dy, input_sizes=(2, size, size, 3),
                                                    **attrs)
    run, stats = cpu.build(func)
    assert stats["numpy"] == 0, stats["fallbacks"]
    np.testing.assert_allclose(run([dy])[0], want, rtol=1e-4, atol=1e-4)


def test_strided_conv_input_gradient_stays_one_instruction():
    g = tf.placeholder(tf.float32, [1, 4, 4, 2])
    dx = tf.nn.conv2d_backprop_input([1, 8, 8, 3], tf.ones([3, 3, 3, 2]), g, [1, 2, 2, 1],
                                     "SAME")
    func = optimize(lower([dx], [], {g: TensorType(tf.float32, (1, 4, 4, 2))}),
                    CompileOptions())
    assert [i.op for i in func.body if i.op.startswith("conv2d")] == ["conv2d_backprop_input"]


@pytest.mark.parametrize("kind,k,height,padding", [("max", 2, 6, "SAME"), ("max", 3, 7, "VALID"),
                                                   ("avg", 2, 7, "VALID"),
                                                   ("avg", 3, 6, "SAME")])
def test_tiling_pools_and_their_gradients_become_native_slices(kind, k, height, padding):
    """Pools whose windows tile the input run as strided slices and elementwise ops, and
    match the ops' own numpy kernels, ties included (the first maximum takes the
    gradient)."""
    from flowjit.graph.registry import get_op_def
    x = tf.placeholder(tf.float32, [2, height, 6, 3])
    pool = tf.nn.max_pool if kind == "max" else tf.nn.avg_pool
    y = pool(x, [1, k, k, 1], [1, k, k, 1], padding)
    g = tf.gradients(tf.reduce_sum(y * y), x)[0]
    xv = RNG.integers(0, 3, (2, height, 6, 3)).astype(np.float32)  # many ties
    func = optimize(lower([y, g], [], {x: TensorType(tf.float32, xv.shape)}), CompileOptions())
    assert not {"max_pool", "avg_pool", "max_pool_grad", "avg_pool_grad"} & \
        {i.op for i in func.body}
    run, stats = cpu.build(func)
    assert stats["numpy"] == 0, stats["fallbacks"]
    forward = get_op_def("MaxPool" if kind == "max" else "AvgPool")
    backward = get_op_def("MaxPoolGrad" if kind == "max" else "AvgPoolGrad")
    attrs = {**forward.attr_defaults, "ksize": (1, k, k, 1), "strides": (1, k, k, 1),
             "padding": padding}
    want_y = forward.kernel(xv, **attrs)
    want_g = backward.kernel(xv, want_y, 2 * want_y, **attrs) if kind == "max" else \
        backward.kernel(2 * want_y, orig_input_shape=xv.shape, **attrs)
    got_y, got_g = run([xv])
    np.testing.assert_allclose(got_y, want_y, rtol=1e-6)
    np.testing.assert_allclose(got_g, want_g, rtol=1e-6)


def test_overlapping_or_padded_pools_stay_one_instruction():
    x = tf.placeholder(tf.float32, [1, 7, 7, 2])
    y = tf.nn.max_pool(x, [1, 3, 3, 1], [1, 2, 2, 1], "VALID") + \
        tf.nn.avg_pool(x, [1, 2, 2, 1], [1, 2, 2, 1], "SAME")[:, :3, :3, :]
    func = optimize(lower([y], [], {x: TensorType(tf.float32, (1, 7, 7, 2))}), CompileOptions())
    assert {"max_pool", "avg_pool"} <= {i.op for i in func.body}


@pytest.mark.parametrize("padding,stride,rate,k,multiplier", [
    ("SAME", 1, 1, 3, 1), ("VALID", 2, 1, 3, 2), ("VALID", 1, 2, 3, 3), ("SAME", 2, 1, 2, 1)])
def test_depthwise_convolution_becomes_native_taps(padding, stride, rate, k, multiplier):
    """depthwise_conv2d as per-tap strided slices of the padded input times the tap's
    weights, against the op's own numpy kernel."""
    from flowjit.graph.registry import get_op_def
    xv = RNG.standard_normal((2, 9, 8, 4)).astype(np.float32)
    w = RNG.standard_normal((k, k, 4, multiplier)).astype(np.float32)
    x = tf.placeholder(tf.float32, xv.shape)
    y = tf.nn.depthwise_conv2d(x, tf.constant(w), [1, stride, stride, 1], padding,
                               rate=[rate, rate] if rate > 1 else None)
    func = optimize(lower([y], [], {x: TensorType(tf.float32, xv.shape)}), CompileOptions())
    run, stats = cpu.build(func)
    assert stats["numpy"] == 0, stats["fallbacks"]
    attrs = {"strides": (1, stride, stride, 1), "padding": padding, "explicit_paddings": (),
             "dilations": (1, rate, rate, 1), "data_format": "NHWC"}
    want = get_op_def("DepthwiseConv2dNative").kernel(xv, w, **attrs)
    np.testing.assert_allclose(run([xv])[0], want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding,stride,dilation", [("SAME", 1, 1), ("VALID", 2, 1),
                                                     ("SAME", 1, 2)])
def test_nchw_convolutions_and_pools_run_natively_between_transposes(padding, stride, dilation):
    from flowjit.graph.registry import get_op_def
    xv = RNG.standard_normal((2, 3, 8, 8)).astype(np.float32)
    w = RNG.standard_normal((3, 3, 3, 5)).astype(np.float32)
    x = tf.placeholder(tf.float32, xv.shape)
    conv = tf.nn.conv2d(x, tf.constant(w), [1, 1, stride, stride], padding,
                        data_format="NCHW", dilations=[1, 1, dilation, dilation])
    pool = tf.nn.max_pool(x, [1, 1, 2, 2], [1, 1, 2, 2], "VALID", data_format="NCHW")
    func = optimize(lower([conv, pool], [], {x: TensorType(tf.float32, xv.shape)}),
                    CompileOptions())
    run, stats = cpu.build(func)
    assert stats["numpy"] == 0, stats["fallbacks"]
    attrs = {"strides": (1, 1, stride, stride), "padding": padding, "explicit_paddings": (),
             "dilations": (1, 1, dilation, dilation), "data_format": "NCHW"}
    pooling = get_op_def("MaxPool")
    want = [get_op_def("Conv2D").kernel(xv, w, **attrs),
            pooling.kernel(xv, **{**pooling.attr_defaults, "ksize": (1, 1, 2, 2),
                                  "strides": (1, 1, 2, 2), "data_format": "NCHW"})]
    for got, expected in zip(run([xv]), want):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
