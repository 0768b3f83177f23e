"""Shape, indexing and construction ops vs numpy.

Values are fed through placeholders with a None dim where the op allows it; array ops move
data without arithmetic, so every comparison is exact.
"""
import numpy as np
import pytest

import flowjit as tf
from flowjit import errors


def run(fetches, feed_dict=None):
    with tf.Session() as sess:
        return sess.run(fetches, feed_dict)


def check(actual, expected, dtype=None):
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    if dtype is not None:
        assert actual.dtype == np.dtype(dtype), (actual.dtype, dtype)
    np.testing.assert_array_equal(actual, expected)


def data(shape, dtype=np.float32, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(-50, 50, shape).astype(dtype)


# -- reshape / transpose -----------------------------------------------------------------------
@pytest.mark.parametrize("shape, target", [
    ((2, 3, 4), [6, 4]), ((2, 3, 4), [-1]), ((2, 3, 4), [-1, 4]), ((2, 3, 4), [4, -1, 2]),
    ((2, 3, 4), [24, 1]), ((1,), []), ((6,), [2, 1, 3]),
])
def test_reshape(shape, target):
    x_val = data(shape)
    x = tf.placeholder(tf.float32, shape)
    y = tf.reshape(x, target)
    expected = x_val.reshape(target)
    assert y.shape.as_list() == list(expected.shape)
    check(run(y, {x: x_val}), expected, np.float32)


def test_reshape_with_unknown_batch():
    x_val = data((5, 28, 28))
    x = tf.placeholder(tf.float32, [None, 28, 28])
    y = tf.reshape(x, [-1, 784])
    assert y.shape.as_list() == [None, 784]
    check(run(y, {x: x_val}), x_val.reshape(-1, 784))
    with pytest.raises(errors.ShapeError):
        tf.reshape(tf.placeholder(tf.float32, [2, 3]), [4, -1])
    with pytest.raises(errors.InvalidArgumentError):
        run(tf.reshape(x, [-1, 3]), {x: x_val})  # 3920 % 3 != 0


@pytest.mark.parametrize("perm", [None, [0, 1, 2], [2, 0, 1], [1, 0, 2], [-1, 0, 1]])
def test_transpose(perm):
    x_val = data((2, 3, 4))
    x = tf.placeholder(tf.float32, [None, 3, 4])
    y = tf.transpose(x, perm)
    expected = np.transpose(x_val, perm)
    assert y.shape.is_compatible_with(expected.shape) and y.shape.ndims == 3
    check(run(y, {x: x_val}), expected)


def test_transpose_static_shape():
    x = tf.placeholder(tf.float32, [None, 3, 4])
    assert tf.transpose(x).shape.as_list() == [4, 3, None]
    assert tf.transpose(x, [1, 0, 2]).shape.as_list() == [3, None, 4]
    with pytest.raises(errors.ShapeError):
        tf.transpose(x, [0, 0, 1])


# -- concat / stack / unstack / split ----------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat(axis):
    shapes = {0: [(2, 3), (4, 3), (1, 3)], 1: [(2, 1), (2, 3), (2, 2)], -1: [(2, 1), (2, 2)]}
    vals = [data(s, seed=i) for i, s in enumerate(shapes[axis])]
    phs = [tf.placeholder(tf.float32, s) for s in shapes[axis]]
    y = tf.concat(phs, axis)
    expected = np.concatenate(vals, axis)
    assert y.shape.as_list() == list(expected.shape)
    check(run(y, dict(zip(phs, vals))), expected)


def test_concat_unknown_dims():
    a = tf.placeholder(tf.float32, [None, 3])
    b = tf.placeholder(tf.float32, [2, 3])
    assert tf.concat([a, b], 0).shape.as_list() == [None, 3]
    assert tf.concat([a, a], 1).shape.as_list() == [None, 6]
    a_val, b_val = data((1, 3)), data((2, 3), seed=1)
    check(run(tf.concat([a, b], 0), {a: a_val, b: b_val}), np.concatenate([a_val, b_val]))
    with pytest.raises(errors.ShapeError):
        tf.concat([b, tf.placeholder(tf.float32, [2, 4])], 0)


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_stack_unstack(axis):
    vals = [data((2, 3), seed=i) for i in range(4)]
    phs = [tf.placeholder(tf.float32, [None, 3]) for _ in vals]
    y = tf.stack(phs, axis)
    expected = np.stack(vals, axis)
    assert y.shape.ndims == 3 and y.shape.is_compatible_with(expected.shape)
    assert y.shape[axis] == 4
    check(run(y, dict(zip(phs, vals))), expected)
    tf.reset_default_graph()
    x = tf.placeholder(tf.float32, expected.shape)
    parts = tf.unstack(x, axis=axis)
    assert len(parts) == 4
    for got, want in zip(run(parts, {x: expected}), vals):
        check(got, want)


def test_stack_of_python_values_and_tensors():
    x = tf.placeholder(tf.int32, [])
    y = tf.stack([1, x, 3])
    assert y.shape.as_list() == [3] and y.dtype is tf.int32
    check(run(y, {x: 2}), [1, 2, 3], np.int32)
    check(run(tf.convert_to_tensor([x, 5]), {x: 4}), [4, 5], np.int32)


@pytest.mark.parametrize("splits, axis", [
    (3, 0), (2, 1), ([1, 2, 3], 0), ([2, -1], 0), ([1, -1, 2], 1), ([4], 1), (1, -1),
])
def test_split(splits, axis):
    x_val = data((6, 4))
    x = tf.placeholder(tf.float32, [6, 4])
    parts = tf.split(x, splits, axis)
    sizes = [x_val.shape[axis] // splits] * splits if isinstance(splits, int) else list(splits)
    if -1 in sizes:
        sizes[sizes.index(-1)] = x_val.shape[axis] - (sum(sizes) + 1)
    expected = np.split(x_val, np.cumsum(sizes)[:-1], axis)
    assert len(parts) == len(expected)
    for t, got, want in zip(parts, run(parts, {x: x_val}), expected):
        assert t.shape.as_list() == list(want.shape)
        check(got, want)


def test_split_errors():
    x = tf.placeholder(tf.float32, [6, 4])
    with pytest.raises(errors.ShapeError):
        tf.split(x, 4, 0)
    with pytest.raises(errors.ShapeError):
        tf.split(x, [2, 3], 0)


# -- squeeze / expand_dims ---------------------------------------------------------------------
@pytest.mark.parametrize("axis", [None, 0, 2, -1, [0, 4], [2, -1]])
def test_squeeze(axis):
    x_val = data((1, 3, 1, 2, 1))
    x = tf.placeholder(tf.float32, [1, 3, 1, 2, 1])
    y = tf.squeeze(x, axis)
    np_axis = tuple(axis) if isinstance(axis, list) else axis
    expected = np.squeeze(x_val, np_axis)
    assert y.shape.as_list() == list(expected.shape)
    check(run(y, {x: x_val}), expected)


def test_squeeze_errors_and_tf1_spelling():
    x = tf.placeholder(tf.float32, [None, 3, 1])
    assert tf.squeeze(x, squeeze_dims=[2]).shape.as_list() == [None, 3]
    with pytest.raises(errors.ShapeError):
        tf.squeeze(x, 1)
    with pytest.raises(errors.InvalidArgumentError):  # the None dim was not 1 after all
        run(tf.squeeze(x, 0), {x: np.zeros((2, 3, 1), np.float32)})


@pytest.mark.parametrize("axis", [0, 1, 2, -1, -3])
def test_expand_dims(axis):
    x_val = data((2, 3))
    x = tf.placeholder(tf.float32, [None, 3])
    y = tf.expand_dims(x, axis)
    expected = np.expand_dims(x_val, axis)
    assert y.shape.ndims == 3 and y.shape.is_compatible_with(expected.shape)
    assert y.shape[axis] == 1
    check(run(y, {x: x_val}), expected)
    assert tf.expand_dims(x, dim=0).shape.as_list() == [1, None, 3]


# -- slice / strided_slice ---------------------------------------------------------------------
@pytest.mark.parametrize("begin, size", [
    ([0, 0, 0], [2, 3, 4]), ([1, 0, 2], [1, 2, 2]), ([1, 1, 1], [-1, -1, -1]),
    ([0, 2, 0], [-1, 1, 3]), ([2, 3, 4], [0, 0, 0]),
])
def test_slice(begin, size):
    x_val = data((2, 3, 4))
    x = tf.placeholder(tf.float32, [2, 3, 4])
    y = tf.slice(x, begin, size)
    index = tuple(slice(b, None if s == -1 else b + s) for b, s in zip(begin, size))
    expected = x_val[index]
    assert y.shape.as_list() == list(expected.shape)
    check(run(y, {x: x_val}), expected)


def test_slice_unknown_dim_and_errors():
    x_val = data((5, 3))
    x = tf.placeholder(tf.float32, [None, 3])
    y = tf.slice(x, [1, 1], [-1, 2])
    assert y.shape.as_list() == [None, 2]
    check(run(y, {x: x_val}), x_val[1:, 1:3])
    with pytest.raises(errors.ShapeError):
        tf.slice(x, [0, 2], [1, 2])
    with pytest.raises(errors.InvalidArgumentError):
        run(tf.slice(x, [4, 0], [2, 3]), {x: x_val})


@pytest.mark.parametrize("begin, end, strides", [
    ([0, 0], [2, 3], None),
    ([1, 0], [3, 4], [1, 2]),
    ([-1, -1], [-4, -5], [-1, -1]),
    ([3, 0], [0, 4], [-2, 3]),
    ([0, 1], [100, 100], [2, 1]),
])
def test_strided_slice(begin, end, strides):
    x_val = data((4, 5))
    x = tf.placeholder(tf.float32, [4, 5])
    y = tf.strided_slice(x, begin, end, strides)
    strides_ = strides or [1, 1]
    expected = x_val[tuple(slice(b, e, s) for b, e, s in zip(begin, end, strides_))]
    assert y.shape.as_list() == list(expected.shape)
    check(run(y, {x: x_val}), expected)


@pytest.mark.parametrize("kwargs, index", [
    (dict(begin_mask=0b01), np.s_[:3, 1:4]),
    (dict(end_mask=0b10), np.s_[1:3, 1:]),
    (dict(begin_mask=0b11, end_mask=0b11), np.s_[:, :]),
    (dict(shrink_axis_mask=0b01), np.s_[1, 1:4]),
    (dict(shrink_axis_mask=0b10), np.s_[1:3, 1]),
    (dict(new_axis_mask=0b01), np.s_[np.newaxis, 1:4]),
    (dict(ellipsis_mask=0b01), np.s_[..., 1:4]),
    (dict(begin=[-1, 0], end=[0, 0], strides=[-1, -2], begin_mask=0b10, end_mask=0b11),
     np.s_[::-1, ::-2]),
    (dict(begin=[-1, -2], end=[0, 0], shrink_axis_mask=0b01, end_mask=0b10), np.s_[-1, -2:]),
])
def test_strided_slice_masks(kwargs, index):
    # TF1: bit i of a mask applies to entry i of begin/end/strides.
    x_val = data((4, 5))
    x = tf.placeholder(tf.float32, [None, 5])
    args = dict(begin=[1, 1], end=[3, 4], strides=[1, 1])
    args.update(kwargs)
    y = tf.strided_slice(x, **args)
    expected = x_val[index]
    assert y.shape.ndims == expected.ndim and y.shape.is_compatible_with(expected.shape)
    check(run(y, {x: x_val}), expected)


# -- gather / one_hot --------------------------------------------------------------------------
@pytest.mark.parametrize("axis, indices", [
    (0, [2, 0, 2]), (1, [3, 1]), (0, [[0, 1], [3, 3]]), (1, [[0], [2], [1]]), (-2, [0, 3]),
    (0, 1), (2, [1, 0]), (-1, [1, 1, 0]),
])
def test_gather(axis, indices):
    params_val = data((4, 4, 2))
    params = tf.placeholder(tf.float32, [None, 4, 2])
    idx_dtype = tf.int64 if axis % 2 else tf.int32   # both index dtypes
    idx_val = np.array(indices, idx_dtype.np_dtype)
    idx = tf.placeholder(idx_dtype, idx_val.shape)
    y = tf.gather(params, idx, axis=axis)
    expected = np.take(params_val, idx_val, axis=axis)
    assert y.shape.ndims == expected.ndim and y.shape.is_compatible_with(expected.shape)
    check(run(y, {params: params_val, idx: idx_val}), expected)


def test_gather_constant_indices_and_errors():
    params_val = data((5, 3))
    params = tf.placeholder(tf.float32, [None, 3])
    y = tf.gather(params, [4, 0])
    assert y.shape.as_list() == [2, 3]
    check(run(y, {params: params_val}), params_val[[4, 0]])
    for bad in ([5], [-1]):
        with pytest.raises(errors.InvalidArgumentError):
            run(tf.gather(params, bad), {params: params_val})


def _np_one_hot(indices, depth, on=1.0, off=0.0, axis=-1, dtype=np.float32):
    indices = np.asarray(indices)
    out = np.where(indices[..., None] == np.arange(depth), on, off).astype(dtype)
    return np.moveaxis(out, -1, axis) if axis != -1 else out


@pytest.mark.parametrize("indices", [[0, 2, 1], [3, 0, -1, 7], [[0, 1], [4, 2]], 2])
@pytest.mark.parametrize("on, off, axis", [(None, None, None), (5.0, -1.0, None),
                                           (None, None, 0), (2.0, 0.5, 1)])
def test_one_hot(indices, on, off, axis):
    idx_val = np.array(indices, np.int32)
    idx = tf.placeholder(tf.int32, [None] * idx_val.ndim)
    if axis is not None and axis > idx_val.ndim:
        with pytest.raises(errors.ShapeError):
            tf.one_hot(idx, 4, axis=axis)
        return
    y = tf.one_hot(idx, 4, on_value=on, off_value=off, axis=axis)
    assert y.dtype is tf.float32
    expected = _np_one_hot(idx_val, 4, 1.0 if on is None else on, 0.0 if off is None else off,
                           -1 if axis is None else axis)
    assert y.shape.ndims == expected.ndim
    check(run(y, {idx: idx_val}), expected, np.float32)


def test_one_hot_out_of_range_rows_are_all_off():
    # TF1: an index outside [0, depth) (negative included) gives a row of off_value.
    idx = tf.placeholder(tf.int64, [None])
    y = tf.one_hot(idx, 3, dtype=tf.int32)
    assert y.dtype is tf.int32 and y.shape.as_list() == [None, 3]
    check(run(y, {idx: [1, 3, -1, 0, 100]}),
          [[0, 1, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0]], np.int32)


# -- tile / pad --------------------------------------------------------------------------------
@pytest.mark.parametrize("multiples", [[1, 1], [2, 3], [3, 1], [1, 0]])
def test_tile(multiples):
    x_val = data((2, 3))
    x = tf.placeholder(tf.float32, [2, 3])
    y = tf.tile(x, multiples)
    expected = np.tile(x_val, multiples)
    assert y.shape.as_list() == list(expected.shape)
    check(run(y, {x: x_val}), expected)
    tf.reset_default_graph()
    u = tf.placeholder(tf.float32, [None, 3])
    assert tf.tile(u, multiples).shape.as_list() == [None, 3 * multiples[1]]


@pytest.mark.parametrize("mode", ["CONSTANT", "REFLECT", "SYMMETRIC", "reflect"])
@pytest.mark.parametrize("paddings", [[[1, 2], [0, 1]], [[0, 0], [2, 2]], [[2, 1], [3, 0]]])
def test_pad(mode, paddings):
    x_val = data((3, 4))
    x = tf.placeholder(tf.float32, [3, 4])
    y = tf.pad(x, paddings, mode)
    expected = np.pad(x_val, paddings, mode.lower())
    assert y.shape.as_list() == list(expected.shape)
    check(run(y, {x: x_val}), expected)


def test_pad_constant_value_and_errors():
    x_val = data((2, 2), np.int32)
    x = tf.placeholder(tf.int32, [None, 2])
    y = tf.pad(x, [[1, 0], [0, 1]], constant_values=7)
    assert y.shape.as_list() == [None, 3]
    check(run(y, {x: x_val}), np.pad(x_val, [[1, 0], [0, 1]], constant_values=7), np.int32)
    with pytest.raises(errors.ShapeError):
        tf.pad(tf.placeholder(tf.float32, [2, 2]), [[2, 0], [0, 0]], "REFLECT")


# -- shape / size / rank -----------------------------------------------------------------------
def test_shape_size_rank_of_fed_value():
    x_val = data((5, 3, 2))
    x = tf.placeholder(tf.float32, [None, 3, 2])
    s, n, r = tf.shape(x), tf.size(x), tf.rank(x)
    assert s.dtype is tf.int32 and s.shape.as_list() == [3]
    assert n.shape.as_list() == [] and r.dtype is tf.int32
    got = run([s, n, r, tf.shape(x, out_type=tf.int64)], {x: x_val})
    check(got[0], [5, 3, 2], np.int32)
    check(got[1], 30, np.int32)
    check(got[2], 3, np.int32)
    check(got[3], [5, 3, 2], np.int64)


def test_shape_used_in_computation():
    x_val = data((4, 3))
    x = tf.placeholder(tf.float32, [None, 3])
    batch = tf.cast(tf.shape(x)[0], tf.float32)
    check(run(tf.reduce_sum(x) / batch, {x: x_val}), np.float32(x_val.sum() / 4))


# -- range / fill / zeros / ones ---------------------------------------------------------------
@pytest.mark.parametrize("args, kwargs, dtype", [
    ((5,), {}, np.int32),                       # ints give int32, floats float32 (TF1)
    ((2, 10, 3), {}, np.int32),
    ((10, 2, -2), {}, np.int32),
    ((0.0, 1.0, 0.25), {}, np.float32),
    ((3,), {"dtype": tf.float64}, np.float64),
    ((1, 1), {}, np.int32),                     # empty
])
def test_range(args, kwargs, dtype):
    y = tf.range(*args, **kwargs)
    expected = np.arange(*args).astype(dtype)
    assert y.shape.as_list() == [len(expected)] and y.dtype.np_dtype == dtype
    check(run(y), expected, dtype)


@pytest.mark.parametrize("fn, value, dtype", [
    (lambda s: tf.fill(s, 3.5), 3.5, np.float32),
    (lambda s: tf.fill(s, 7), 7, np.int32),
    (lambda s: tf.zeros(s), 0, np.float32),
    (lambda s: tf.zeros(s, tf.int32), 0, np.int32),
    (lambda s: tf.ones(s), 1, np.float32),
    (lambda s: tf.ones(s, dtype=tf.float64), 1, np.float64),
    (lambda s: tf.zeros(s, tf.bool), False, np.bool_),
    (lambda s: tf.ones(s, tf.bool), True, np.bool_),
])
@pytest.mark.parametrize("shape", [[2, 3], [], [4]])
def test_fill_zeros_ones(fn, value, dtype, shape):
    y = fn(shape)
    assert y.shape.as_list() == shape
    check(run(y), np.full(shape, value, dtype), dtype)


@pytest.mark.parametrize("fn, value", [(tf.zeros_like, 0), (tf.ones_like, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.float64])
def test_zeros_ones_like(fn, value, dtype):
    x_val = data((4, 3), dtype)
    x = tf.placeholder({np.float32: tf.float32, np.int32: tf.int32,
                        np.float64: tf.float64}[dtype], [None, 3])
    y = fn(x)
    assert y.shape.as_list() == [None, 3]
    check(run(y, {x: x_val}), np.full((4, 3), value, dtype), dtype)
    z = fn(x, dtype=tf.bool if value == 0 else tf.int64)
    check(run(z, {x: x_val}), np.full((4, 3), value, z.dtype.np_dtype), z.dtype.np_dtype)


# -- identity / stop_gradient ------------------------------------------------------------------
@pytest.mark.parametrize("fn, name", [(tf.identity, "Identity"),
                                      (tf.stop_gradient, "StopGradient")])
def test_identity_like(fn, name):
    x_val = data((3, 2))
    x = tf.placeholder(tf.float32, [None, 2])
    y = fn(x)
    assert y.op.name == name and y.shape.as_list() == [None, 2]
    result = run(y, {x: x_val})
    check(result, x_val)
    result[0, 0] = 1e6   # results belong to the caller: mutating one must not touch the feed
    assert x_val[0, 0] != 1e6


# -- where -------------------------------------------------------------------------------------
WHERE_CASES = [((4, 3), (4, 3), (4, 3)), ((4, 1), (4, 3), (3,)), ((), (2, 3), (2, 3)),
               ((2, 1, 3), (4, 1), ())]


@pytest.mark.parametrize("fn, cond_shape, x_shape, y_shape",
                         [(fn, *case) for fn in (tf.where, tf.select, tf.where_v2)
                          for case in WHERE_CASES]
                         + [(tf.where_v2, (3,), (4, 3), ())])   # v2 broadcasts a vector too
def test_where_select(fn, cond_shape, x_shape, y_shape):
    rng = np.random.default_rng(3)
    c_val = rng.random(cond_shape) < 0.5
    x_val, y_val = data(x_shape, seed=1), data(y_shape, seed=2)
    c = tf.placeholder(tf.bool, cond_shape)
    x = tf.placeholder(tf.float32, x_shape)
    y = tf.placeholder(tf.float32, y_shape)
    z = fn(c, x, y)
    expected = np.where(c_val, x_val, y_val)
    assert z.shape.as_list() == list(expected.shape)
    check(run(z, {c: c_val, x: x_val, y: y_val}), expected)


def test_where_v1_vector_condition_selects_rows():
    # TF1's tf.where: a rank-1 condition picks whole rows of higher-rank x and y.
    c_val = np.array([True, False, True, False])
    x_val, y_val = data((4, 4), seed=1), data((4, 4), seed=2)
    c = tf.placeholder(tf.bool, [4])
    x, y = tf.placeholder(tf.float32, [4, 4]), tf.placeholder(tf.float32, [4, 4])
    z = tf.where(c, x, y)
    assert z.shape.as_list() == [4, 4]
    check(run(z, {c: c_val, x: x_val, y: y_val}), np.where(c_val[:, None], x_val, y_val))
    # tf.where_v2 broadcasts the vector against the last dimension instead.
    z2 = tf.where_v2(c, x, y)
    check(run(z2, {c: c_val, x: x_val, y: y_val}), np.where(c_val, x_val, y_val))
    with pytest.raises(errors.ShapeError):   # TF1: the first dimensions must match
        tf.where(tf.placeholder(tf.bool, [3]), x, y)


@pytest.mark.parametrize("shape", [(5,), (3, 4), (2, 2, 3)])
def test_where_coordinates(shape):
    rng = np.random.default_rng(4)
    c_val = rng.random(shape) < 0.4
    c = tf.placeholder(tf.bool, [None] + list(shape[1:]))
    w = tf.where(c)
    assert w.dtype is tf.int64 and w.shape.as_list() == [None, len(shape)]
    check(run(w, {c: c_val}), np.argwhere(c_val), np.int64)


# -- placeholder_with_default / convert_to_tensor ----------------------------------------------
def test_placeholder_with_default():
    default = np.array([[1.0, 2.0]], np.float32)
    p = tf.placeholder_with_default(default, [None, 2])
    y = p * 2.0
    assert p.shape.as_list() == [None, 2] and p.dtype is tf.float32
    with tf.Session() as sess:
        check(sess.run(y), default * 2)
        fed = data((3, 2))
        check(sess.run(y, {p: fed}), fed * 2)
        check(sess.run(y), default * 2)   # the default is back when not fed
    with pytest.raises(errors.ShapeError):
        tf.placeholder_with_default(default, [None, 3])


@pytest.mark.parametrize("value, dtype, expected_dtype", [
    (1, None, np.int32), (1.5, None, np.float32), ([1, 2], tf.float32, np.float32),
    (np.arange(3, dtype=np.float64), None, np.float64), (True, None, np.bool_),
    ([[1, 2], [3, 4]], tf.int64, np.int64),
])
def test_convert_to_tensor(value, dtype, expected_dtype):
    t = tf.convert_to_tensor(value, dtype=dtype)
    assert isinstance(t, tf.Tensor)
    assert t.dtype.np_dtype == np.dtype(expected_dtype)
    assert t.shape.as_list() == list(np.shape(value))
    check(run(t), np.asarray(value).astype(expected_dtype), expected_dtype)


def test_convert_to_tensor_passes_tensors_through():
    x = tf.placeholder(tf.float32, [None])
    assert tf.convert_to_tensor(x) is x
    with pytest.raises(TypeError):
        tf.convert_to_tensor(x, dtype=tf.int32)
    with pytest.raises(TypeError):
        tf.convert_to_tensor(0.5, dtype=tf.int32)


@pytest.mark.parametrize("build, name", [
    (lambda x: tf.reshape(x, [-1]), "Reshape"),
    (lambda x: tf.transpose(x), "transpose"),
    (lambda x: tf.concat([x, x], 0), "concat"),
    (lambda x: tf.stack([x, x]), "stack"),
    (lambda x: tf.expand_dims(x, 0), "ExpandDims"),
    (lambda x: tf.squeeze(tf.expand_dims(x, 0), [0]), "Squeeze"),
    (lambda x: tf.shape(x), "Shape"),
    (lambda x: tf.tile(x, [1, 2]), "Tile"),
    (lambda x: tf.pad(x, [[1, 1], [0, 0]]), "Pad"),
    (lambda x: tf.one_hot(tf.cast(x, tf.int32), 3), "one_hot"),
    (lambda x: tf.gather(x, [0]), "GatherV2"),
    (lambda x: tf.identity(x), "Identity"),
    (lambda x: tf.fill([2], 1.0), "Fill"),
    (lambda x: tf.range(3), "range"),
])
def test_tf1_default_names(build, name):
    x = tf.placeholder(tf.float32, [2, 2])
    assert build(x).op.name == name


def test_shape_size_and_rank_of_a_static_shape_are_constants_needing_no_feed():
    x = tf.placeholder(tf.float32, [3, 4], name="x")
    queries = [tf.shape(x), tf.size(x), tf.rank(x), tf.shape(x, out_type=tf.int64)]
    assert all(q.op.type == "Const" for q in queries)
    with tf.Session() as sess:
        shape, size, rank, shape64 = sess.run(queries)  # no feed for x
    np.testing.assert_array_equal(shape, [3, 4])
    assert shape.dtype == np.int32 and shape64.dtype == np.int64
    assert (size, rank) == (12, 2)
    partial = tf.placeholder(tf.float32, [None, 4], name="partial")
    assert tf.rank(partial).op.type == "Const"  # the rank is known even so
    assert tf.shape(partial).op.type == "Shape" and tf.size(partial).op.type == "Size"
    with tf.Session() as sess:
        shape, size = sess.run([tf.shape(partial), tf.size(partial)],
                               {partial: np.zeros((5, 4), np.float32)})
    np.testing.assert_array_equal(shape, [5, 4])
    assert size == 20


def test_a_size_past_int32_is_a_clear_error_naming_the_tensor_or_int64_when_asked():
    big = tf.placeholder(tf.float32, [65536, 65536], name="big")
    with pytest.raises(errors.ShapeError, match=r"'big:0'.*does not fit in int32.*int64"):
        tf.size(big)
    with tf.Session() as sess:
        assert sess.run(tf.size(big, out_type=tf.int64)) == 2 ** 32
