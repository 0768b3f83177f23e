"""Convolutions and pooling vs loop-by-loop numpy references, and their gradients vs finite
differences.

The references below loop over every output position and filter tap and compute padding
from TF's definitions; they share nothing with the kernels in ops/conv.py (which loop over
taps, each a strided view contracted at once). Float64 results must agree to 1e-10.
"""
import numpy as np
import pytest

import flowjit as tf
from flowjit import errors

from test_gradients import check_gradients

R = np.random.default_rng(7)


def pads_of(size, k, stride, dilation, padding):
    """(out, before, after) of one spatial dimension, as TF defines them."""
    k_eff = (k - 1) * dilation + 1
    if padding == "SAME":
        out = int(np.ceil(size / stride))
        total = max((out - 1) * stride + k_eff - size, 0)
        return out, total // 2, total - total // 2
    if padding == "VALID":
        return int(np.ceil((size - k_eff + 1) / stride)), 0, 0
    before, after = padding
    return (size + before + after - k_eff) // stride + 1, before, after


def ref_conv(x, w, strides, padding, dilations=(1, 1), depthwise=False):
    n, h, wd, c = x.shape
    kh, kw, ci, m = w.shape
    oh, top, _ = pads_of(h, kh, strides[0], dilations[0], padding[0])
    ow, left, _ = pads_of(wd, kw, strides[1], dilations[1], padding[1])
    out = np.zeros((n, oh, ow, ci * m if depthwise else m))
    for b in range(n):
        for oy in range(oh):
            for ox in range(ow):
                for i in range(kh):
                    for j in range(kw):
                        y = oy * strides[0] + i * dilations[0] - top
                        z = ox * strides[1] + j * dilations[1] - left
                        if 0 <= y < h and 0 <= z < wd:
                            if depthwise:
                                out[b, oy, ox] += (x[b, y, z][:, None] * w[i, j]).reshape(-1)
                            else:
                                out[b, oy, ox] += x[b, y, z] @ w[i, j]
    return out


def ref_pool(x, k, strides, padding, kind):
    n, h, wd, c = x.shape
    oh, top, _ = pads_of(h, k[0], strides[0], 1, padding)
    ow, left, _ = pads_of(wd, k[1], strides[1], 1, padding)
    out = np.zeros((n, oh, ow, c))
    grad_to = {}  # (b, oy, ox, ch) -> the input position max pooling's gradient goes to
    for b, oy, ox, ch in np.ndindex(n, oh, ow, c):
        cells = [(y, z) for y in range(oy * strides[0] - top, oy * strides[0] - top + k[0])
                 for z in range(ox * strides[1] - left, ox * strides[1] - left + k[1])
                 if 0 <= y < h and 0 <= z < wd]
        values = [x[b, y, z, ch] for y, z in cells]
        if kind == "max":
            out[b, oy, ox, ch] = max(values)
            grad_to[b, oy, ox, ch] = cells[int(np.argmax(values))]
        else:
            out[b, oy, ox, ch] = np.mean(values)
    return out, grad_to


def nchw(a):
    return a.transpose(0, 3, 1, 2)


def run(fetches, feed=None):
    with tf.Session() as sess:
        return sess.run(fetches, feed)


CONV_CASES = [  # (x shape NHWC, filter shape, strides, padding, dilations)
    ((2, 6, 5, 3), (3, 3, 3, 4), (1, 1), "SAME", (1, 1)),
    ((1, 7, 6, 2), (3, 2, 2, 3), (2, 2), "SAME", (1, 1)),
    ((2, 7, 7, 2), (3, 3, 2, 2), (2, 3), "VALID", (1, 1)),
    ((1, 8, 7, 2), (3, 3, 2, 3), (1, 1), "SAME", (2, 2)),
    ((1, 9, 8, 1), (2, 3, 1, 2), (2, 1), "VALID", (2, 1)),
    ((2, 5, 5, 2), (3, 3, 2, 2), (2, 2), [[0, 0], [1, 2], [0, 1], [0, 0]], (1, 1)),
]


def _padding_pairs(padding):
    if isinstance(padding, str):
        return padding, padding
    return tuple(padding[1]), tuple(padding[2])


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
@pytest.mark.parametrize("case", range(len(CONV_CASES)))
def test_conv2d_and_its_adjoints_match_loop_references(case, fmt):
    xs, ws, strides, padding, dil = CONV_CASES[case]
    pairs = _padding_pairs(padding)
    x, w = R.standard_normal(xs), R.standard_normal(ws)
    expected = ref_conv(x, w, strides, pairs, dil)
    g = R.standard_normal(expected.shape)
    to = (lambda a: nchw(a)) if fmt == "NCHW" else (lambda a: a)
    if fmt == "NCHW" and not isinstance(padding, str):
        padding = [padding[0], padding[3], padding[1], padding[2]]
    xt = tf.constant(to(x))
    wt = tf.constant(w)
    y = tf.nn.conv2d(xt, wt, strides, padding, data_format=fmt, dilations=dil)
    assert y.shape.as_list() == list(to(expected).shape)
    # the adjoints, by loops: <conv(x, w), g> = <x, dx> = <w, dw>
    dx = np.zeros_like(x)
    dw = np.zeros_like(w)
    for i in range(x.size):
        e = np.zeros(x.size)
        e[i] = 1
        dx.flat[i] = np.sum(ref_conv(e.reshape(x.shape), w, strides, pairs, dil) * g)
    for i in range(w.size):
        e = np.zeros(w.size)
        e[i] = 1
        dw.flat[i] = np.sum(ref_conv(x, e.reshape(w.shape), strides, pairs, dil) * g)
    bx = tf.nn.conv2d_backprop_input(list(to(x).shape), wt, tf.constant(to(g)), strides, padding,
                                     data_format=fmt, dilations=dil)
    bw = tf.nn.conv2d_backprop_filter(xt, list(w.shape), tf.constant(to(g)), strides, padding,
                                      data_format=fmt, dilations=dil)
    got_y, got_dx, got_dw = run([y, bx, bw])
    np.testing.assert_allclose(got_y, to(expected), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got_dx, to(dx), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got_dw, dw, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("strides, padding, rate", [((1, 1), "SAME", (1, 1)),
                                                    ((2, 2), "VALID", (1, 1)),
                                                    ((1, 1), "SAME", (2, 2))])
def test_depthwise_conv2d_matches_loop_reference(strides, padding, rate):
    x, w = R.standard_normal((2, 6, 5, 3)), R.standard_normal((3, 2, 3, 2))
    expected = ref_conv(x, w, strides, (padding, padding), rate, depthwise=True)
    y = tf.nn.depthwise_conv2d(tf.constant(x), tf.constant(w), [1, *strides, 1], padding,
                               rate=rate)
    assert y.shape.as_list() == list(expected.shape)
    np.testing.assert_allclose(run(y), expected, rtol=1e-10, atol=1e-10)


def test_conv2d_transpose_is_the_adjoint_of_conv2d():
    x, w = R.standard_normal((2, 7, 6, 3)), R.standard_normal((3, 3, 3, 4))
    out = ref_conv(x, w, (2, 2), ("SAME", "SAME"), (1, 1))
    g = R.standard_normal(out.shape)
    y = tf.nn.conv2d_transpose(tf.constant(g), tf.constant(w), [2, 7, 6, 3], [1, 2, 2, 1],
                               "SAME")
    # <conv(x, w), g> == <x, conv_transpose(g, w)>
    np.testing.assert_allclose(np.sum(out * g), np.sum(x * run(y)), rtol=1e-10)


def test_conv1d_is_conv2d_over_a_height_of_one():
    x, w = R.standard_normal((2, 9, 3)), R.standard_normal((3, 3, 4))
    expected = ref_conv(x[:, None], w[None], (1, 2), ("VALID", "SAME"), (1, 1))[:, 0]
    y = tf.nn.conv1d(tf.constant(x), tf.constant(w), 2, "SAME")
    assert y.shape.as_list() == list(expected.shape)
    np.testing.assert_allclose(run(y), expected, rtol=1e-10, atol=1e-10)


POOL_CASES = [((2, 2), (2, 2), "VALID"), ((3, 3), (2, 2), "SAME"), ((2, 3), (1, 2), "SAME"),
              ((3, 2), (3, 1), "VALID")]


@pytest.mark.parametrize("fmt", ["NHWC", "NCHW"])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("k, s, padding", POOL_CASES)
def test_pooling_and_its_gradient_match_loop_references(k, s, padding, kind, fmt):
    x = R.standard_normal((2, 7, 6, 3))
    expected, grad_to = ref_pool(x, k, s, padding, kind)
    g = R.standard_normal(expected.shape)
    to = nchw if fmt == "NCHW" else (lambda a: a)
    xt = tf.constant(to(x))
    pool = tf.nn.max_pool if kind == "max" else tf.nn.avg_pool
    y = pool(xt, [1, *k, 1] if fmt == "NHWC" else [1, 1, *k], list(s), padding, data_format=fmt)
    (dx,) = tf.gradients(y, [xt], grad_ys=[tf.constant(to(g))])
    got_y, got_dx = run([y, dx])
    np.testing.assert_allclose(got_y, to(expected), rtol=1e-12)
    expected_dx = np.zeros_like(x)
    for (b, oy, ox, ch), (yy, zz) in grad_to.items():
        expected_dx[b, yy, zz, ch] += g[b, oy, ox, ch]
    if kind == "avg":  # by the adjoint: <avg_pool(x), g> = <x, dx> for every unit x
        for i in range(x.size):
            e = np.zeros(x.size)
            e[i] = 1
            expected_dx.flat[i] = np.sum(ref_pool(e.reshape(x.shape), k, s, padding, "avg")[0]
                                         * g)
    np.testing.assert_allclose(got_dx, to(expected_dx), rtol=1e-10, atol=1e-12)


def test_max_pool_gradient_goes_to_the_first_maximum_of_a_window():
    x = tf.constant(np.zeros((1, 2, 2, 1)))
    y = tf.nn.max_pool(x, [1, 2, 2, 1], [1, 1, 1, 1], "VALID")
    (dx,) = tf.gradients(y, [x])
    got = run(dx)
    assert got[0, 0, 0, 0] == 1 and np.sum(got) == 1


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
def test_pool_1d(padding):
    x = R.standard_normal((2, 7, 3))
    xt = x
    y = tf.nn.max_pool1d(tf.constant(xt), 3, 2, padding)
    expected, _ = ref_pool(x[:, None], (1, 3), (1, 2), padding, "max")
    np.testing.assert_allclose(run(y), expected[:, 0])
    z = tf.nn.avg_pool1d(tf.constant(xt), [3], [2], padding)
    np.testing.assert_allclose(run(z), ref_pool(x[:, None], (1, 3), (1, 2), padding,
                                                "avg")[0][:, 0], rtol=1e-12)


# -- gradients vs finite differences ---------------------------------------------------------------
@pytest.mark.parametrize("strides, padding, dil, fmt", [
    ([1, 2], "SAME", [1, 1], "NHWC"), ([1, 1], "VALID", [2, 1], "NHWC"),
    ([2, 1], [[0, 0], [0, 0], [1, 0], [0, 1]], [1, 1], "NCHW")])
def test_conv2d_gradients(strides, padding, dil, fmt):
    x = R.standard_normal((1, 2, 5, 4) if fmt == "NCHW" else (1, 5, 4, 2))
    w = R.standard_normal((2, 2, 2, 2))
    check_gradients(lambda a, b: tf.nn.conv2d(a, b, strides, padding, data_format=fmt,
                                              dilations=dil), x, w)


def test_conv2d_transpose_and_depthwise_gradients():
    g, w = R.standard_normal((1, 2, 3, 2)), R.standard_normal((2, 2, 3, 2))
    check_gradients(lambda a, b: tf.nn.conv2d_transpose(a, b, [1, 4, 5, 3], [1, 2, 2, 1],
                                                        "SAME"), g, w)
    x, f = R.standard_normal((1, 4, 4, 2)), R.standard_normal((2, 2, 2, 2))
    check_gradients(lambda a, b: tf.nn.depthwise_conv2d(a, b, [1, 1, 1, 1], "SAME"), x, f)


def test_conv2d_backprop_filter_gradient_and_second_derivative():
    x, g = R.standard_normal((1, 4, 4, 2)), R.standard_normal((1, 2, 2, 2))
    check_gradients(lambda a, b: tf.nn.conv2d_backprop_filter(a, [2, 2, 2, 2], b, [1, 2, 2, 1],
                                                              "VALID"), x, g)

    def double(a, b):  # d/dx of sum(conv(x, w)^2): the adjoints' own gradients run
        y = tf.nn.conv2d(a, b, [1, 1, 1, 1], "SAME")
        return tf.gradients(tf.reduce_sum(tf.square(y)), [a])[0]
    check_gradients(double, R.standard_normal((1, 3, 3, 2)), R.standard_normal((2, 2, 2, 1)))


@pytest.mark.parametrize("pool, padding", [(tf.nn.max_pool, "SAME"), (tf.nn.avg_pool, "SAME"),
                                           (tf.nn.avg_pool, "VALID")])
def test_pool_gradients(pool, padding):
    x = R.permutation(50).reshape(1, 5, 5, 2) / 10.0  # distinct: no ties at max
    check_gradients(lambda a: pool(a, [1, 2, 3, 1], [1, 2, 2, 1], padding), x)


# -- errors ------------------------------------------------------------------------------------
def test_depth_mismatch_names_the_op_and_both_shapes():
    x = tf.placeholder(tf.float32, [None, 8, 8, 3], name="images")
    w = tf.zeros([3, 3, 4, 8])
    with pytest.raises(errors.ShapeError, match=r"input depth 3 .* filter's input depth 4.*"
                                                r"Conv2D.*images:0"):
        tf.nn.conv2d(x, w, [1, 1, 1, 1], "SAME", name="conv1")


def test_window_larger_than_input_is_a_shape_error():
    x = tf.placeholder(tf.float32, [1, 2, 2, 1])
    with pytest.raises(errors.ShapeError, match="larger than the padded input"):
        tf.nn.max_pool(x, [1, 3, 3, 1], [1, 1, 1, 1], "VALID")


def test_unknown_batch_and_run_time_shapes():
    x = tf.placeholder(tf.float32, [None, 6, 6, 1])
    y = tf.nn.max_pool(tf.nn.conv2d(x, tf.ones([3, 3, 1, 2]), [1, 1, 1, 1], "SAME"),
                       [1, 2, 2, 1], [1, 2, 2, 1], "VALID")
    assert y.shape.as_list() == [None, 3, 3, 2]
    value = R.standard_normal((3, 6, 6, 1)).astype(np.float32)
    got = run(y, {x: value})
    expected, _ = ref_pool(ref_conv(value.astype(np.float64), np.ones((3, 3, 1, 2)), (1, 1),
                                    ("SAME", "SAME")), (2, 2), (2, 2), "VALID", "max")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
