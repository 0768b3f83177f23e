"""Property tests of static shape inference: broadcasting binary ops and reductions.

For random shapes (some dims broadcastable, some unknown in the placeholder), the shape flowjit
infers when the graph is built must be compatible with what numpy computes from the fed values,
and exact where everything is known; the values must equal numpy's. Shapes that cannot
broadcast must fail at build time with a ShapeError naming both operands.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowjit as tf
from flowjit import errors

SETTINGS = settings(max_examples=75, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

BINARY = [
    ("add", tf.add, np.add),
    ("subtract", tf.subtract, np.subtract),
    ("multiply", tf.multiply, np.multiply),
    ("maximum", tf.maximum, np.maximum),
    ("minimum", tf.minimum, np.minimum),
    ("squared_difference", tf.squared_difference, lambda a, b: (a - b) ** 2),
    ("less", tf.less, np.less),
    ("equal", tf.equal, np.equal),
    ("operator+", lambda a, b: a + b, np.add),
    ("operator*", lambda a, b: a * b, np.multiply),
]
DTYPES = [(tf.float64, np.float64), (tf.int32, np.int32)]


@pytest.fixture(autouse=True)
def fresh_graph():
    tf.reset_default_graph()
    yield
    tf.reset_default_graph()


# -- strategies -------------------------------------------------------------------------------
@st.composite
def operand_shapes(draw, base):
    """A shape that broadcasts to `base`: a suffix of it, with some dims replaced by 1."""
    rank = draw(st.integers(0, len(base)))
    suffix = base[len(base) - rank:]
    return tuple(d if draw(st.booleans()) else 1 for d in suffix)


@st.composite
def static_shape(draw, shape):
    """The placeholder's declared shape for values of `shape`: some dims None, rarely the
    whole rank unknown."""
    if draw(st.integers(0, 9)) == 0:
        return None
    return [None if draw(st.booleans()) else d for d in shape]


@st.composite
def broadcast_case(draw):
    base = tuple(draw(st.lists(st.integers(1, 4), min_size=0, max_size=4)))
    x_shape, y_shape = draw(operand_shapes(base)), draw(operand_shapes(base))
    return x_shape, y_shape, draw(static_shape(x_shape)), draw(static_shape(y_shape))


@st.composite
def incompatible_case(draw):
    """Shapes with one aligned pair of known, different, non-1 dims."""
    base = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    x_shape = list(draw(operand_shapes(base)))
    y_shape = list(draw(operand_shapes(base)))
    common = min(len(x_shape), len(y_shape))
    if common == 0:
        x_shape, y_shape = x_shape or [2], y_shape or [3]
        common = 1
    pos = draw(st.integers(1, common))              # counted from the end
    a = draw(st.integers(2, 5))
    b = draw(st.integers(2, 5).filter(lambda v: v != a))
    x_shape[-pos], y_shape[-pos] = a, b
    x_static = [None if draw(st.booleans()) and i != len(x_shape) - pos else d
                for i, d in enumerate(x_shape)]
    y_static = [None if draw(st.booleans()) and i != len(y_shape) - pos else d
                for i, d in enumerate(y_shape)]
    return x_static, y_static


def _values(rng, shape, np_dtype):
    return rng.integers(-3, 4, shape).astype(np_dtype)   # small ints: ties for less/equal


def _assert_shape_matches(static, actual):
    """`static` (a TensorShape) is compatible with `actual` and has its rank when known."""
    assert static.is_compatible_with(actual), (static, actual)
    if static.ndims is not None:
        assert static.ndims == len(actual)


# -- binary ops -------------------------------------------------------------------------------
@SETTINGS
@given(case=broadcast_case(), op=st.sampled_from(BINARY), dtypes=st.sampled_from(DTYPES),
       seed=st.integers(0, 2 ** 16))
def test_binary_op_shape_and_values_match_numpy(case, op, dtypes, seed):
    x_shape, y_shape, x_static, y_static = case
    _, tf_fn, np_fn = op
    tf_dtype, np_dtype = dtypes
    rng = np.random.default_rng(seed)
    x_val, y_val = _values(rng, x_shape, np_dtype), _values(rng, y_shape, np_dtype)
    expected = np_fn(x_val, y_val)
    with tf.Graph().as_default():
        x = tf.placeholder(tf_dtype, x_static)
        y = tf.placeholder(tf_dtype, y_static)
        z = tf_fn(x, y)
        _assert_shape_matches(z.shape, expected.shape)
        if x.shape.is_fully_defined() and y.shape.is_fully_defined():
            assert z.shape.as_list() == list(expected.shape)
        # Every dim known on either side that is not 1 is known in the result.
        if x_static is not None and y_static is not None:
            for i in range(1, len(expected.shape) + 1):
                dx = x_static[-i] if i <= len(x_static) else 1
                dy = y_static[-i] if i <= len(y_static) else 1
                known = {d for d in (dx, dy) if d not in (None, 1)}
                if known:
                    assert z.shape[-i] == known.pop()
        with tf.Session() as sess:
            got = sess.run(z, {x: x_val, y: y_val})
    got = np.asarray(got)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@SETTINGS
@given(case=incompatible_case(), op=st.sampled_from(BINARY))
def test_incompatible_static_shapes_fail_at_build_time(case, op):
    x_static, y_static = case
    _, tf_fn, _ = op
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float64, x_static, name="lhs")
        y = tf.placeholder(tf.float64, y_static, name="rhs")
        with pytest.raises(errors.ShapeError) as info:
            tf_fn(x, y)
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert x.name in message and y.name in message, message


# -- reductions -------------------------------------------------------------------------------
REDUCTIONS = [
    (tf.reduce_sum, np.sum), (tf.reduce_mean, np.mean), (tf.reduce_max, np.max),
    (tf.reduce_min, np.min), (tf.reduce_prod, np.prod),
]


@st.composite
def reduction_case(draw):
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=1, max_size=4)))
    rank = len(shape)
    if draw(st.integers(0, 4)) == 0:
        axis = None
    else:
        axes = draw(st.lists(st.integers(0, rank - 1), unique=True, max_size=rank))
        # each axis spelled positive or negative
        axis = [a - rank if draw(st.booleans()) else a for a in axes]
        if len(axis) == 1 and draw(st.booleans()):
            axis = axis[0]
    static = draw(static_shape(shape))
    return shape, static, axis, draw(st.booleans())


@SETTINGS
@given(case=reduction_case(), op=st.sampled_from(REDUCTIONS), seed=st.integers(0, 2 ** 16),
       spelling=st.sampled_from(["axis", "tf1"]))
def test_reduction_shape_and_values_match_numpy(case, op, seed, spelling):
    shape, static, axis, keepdims = case
    tf_fn, np_fn = op
    x_val = np.random.default_rng(seed).uniform(-2, 2, shape)
    np_axis = tuple(axis) if isinstance(axis, list) else axis
    expected = np.asarray(np_fn(x_val, axis=np_axis, keepdims=keepdims))
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float64, static)
        if spelling == "axis":
            y = tf_fn(x, axis=axis, keepdims=keepdims)
        else:
            y = tf_fn(x, reduction_indices=axis, keep_dims=keepdims)
        if static is not None or axis is None and not keepdims:
            assert y.shape.ndims == expected.ndim
        _assert_shape_matches(y.shape, expected.shape)
        if static is not None and None not in static:
            assert y.shape.as_list() == list(expected.shape)
        with tf.Session() as sess:
            got = np.asarray(sess.run(y, {x: x_val}))
    assert got.shape == expected.shape and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
