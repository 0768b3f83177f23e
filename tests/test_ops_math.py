"""Math ops (elementwise, comparisons, cast, matmul, reductions, arg-reductions) vs numpy.

Inputs are random, fed through placeholders (most with a None dim). Tolerances: float64
results rtol 1e-6; float32 results rtol 1e-5 / atol 1e-6 (transcendentals may be computed by
other backends with different approximations); integer and bool results exactly.
"""
import numpy as np
import pytest

import flowjit as tf
from flowjit import errors

TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-6, atol=1e-12)}
TF_DTYPE = {np.float32: tf.float32, np.float64: tf.float64, np.int32: tf.int32,
            np.int64: tf.int64, np.bool_: tf.bool}


def run(fetches, feed_dict=None):
    with tf.Session() as sess:
        return sess.run(fetches, feed_dict)


def check(actual, expected, dtype=None):
    """Exact for ints/bools, TOL for floats; the result's dtype must be numpy's."""
    actual = np.asarray(actual)
    expected = np.asarray(expected)
    assert actual.shape == expected.shape
    if dtype is not None:
        assert actual.dtype == np.dtype(dtype), (actual.dtype, dtype)
    if actual.dtype.kind == "f":
        np.testing.assert_allclose(actual, expected, **TOL[actual.dtype.type])
    else:
        np.testing.assert_array_equal(actual, expected)


def placeholder_shape(shape):
    """The static shape of the test placeholder: the first dim unknown (when there is one)."""
    return [None] + list(shape[1:]) if shape else []


# -- input domains ----------------------------------------------------------------------------
def uniform(lo, hi):
    return lambda rng, shape, dtype: rng.uniform(lo, hi, shape).astype(dtype)


def ints(lo, hi, nonzero=False):
    def draw(rng, shape, dtype):
        x = rng.integers(lo, hi, shape).astype(dtype)
        if nonzero:
            x[x == 0] = 1
        return x
    return draw


def away_from_zero(lo, hi):
    def draw(rng, shape, dtype):
        return (rng.uniform(lo, hi, shape) * rng.choice([-1, 1], shape)).astype(dtype)
    return draw


def halves(rng, shape, dtype):  # exercises round-half-to-even
    return (rng.integers(-10, 10, shape) / 2).astype(dtype)


def bools(rng, shape, dtype):
    return rng.random(shape) < 0.5


def small_ints_as(rng, shape, dtype):  # floats with frequent ties, for comparisons
    return rng.integers(-3, 3, shape).astype(dtype)


F = (np.float32, np.float64)
FI = (np.float32, np.float64, np.int32)
B = (np.bool_,)


def _np_sigmoid(x):
    return (1 / (1 + np.exp(-x.astype(np.float64)))).astype(x.dtype)


#        name            tf fn           numpy fn          domain             dtypes
UNARY = [
    ("neg",          tf.negative,    np.negative,      uniform(-5, 5),      FI),
    ("neg_alias",    tf.neg,         np.negative,      uniform(-5, 5),      FI),
    ("abs",          tf.abs,         np.abs,           uniform(-5, 5),      FI),
    ("sign",         tf.sign,        np.sign,          halves,              FI),
    ("reciprocal",   tf.reciprocal,  np.reciprocal,    away_from_zero(.5, 3), F),
    ("square",       tf.square,      np.square,        uniform(-5, 5),      FI),
    ("sqrt",         tf.sqrt,        np.sqrt,          uniform(0, 5),       F),
    ("rsqrt",        tf.rsqrt,       lambda x: 1 / np.sqrt(x), uniform(.1, 5), F),
    ("exp",          tf.exp,         np.exp,           uniform(-5, 5),      F),
    ("expm1",        tf.expm1,       np.expm1,         uniform(-1, 1),      F),
    ("log",          tf.log,         np.log,           uniform(.1, 5),      F),
    ("log1p",        tf.log1p,       np.log1p,         uniform(-.9, 5),     F),
    ("sin",          tf.sin,         np.sin,           uniform(-5, 5),      F),
    ("cos",          tf.cos,         np.cos,           uniform(-5, 5),      F),
    ("tanh",         tf.tanh,        np.tanh,          uniform(-5, 5),      F),
    ("sigmoid",      tf.sigmoid,     _np_sigmoid,      uniform(-8, 8),      F),
    ("floor",        tf.floor,       np.floor,         uniform(-5, 5),      F),
    ("ceil",         tf.ceil,        np.ceil,          uniform(-5, 5),      F),
    ("round",        tf.round,       np.round,         halves,              FI),
    ("logical_not",  tf.logical_not, np.logical_not,   bools,               B),
]


def _unary_cases():
    for name, tf_fn, np_fn, domain, dts in UNARY:
        for dt in dts:
            yield pytest.param(tf_fn, np_fn, domain, dt, id=f"{name}-{np.dtype(dt).name}")


@pytest.mark.parametrize("tf_fn, np_fn, domain, dtype", list(_unary_cases()))
def test_unary_matches_numpy(tf_fn, np_fn, domain, dtype):
    rng = np.random.default_rng(0)
    x_val = domain(rng, (4, 3), dtype)
    x = tf.placeholder(TF_DTYPE[dtype], [None, 3])
    y = tf_fn(x)
    assert y.shape.as_list() == [None, 3]
    assert y.dtype is TF_DTYPE[dtype]
    check(run(y, {x: x_val}), np_fn(x_val), dtype)


@pytest.mark.parametrize("tf_fn", [tf.sqrt, tf.exp, tf.log, tf.sin, tf.tanh, tf.sigmoid,
                                   tf.floor])
def test_float_only_unary_rejects_int(tf_fn):
    with pytest.raises(TypeError):
        tf_fn(tf.placeholder(tf.int32, [3]))


def test_round_is_half_to_even():
    x = tf.placeholder(tf.float32, [None])
    values = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6], np.float32)
    check(run(tf.round(x), {x: values}), [0, 2, 2, -0, -2, -2, 2, 3])


def test_unary_on_constant_is_folded_consistently():
    # Small constant subgraphs may be folded at build time; the value must be the same.
    c = tf.constant([[0.25, 1.0], [4.0, 9.0]], tf.float64)
    check(run(tf.sqrt(c)), np.sqrt([[0.25, 1.0], [4.0, 9.0]]), np.float64)


# -- binary ops -------------------------------------------------------------------------------
def _np_floordiv(x, y):
    # TF's FloorDiv: floor(x / y) for floats (not numpy's fmod-based floor_divide, which
    # gives 1.0 // 0.1 == 9), C-style-corrected integer floor division for ints.
    return np.floor(x / y) if x.dtype.kind == "f" else np.floor_divide(x, y)


def _np_sq_diff(x, y):
    return np.square(x - y)


# Input domains of the binary table: U any float, NZ floats away from zero, IX/IY ints with
# IY nonzero (divisors), T small ints (as floats too) so that comparisons see ties.
U, NZ, IX, IY, T = uniform(-5, 5), away_from_zero(.5, 3), ints(-20, 20), ints(-5, 5, True), \
    small_ints_as
I32 = (np.int32,)

#        name                  tf fn                   numpy fn          x    y    dtypes
BINARY = [
    ("add",                tf.add,                 np.add,           U,   U,   FI),
    ("subtract",           tf.subtract,            np.subtract,      U,   U,   FI),
    ("sub_alias",          tf.sub,                 np.subtract,      U,   U,   FI),
    ("multiply",           tf.multiply,            np.multiply,      U,   U,   FI),
    ("mul_alias",          tf.mul,                 np.multiply,      U,   U,   FI),
    ("divide",             tf.divide,              np.true_divide,   U,   NZ,  F),
    ("truediv",            tf.truediv,             np.true_divide,   U,   NZ,  F),
    ("realdiv",            tf.realdiv,             np.true_divide,   U,   NZ,  F),
    ("div",                tf.div,                 np.true_divide,   U,   NZ,  F),
    ("div_int",            tf.div,                 _np_floordiv,     IX,  IY,  I32),
    ("floordiv",           tf.floordiv,            _np_floordiv,     U,   NZ,  F),
    ("floordiv_int",       tf.floordiv,            _np_floordiv,     IX,  IY,  I32),
    ("floormod",           tf.floormod,            np.mod,           U,   NZ,  F),
    ("floormod_int",       tf.floormod,            np.mod,           IX,  IY,  I32),
    ("mod",                tf.mod,                 np.mod,           IX,  IY,  I32),
    ("pow",                tf.pow,                 np.power,         uniform(.5, 2),
                                                                 uniform(-2, 2),  F),
    ("pow_int",            tf.pow,                 np.power,         ints(-3, 4), ints(0, 4), I32),
    ("maximum",            tf.maximum,             np.maximum,       T,   T,   FI),
    ("minimum",            tf.minimum,             np.minimum,       T,   T,   FI),
    ("squared_difference", tf.squared_difference,  _np_sq_diff,      U,   U,   FI),
    ("logical_and",        tf.logical_and,         np.logical_and,   bools, bools, B),
    ("logical_or",         tf.logical_or,          np.logical_or,    bools, bools, B),
    ("logical_xor",        tf.logical_xor,         np.logical_xor,   bools, bools, B),
    ("equal",              tf.equal,               np.equal,         T,   T,   FI),
    ("equal_bool",         tf.equal,               np.equal,         bools, bools, B),
    ("not_equal",          tf.not_equal,           np.not_equal,     T,   T,   FI),
    ("less",               tf.less,                np.less,          T,   T,   FI),
    ("less_equal",         tf.less_equal,          np.less_equal,    T,   T,   FI),
    ("greater",            tf.greater,             np.greater,       T,   T,   FI),
    ("greater_equal",      tf.greater_equal,       np.greater_equal, T,   T,   FI),
]

# (x shape, y shape): same shape, [4,1] op [3], scalar op tensor, tensor op scalar, rank 3 vs 2
BROADCASTS = [((4, 3), (4, 3)), ((4, 1), (3,)), ((), (2, 3)), ((2, 3), ()),
              ((2, 1, 3), (4, 1))]


def _binary_cases():
    for name, tf_fn, np_fn, dx, dy, dts in BINARY:
        for dt in dts:
            yield pytest.param(tf_fn, np_fn, dx, dy, dt, id=f"{name}-{np.dtype(dt).name}")


@pytest.mark.parametrize("xs, ys", BROADCASTS, ids=lambda s: "x".join(map(str, s)) or "scalar")
@pytest.mark.parametrize("tf_fn, np_fn, dx, dy, dtype", list(_binary_cases()))
def test_binary_matches_numpy(tf_fn, np_fn, dx, dy, dtype, xs, ys):
    rng = np.random.default_rng(1)
    x_val, y_val = dx(rng, xs, dtype), dy(rng, ys, dtype)
    x = tf.placeholder(TF_DTYPE[dtype], placeholder_shape(xs))
    y = tf.placeholder(TF_DTYPE[dtype], placeholder_shape(ys))
    z = tf_fn(x, y)
    expected = np_fn(x_val, y_val)
    assert z.dtype is TF_DTYPE[expected.dtype.type]
    assert z.shape.is_compatible_with(expected.shape)
    assert z.shape.ndims == expected.ndim
    check(run(z, {x: x_val, y: y_val}), expected, expected.dtype)


@pytest.mark.parametrize("fn", [tf.divide, tf.truediv, lambda a, b: a / b])
def test_true_division_of_ints_gives_float64(fn):
    x = tf.placeholder(tf.int32, [None])
    y = tf.placeholder(tf.int32, [None])
    z = fn(x, y)
    assert z.dtype is tf.float64
    xv, yv = np.array([7, -7, 1, 0], np.int32), np.array([2, 2, 3, 5], np.int32)
    check(run(z, {x: xv, y: yv}), xv / yv, np.float64)


@pytest.mark.parametrize("dtype", F)
def test_float_floordiv_floors_the_quotient(dtype):
    x = tf.placeholder(TF_DTYPE[dtype], [None])
    y = tf.placeholder(TF_DTYPE[dtype], [None])
    xv, yv = np.array([1.0, -1.0, 0.3, 7.0], dtype), np.array([0.1, 0.1, 0.1, -2.0], dtype)
    expected = np.floor(xv / yv)   # TF; numpy's xv // yv differs in the first entries
    check(run(tf.floordiv(x, y), {x: xv, y: yv}), expected, dtype)
    check(run(x // y, {x: xv, y: yv}), expected, dtype)


def test_integer_division_by_zero_is_an_error():
    x = tf.placeholder(tf.int32, [2])
    with pytest.raises(errors.InvalidArgumentError):
        run(tf.floordiv(x, tf.constant([1, 0])), {x: [3, 4]})


def test_mismatched_dtypes_raise_type_error():
    with pytest.raises(TypeError):
        tf.add(tf.placeholder(tf.float32, [3]), tf.placeholder(tf.int32, [3]))


def test_python_scalars_take_the_tensor_dtype():
    x = tf.placeholder(tf.int32, [None])
    y = x + 1
    assert y.dtype is tf.int32
    check(run(y, {x: [1, 2]}), [2, 3], np.int32)
    f = tf.placeholder(tf.float64, [None])
    check(run(2 * f, {f: [1.5]}), [3.0], np.float64)
    with pytest.raises(TypeError):
        x * 2.5  # lossy: TF1 refuses to convert 2.5 to int32


# -- cast -------------------------------------------------------------------------------------
@pytest.mark.parametrize("src, dst, values", [
    (np.float32, np.int32, [-2.7, -0.5, 0.0, 0.5, 2.7, 100.9]),    # truncates toward zero
    (np.float64, np.float32, [1e-3, -2.5, 3.25]),
    (np.int32, np.float32, [-3, 0, 7]),
    (np.int32, np.int64, [-3, 0, 7]),
    (np.float32, np.bool_, [0.0, 1.5, -2.0]),
    (np.bool_, np.float32, [True, False, True]),
    (np.bool_, np.int32, [True, False, True]),
])
def test_cast(src, dst, values):
    x = tf.placeholder(TF_DTYPE[src], [None])
    y = tf.cast(x, TF_DTYPE[dst])
    assert y.dtype is TF_DTYPE[dst]
    value = np.array(values, src)
    check(run(y, {x: value}), value.astype(dst), dst)


def test_cast_to_same_dtype_and_to_float():
    x = tf.placeholder(tf.int32, [None])
    assert tf.cast(x, tf.int32) is x
    y = tf.to_float(x)
    assert y.dtype is tf.float32
    check(run(y, {x: [1, 2]}), [1.0, 2.0], np.float32)


# -- matmul / tensordot / add_n ----------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("a_shape, b_shape, ta, tb", [
    ((5, 4), (4, 3), False, False),
    ((4, 5), (4, 3), True, False),
    ((5, 4), (3, 4), False, True),
    ((4, 5), (3, 4), True, True),
    ((2, 5, 4), (2, 4, 3), False, False),      # batch
    ((2, 4, 5), (2, 3, 4), True, True),        # batch, transposed
    ((2, 5, 4), (4, 3), False, False),         # batch broadcast
])
def test_matmul(dtype, a_shape, b_shape, ta, tb):
    rng = np.random.default_rng(2)
    draw = ints(-5, 5) if dtype == np.int32 else uniform(-1, 1)
    a_val, b_val = draw(rng, a_shape, dtype), draw(rng, b_shape, dtype)
    a = tf.placeholder(TF_DTYPE[dtype], placeholder_shape(a_shape))
    b = tf.placeholder(TF_DTYPE[dtype], b_shape)
    c = tf.matmul(a, b, transpose_a=ta, transpose_b=tb)
    at = np.swapaxes(a_val, -1, -2) if ta else a_val
    bt = np.swapaxes(b_val, -1, -2) if tb else b_val
    expected = np.matmul(at, bt)
    assert c.shape.is_compatible_with(expected.shape)
    assert c.shape[-1] == expected.shape[-1]
    check(run(c, {a: a_val, b: b_val}), expected, dtype)


def test_matmul_inner_dimension_mismatch_is_a_shape_error():
    with pytest.raises(errors.ShapeError):
        tf.matmul(tf.placeholder(tf.float32, [None, 3]), tf.placeholder(tf.float32, [4, 2]))


@pytest.mark.parametrize("a_shape, b_shape, axes", [
    ((3, 4), (4, 5), 1),
    ((2, 3, 4), (3, 4, 5), 2),
    ((2, 3, 4), (4, 3, 5), [[1, 2], [1, 0]]),
    ((3, 4), (5, 3), [[0], [1]]),
    ((3, 4), (5, 3), [0, 1]),
    ((3, 4), (4, 5), 0),                        # outer product
])
def test_tensordot(a_shape, b_shape, axes):
    rng = np.random.default_rng(3)
    a_val, b_val = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    a = tf.placeholder(tf.float64, a_shape)
    b = tf.placeholder(tf.float64, b_shape)
    c = tf.tensordot(a, b, axes)
    expected = np.tensordot(a_val, b_val, axes)
    assert c.shape.as_list() == list(expected.shape)
    check(run(c, {a: a_val, b: b_val}), expected, np.float64)


def test_tensordot_with_unknown_batch():
    rng = np.random.default_rng(3)
    a_val, b_val = rng.standard_normal((6, 2, 4)), rng.standard_normal((4, 5))
    a = tf.placeholder(tf.float64, [None, 2, 4])
    b = tf.placeholder(tf.float64, [4, 5])
    c = tf.tensordot(a, b, 1)
    assert c.shape.as_list() == [None, 2, 5]
    check(run(c, {a: a_val, b: b_val}), np.tensordot(a_val, b_val, 1), np.float64)


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_add_n(dtype):
    rng = np.random.default_rng(4)
    values = [ints(-9, 9)(rng, (4, 3), dtype) for _ in range(3)]
    phs = [tf.placeholder(TF_DTYPE[dtype], [None, 3]) for _ in values]
    total = tf.add_n(phs)
    assert total.shape.as_list() == [None, 3]
    check(run(total, dict(zip(phs, values))), values[0] + values[1] + values[2], dtype)
    assert tf.add_n(phs[:1]) is phs[0]


# -- reductions -------------------------------------------------------------------------------
def _np_int_mean(x, axis=None, keepdims=False):
    total = np.sum(x, axis=axis, keepdims=keepdims, dtype=np.int64)
    count = x.size // np.asarray(total).size
    return (np.sign(total) * (np.abs(total) // count)).astype(x.dtype)  # truncates, as TF


REDUCTIONS = [
    ("sum",  tf.reduce_sum,  np.sum,  FI),
    ("mean", tf.reduce_mean, np.mean, F),
    ("mean", tf.reduce_mean, _np_int_mean, (np.int32,)),
    ("max",  tf.reduce_max,  np.max,  FI),
    ("min",  tf.reduce_min,  np.min,  FI),
    ("prod", tf.reduce_prod, np.prod, FI),
    ("any",  tf.reduce_any,  np.any,  B),
    ("all",  tf.reduce_all,  np.all,  B),
]
AXES = [None, 0, 1, -1, 2, [0, 2], [-1, 0], [0, 1, 2], []]


def _reduction_cases():
    for name, tf_fn, np_fn, dts in REDUCTIONS:
        for dt in dts:
            yield pytest.param(tf_fn, np_fn, dt, id=f"{name}-{np.dtype(dt).name}")


def _reduction_input(rng, dtype, shape=(2, 3, 4)):
    if dtype == np.bool_:
        return rng.random(shape) < 0.7   # all() over an axis is sometimes true
    if dtype == np.int32:
        return rng.integers(-3, 4, shape).astype(dtype)
    return rng.uniform(0.5, 1.5, shape).astype(dtype) * rng.choice([-1, 1], shape)


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("tf_fn, np_fn, dtype", list(_reduction_cases()))
def test_reduction(tf_fn, np_fn, dtype, axis, keepdims):
    rng = np.random.default_rng(5)
    x_val = _reduction_input(rng, dtype)
    x = tf.placeholder(TF_DTYPE[dtype], [None, 3, 4])
    y = tf_fn(x, axis=axis, keepdims=keepdims)
    np_axis = tuple(axis) if isinstance(axis, list) else axis
    expected = np.asarray(np_fn(x_val, axis=np_axis, keepdims=keepdims)).astype(dtype)
    assert y.dtype is TF_DTYPE[dtype]
    assert y.shape.ndims == expected.ndim
    assert y.shape.is_compatible_with(expected.shape)
    check(run(y, {x: x_val}), expected, dtype)


@pytest.mark.parametrize("tf_fn, np_fn", [(tf.reduce_sum, np.sum), (tf.reduce_max, np.max),
                                          (tf.reduce_mean, np.mean)])
def test_reduction_tf1_spellings(tf_fn, np_fn):
    rng = np.random.default_rng(6)
    x_val = rng.standard_normal((4, 3))
    x = tf.placeholder(tf.float64, [None, 3])
    a = tf_fn(x, reduction_indices=[1])
    b = tf_fn(x, reduction_indices=1, keep_dims=True)
    c = tf_fn(x, tf.constant(0), True)  # positional axis (a constant tensor), keepdims
    assert a.shape.as_list() == [None]
    assert b.shape.as_list() == [None, 1]
    assert c.shape.as_list() == [1, 3]
    ra, rb, rc = run([a, b, c], {x: x_val})
    check(ra, np_fn(x_val, axis=1))
    check(rb, np_fn(x_val, axis=1, keepdims=True))
    check(rc, np_fn(x_val, axis=0, keepdims=True))


def test_reduction_static_shapes():
    x = tf.placeholder(tf.float32, [None, 784])
    assert tf.reduce_mean(x).shape.as_list() == []
    assert tf.reduce_sum(x, 1).shape.as_list() == [None]
    assert tf.reduce_sum(x, 0).shape.as_list() == [784]
    assert tf.reduce_max(x, -1, keepdims=True).shape.as_list() == [None, 1]
    assert tf.reduce_sum(x, keepdims=True).shape.as_list() == [1, 1]


@pytest.mark.parametrize("axis", [2, -3, [0, 0]])
def test_reduction_bad_axis_is_a_shape_error(axis):
    with pytest.raises(errors.ShapeError):
        tf.reduce_sum(tf.placeholder(tf.float32, [None, 3]), axis)


def test_reduction_of_empty_tensor():
    x = tf.placeholder(tf.float32, [None, 3])
    empty = np.zeros((0, 3), np.float32)
    s, p, mx = run([tf.reduce_sum(x, 0), tf.reduce_prod(x, 0), tf.reduce_max(x, 0)], {x: empty})
    check(s, np.zeros(3))
    check(p, np.ones(3))
    check(mx, np.full(3, -np.inf))


# -- argmax / argmin ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", FI)
@pytest.mark.parametrize("fn, np_fn", [(tf.argmax, np.argmax), (tf.argmin, np.argmin),
                                       (tf.arg_max, np.argmax), (tf.arg_min, np.argmin)])
@pytest.mark.parametrize("axis", [0, 1, -1, 2])
def test_arg_reductions(fn, np_fn, dtype, axis):
    rng = np.random.default_rng(7)
    x_val = rng.permutation(24).reshape(2, 3, 4).astype(dtype)  # no ties
    x = tf.placeholder(TF_DTYPE[dtype], [None, 3, 4])
    y = fn(x, axis)
    assert y.dtype is tf.int64
    expected = np_fn(x_val, axis=axis)
    assert y.shape.ndims == 2
    assert y.shape.is_compatible_with(expected.shape)
    check(run(y, {x: x_val}), expected, np.int64)


def test_arg_reduction_options():
    x_val = np.array([[1, 9, 3], [7, 2, 8]], np.float32)
    x = tf.placeholder(tf.float32, [None, 3])
    default_axis = tf.argmax(x)                  # TF1: axis defaults to 0
    by_dimension = tf.arg_max(x, dimension=1)
    int32 = tf.argmin(x, 1, output_type=tf.int32)
    assert int32.dtype is tf.int32
    r0, r1, r2 = run([default_axis, by_dimension, int32], {x: x_val})
    check(r0, [1, 0, 1], np.int64)
    check(r1, [1, 2], np.int64)
    check(r2, [0, 1], np.int32)


# -- clip_by_value / count_nonzero -------------------------------------------------------------
@pytest.mark.parametrize("dtype", FI)
def test_clip_by_value(dtype):
    rng = np.random.default_rng(8)
    x_val = ints(-10, 10)(rng, (4, 3), dtype)
    x = tf.placeholder(TF_DTYPE[dtype], [None, 3])
    y = tf.clip_by_value(x, -2, 5)
    assert y.dtype is TF_DTYPE[dtype] and y.shape.as_list() == [None, 3]
    check(run(y, {x: x_val}), np.clip(x_val, -2, 5), dtype)


def test_clip_by_value_with_tensor_bounds():
    rng = np.random.default_rng(9)
    x_val = rng.standard_normal((4, 3))
    lo_val, hi_val = np.array([-1.0, -0.5, 0.0]), np.array([0.0, 0.5, 1.0])
    x = tf.placeholder(tf.float64, [None, 3])
    lo, hi = tf.placeholder(tf.float64, [3]), tf.placeholder(tf.float64, [3])
    check(run(tf.clip_by_value(x, lo, hi), {x: x_val, lo: lo_val, hi: hi_val}),
          np.clip(x_val, lo_val, hi_val))


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.bool_])
@pytest.mark.parametrize("axis, keepdims", [(None, False), (0, False), (1, True), ([0, 1], False)])
def test_count_nonzero(dtype, axis, keepdims):
    rng = np.random.default_rng(10)
    x_val = rng.integers(0, 3, (4, 3)).astype(dtype)
    x = tf.placeholder(TF_DTYPE[dtype], [None, 3])
    y = tf.count_nonzero(x, axis=axis, keepdims=keepdims)
    assert y.dtype is tf.int64
    np_axis = tuple(axis) if isinstance(axis, list) else axis
    check(run(y, {x: x_val}), np.count_nonzero(x_val, axis=np_axis, keepdims=keepdims),
          np.int64)


# -- Python operators --------------------------------------------------------------------------
OPERATORS = [
    ("add", lambda a, b: a + b), ("radd", lambda a, b: 2.0 + b), ("sub", lambda a, b: a - b),
    ("rsub", lambda a, b: 3.0 - b), ("mul", lambda a, b: a * b), ("rmul", lambda a, b: 0.5 * b),
    ("div", lambda a, b: a / b), ("rdiv", lambda a, b: 1.0 / b),
    ("floordiv", lambda a, b: a // b), ("rfloordiv", lambda a, b: 7.0 // b),  # (no edge cases)
    ("mod", lambda a, b: a % b), ("rmod", lambda a, b: 7.0 % b),
    ("pow", lambda a, b: abs(a) ** b), ("rpow", lambda a, b: 2.0 ** b),
    ("neg", lambda a, b: -a), ("abs", lambda a, b: abs(a)),
    ("lt", lambda a, b: a < b), ("le", lambda a, b: a <= b),
    ("gt", lambda a, b: a > b), ("ge", lambda a, b: a >= b),
    ("rlt", lambda a, b: 0.5 < b), ("rge", lambda a, b: 0.5 >= b),
    ("mixed", lambda a, b: (a * 2 - b) / (abs(b) + 1) + a ** 2),
]


@pytest.mark.parametrize("dtype", F)
@pytest.mark.parametrize("name, expr", OPERATORS, ids=[o[0] for o in OPERATORS])
def test_python_operators(name, expr, dtype):
    rng = np.random.default_rng(11)
    a_val = rng.uniform(-3, 3, (4, 3)).astype(dtype)
    b_val = away_from_zero(0.5, 2)(rng, (3,), dtype)
    a = tf.placeholder(TF_DTYPE[dtype], [None, 3])
    b = tf.placeholder(TF_DTYPE[dtype], [3])
    out = expr(a, b)
    assert isinstance(out, tf.Tensor)
    expected = np.asarray(expr(a_val, b_val))
    assert out.dtype is TF_DTYPE[expected.dtype.type]
    check(run(out, {a: a_val, b: b_val}), expected, expected.dtype)


def test_int_operators():
    a_val = np.array([[7, -7, 5], [0, 3, -9]], np.int32)
    b_val = np.array([2, 3, -4], np.int32)
    a = tf.placeholder(tf.int32, [None, 3])
    b = tf.placeholder(tf.int32, [3])
    outs = [a + b, a - b, a * b, a // b, a % b, a ** 2, -a, abs(a), 10 - a]
    expected = [a_val + b_val, a_val - b_val, a_val * b_val, a_val // b_val, a_val % b_val,
                a_val ** 2, -a_val, abs(a_val), 10 - a_val]
    for out, exp, val in zip(outs, expected, run(outs, {a: a_val, b: b_val})):
        assert out.dtype is tf.int32
        check(val, exp, np.int32)


def test_logical_operators():
    a_val = np.array([True, True, False, False])
    b_val = np.array([True, False, True, False])
    a, b = tf.placeholder(tf.bool, [None]), tf.placeholder(tf.bool, [None])
    got = run([a & b, a | b, a ^ b, ~a], {a: a_val, b: b_val})
    for val, exp in zip(got, [a_val & b_val, a_val | b_val, a_val ^ b_val, ~a_val]):
        check(val, exp, np.bool_)


@pytest.mark.parametrize("dtype", [np.float32, np.int32])
def test_matmul_operator(dtype):
    rng = np.random.default_rng(12)
    a_val, b_val = ints(-4, 4)(rng, (5, 4), dtype), ints(-4, 4)(rng, (4, 3), dtype)
    a = tf.placeholder(TF_DTYPE[dtype], [None, 4])
    b = tf.placeholder(TF_DTYPE[dtype], [4, 3])
    c = a @ b
    assert c.shape.as_list() == [None, 3]
    check(run(c, {a: a_val, b: b_val}), a_val @ b_val, dtype)


INDEXES = [
    ("int", lambda t: t[1]),
    ("neg_int", lambda t: t[-1]),
    ("int_int", lambda t: t[1, 2]),
    ("slice", lambda t: t[1:3]),
    ("open_slices", lambda t: t[:, 2:]),
    ("neg_bounds", lambda t: t[-3:-1, :-2]),
    ("step", lambda t: t[::2, 1::3]),
    ("reverse", lambda t: t[::-1]),
    ("neg_step", lambda t: t[:, 4:0:-2]),
    ("neg_step_neg_bounds", lambda t: t[-1:-4:-1, ::-3]),
    ("ellipsis", lambda t: t[..., 1]),
    ("ellipsis_mid", lambda t: t[0, ..., 2:4]),
    ("ellipsis_only", lambda t: t[...]),
    ("newaxis", lambda t: t[tf.newaxis]),
    ("newaxis_mid", lambda t: t[:, tf.newaxis, 1]),
    ("newaxis_ellipsis", lambda t: t[..., tf.newaxis]),
    ("mixed", lambda t: t[1:, tf.newaxis, ::-1, -2]),
    ("out_of_range_slice", lambda t: t[2:100, -100:2]),
    ("empty_slice", lambda t: t[3:1]),
]


@pytest.mark.parametrize("key", [k for _, k in INDEXES], ids=[n for n, _ in INDEXES])
def test_getitem(key):
    x_val = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    x = tf.placeholder(tf.float32, [None, 5, 6])
    y = key(x)
    expected = key(x_val)
    assert y.shape.ndims == expected.ndim
    assert y.shape.is_compatible_with(expected.shape)
    check(run(y, {x: x_val}), expected, np.float32)
    # With a fully known shape, the static shape is exact.
    tf.reset_default_graph()
    z = key(tf.constant(x_val))
    assert z.shape.as_list() == list(expected.shape)
    check(run(z), expected, np.float32)


def test_getitem_errors():
    x = tf.placeholder(tf.float32, [4, 5])
    with pytest.raises(errors.IndexOutOfRangeError):
        x[4]
    with pytest.raises(errors.IndexOutOfRangeError):
        x[0, 0, 0]
    with pytest.raises(ValueError):
        x[..., ...]


# -- static shapes and names -------------------------------------------------------------------
def test_static_shape_inference():
    x = tf.placeholder(tf.float32, [None, 784])
    w = tf.zeros([784, 10])
    assert (x @ w).shape.as_list() == [None, 10]
    assert tf.matmul(x, w).shape.as_list() == [None, 10]
    assert (tf.matmul(x, w) + tf.zeros([10])).shape.as_list() == [None, 10]
    assert (tf.placeholder(tf.float32, [None, 1]) + tf.zeros([3])).shape.as_list() == [None, 3]
    assert (tf.placeholder(tf.float32, [4, 1]) * tf.zeros([3])).shape.as_list() == [4, 3]
    assert (tf.placeholder(tf.float32, [None, 3]) * 2.0).shape.as_list() == [None, 3]
    assert tf.matmul(tf.placeholder(tf.float32, [None, 5, 4]), tf.zeros([4, 3]),
                     ).shape.as_list() == [None, 5, 3]
    assert tf.matmul(tf.zeros([4, 5]), tf.zeros([4, 3]), transpose_a=True
                     ).shape.as_list() == [5, 3]
    unknown = tf.placeholder(tf.float32)
    assert (unknown + x).shape.ndims is None
    assert tf.cast(x, tf.int32).shape.as_list() == [None, 784]
    assert tf.argmax(x, 1).shape.as_list() == [None]
    assert (x < 0.0).dtype is tf.bool


def test_incompatible_broadcast_is_a_shape_error():
    a = tf.placeholder(tf.float32, [None, 3], name="left")
    b = tf.placeholder(tf.float32, [4], name="right")
    with pytest.raises(errors.ShapeError) as info:
        a + b
    assert isinstance(info.value, ValueError)
    assert "left:0" in str(info.value) and "right:0" in str(info.value)


@pytest.mark.parametrize("build, name", [
    (lambda a, b: a + b, "add"),
    (lambda a, b: tf.add(a, b), "Add"),
    (lambda a, b: a - b, "sub"),
    (lambda a, b: tf.subtract(a, b), "Sub"),
    (lambda a, b: a * b, "mul"),
    (lambda a, b: tf.multiply(a, b), "Mul"),
    (lambda a, b: a / b, "truediv"),
    (lambda a, b: tf.div(a, b), "div"),
    (lambda a, b: tf.realdiv(a, b), "RealDiv"),
    (lambda a, b: a // b, "floordiv"),
    (lambda a, b: tf.floordiv(a, b), "FloorDiv"),
    (lambda a, b: a % b, "mod"),
    (lambda a, b: a ** b, "pow"),
    (lambda a, b: tf.pow(a, b), "Pow"),
    (lambda a, b: tf.maximum(a, b), "Maximum"),
    (lambda a, b: tf.squared_difference(a, b), "SquaredDifference"),
    (lambda a, b: a @ b, "MatMul"),
    (lambda a, b: tf.matmul(a, b), "MatMul"),
    (lambda a, b: -a, "Neg"),
    (lambda a, b: tf.negative(a), "Neg"),
    (lambda a, b: abs(a), "Abs"),
    (lambda a, b: tf.square(a), "Square"),
    (lambda a, b: tf.sigmoid(a), "Sigmoid"),
    (lambda a, b: a < b, "Less"),
    (lambda a, b: tf.equal(a, b), "Equal"),
    (lambda a, b: tf.cast(a, tf.int32), "Cast"),
    (lambda a, b: tf.reduce_sum(a), "Sum"),
    (lambda a, b: tf.reduce_mean(a), "Mean"),
    (lambda a, b: tf.reduce_max(a), "Max"),
    (lambda a, b: tf.argmax(a, 1), "ArgMax"),
    (lambda a, b: tf.add_n([a, b]), "AddN"),
    (lambda a, b: tf.clip_by_value(a, 0.0, 1.0), "clip_by_value"),
    (lambda a, b: a[0], "strided_slice"),
])
def test_tf1_default_names(build, name):
    a = tf.placeholder(tf.float32, [2, 2])
    b = tf.placeholder(tf.float32, [2, 2])
    t = build(a, b)
    assert t.op.name == name
    assert t.name == name + ":0"
    # A second op of the same kind is uniquified TF1-style.
    assert build(a, b).op.name == name + "_1"


def test_explicit_names_and_case_insensitive_uniquifying():
    a = tf.placeholder(tf.float32, [2], name="a")
    assert a.name == "a:0"
    assert tf.add(a, a, name="total").name == "total:0"
    assert tf.add(a, a, name="total").name == "total_1:0"
    assert tf.add(a, a).name == "Add:0"
    assert (a + a).name == "add_1:0"   # TF1 uniquifies names case-insensitively
