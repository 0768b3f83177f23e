"""The Session's fast path for repeated runs (graph/fast_path.py): it is taken, and whatever
changes between runs (a feed's type, shape, dtype, key, the graph, the variables, the
cache) gives the same results and errors as the general path."""
import threading

import numpy as np
import pytest

import flowjit as tf
from flowjit import errors
from flowjit.graph import session as session_module

BACKENDS = ["llvm", "eager"]


@pytest.fixture
def conversions(monkeypatch):
    """How many fed values the general path converted: runs on the fast path convert none."""
    calls = []
    convert = session_module.convert_feed_value

    def counting(tensor, value):
        calls.append(tensor)
        return convert(tensor, value)
    monkeypatch.setattr(session_module, "convert_feed_value", counting)
    return calls


@pytest.mark.parametrize("backend", BACKENDS)
def test_repeated_runs_take_the_fast_path(backend, conversions):
    a, b = tf.placeholder(tf.float32), tf.placeholder(tf.float32)
    y = a + b
    with tf.Session(backend=backend) as sess:
        assert sess.run(y, {a: 4.0, b: 5.0}) == 9.0
        assert len(conversions) == 2
        for i in range(5):
            value = sess.run(y, {a: float(i), b: 0.5})
            assert isinstance(value, np.float32) and value == i + 0.5
        assert len(conversions) == 2  # (every later run: no conversion)
        assert sess._request(y).fast is not None


@pytest.mark.parametrize("backend", BACKENDS)
def test_arrays_numbers_and_names_as_keys(backend, conversions):
    x = tf.placeholder(tf.float32, [None, 3], name="x")
    scale = tf.placeholder(tf.float32, [], name="scale")
    n = tf.placeholder(tf.int32, [], name="n")
    y = x * scale + tf.cast(n, tf.float32)
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    with tf.Session(backend=backend) as sess:
        for i in range(4):
            name = "".join(["x", ":0"])  # (an equal string, not the same object)
            got = sess.run([y], {name: data, "scale:0": 2.0, n: i})[0]
            np.testing.assert_array_equal(got, data * 2.0 + i)
        assert len(conversions) == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_feed_of_another_type_shape_or_dtype_leaves_the_fast_path(backend):
    x = tf.placeholder(tf.float32, name="x")
    y = x * 2.0
    with tf.Session(backend=backend) as sess:
        for _ in range(2):
            assert sess.run(y, {x: 1.5}) == 3.0
        np.testing.assert_array_equal(sess.run(y, {x: np.ones(3, np.float32)}), [2, 2, 2])
        np.testing.assert_array_equal(sess.run(y, {x: np.ones(3, np.float32)}), [2, 2, 2])
        np.testing.assert_array_equal(sess.run(y, {x: np.ones((2, 2), np.float32)}),
                                      np.full((2, 2), 2.0))
        np.testing.assert_array_equal(sess.run(y, {x: np.ones(3, np.float64)}), [2, 2, 2])
        np.testing.assert_array_equal(sess.run(y, {x: [1, 2]}), [2, 4])
        assert sess.run(y, {x: 3}) == 6.0
        assert sess.run(y, {x: 2 ** 40 + 1}) == np.float32(2 ** 40 + 1) * 2  # (rounded once)
        assert sess.run(y, {x: np.float64(0.25)}) == 0.5
        assert sess.run(y, {x: True}) == 2.0
        assert sess.run(y, {x: 1.5}) == 3.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_feeds_after_the_fast_path_raise_naming_the_placeholder(backend):
    x = tf.placeholder(tf.float32, [3], name="images")
    n = tf.placeholder(tf.int32, [], name="count")
    y = x * tf.cast(n, tf.float32)
    good = np.ones(3, np.float32)
    with tf.Session(backend=backend) as sess:
        for _ in range(2):
            sess.run(y, {x: good, n: 2})
        with pytest.raises(errors.InvalidArgumentError, match="images"):
            sess.run(y, {x: np.ones(4, np.float32), n: 2})
        with pytest.raises(errors.InvalidArgumentError, match="count"):
            sess.run(y, {x: good, n: 2 ** 40})  # (outside int32)
        with pytest.raises(errors.InvalidArgumentError, match="count"):
            sess.run(y, {x: good, n: float("nan")})
        with pytest.raises(errors.InvalidArgumentError, match="images"):
            sess.run(y, {x: "three", n: 2})
        with pytest.raises(errors.InvalidArgumentError, match="count"):
            sess.run(y, {x: good})  # (unfed)
        np.testing.assert_array_equal(sess.run(y, {x: good, n: 3}), [3, 3, 3])
        np.testing.assert_array_equal(sess.run(y, {x: good, n: 2.5}), [2, 2, 2])  # (as TF1)


def test_a_narrower_shape_set_after_a_run_is_checked():
    x = tf.placeholder(tf.float32, name="x")
    y = x + 1.0
    with tf.Session() as sess:
        for _ in range(2):
            np.testing.assert_array_equal(sess.run(y, {x: np.zeros(2, np.float32)}), [1, 1])
        x.set_shape([3])
        with pytest.raises(errors.InvalidArgumentError, match="x"):
            sess.run(y, {x: np.zeros(2, np.float32)})
        np.testing.assert_array_equal(sess.run(y, {x: np.zeros(3, np.float32)}), [1, 1, 1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_results_of_fed_numbers_are_never_overwritten(backend):
    a = tf.placeholder(tf.float32, [], name="a")
    v = tf.Variable(0.0)
    as_vector = tf.reshape(a, [1])
    kept = []
    seen = tf.py_func(lambda value: kept.append(value) or value, [a], tf.float32)
    update = tf.assign(v, a)
    with tf.Session(backend=backend) as sess:
        sess.run(v.initializer)
        results = [sess.run([a, as_vector, seen, update], {a: float(i)}) for i in range(4)]
        for i, (scalar, vector, through, assigned) in enumerate(results):
            assert scalar == i and assigned == i and through == i
            np.testing.assert_array_equal(vector, [i])
        assert [float(value) for value in kept] == [0.0, 1.0, 2.0, 3.0]
        assert sess.run(v) == 3.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_runs_from_several_threads_each_see_their_own_feeds(backend):
    a, b = tf.placeholder(tf.float32), tf.placeholder(tf.float32)
    y = a * 2.0 + b
    wrong = []
    with tf.Session(backend=backend) as sess:
        sess.run(y, {a: 0.0, b: 0.0})

        def worker(k):
            for i in range(300):
                got = sess.run(y, {a: float(k), b: float(i)})
                if got != 2.0 * k + i:
                    wrong.append((k, i, got))
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not wrong


@pytest.mark.parametrize("backend", BACKENDS)
def test_variables_counters_and_new_variable_shapes(backend):
    v = tf.Variable(tf.placeholder_with_default(np.ones(2, np.float32), [None]),
                    validate_shape=False)
    step = tf.placeholder(tf.float32, [])
    update = tf.assign_add(v, tf.fill(tf.shape(v), step))
    noise = tf.random_uniform([2], seed=1)
    with tf.Session(backend=backend) as sess:
        sess.run(v.initializer)
        draws = [sess.run([update, noise], {step: 1.0})[1] for _ in range(3)]
        np.testing.assert_array_equal(sess.run(v), [4, 4])
        assert not np.array_equal(draws[0], draws[1])  # the random counter advances
        v.load(np.zeros(3, np.float32), sess)  # (a new shape: the executable is stale)
        for _ in range(2):
            sess.run(update, {step: 2.0})
        np.testing.assert_array_equal(sess.run(v), [4, 4, 4])


def test_an_evicted_executable_is_compiled_again(monkeypatch):
    from flowjit.config import config
    monkeypatch.setattr(config, "cache_size", 1)
    x = tf.placeholder(tf.float32, [])
    y, z = x + 1.0, x + 2.0
    with tf.Session() as sess:
        for i in range(3):
            assert sess.run(y, {x: float(i)}) == i + 1
            assert sess.run(z, {x: float(i)}) == i + 2
        assert len(sess._executables) == 1


def test_a_closed_session_refuses_the_fast_path_too():
    x = tf.placeholder(tf.float32, [])
    y = x + 1.0
    sess = tf.Session()
    for _ in range(2):
        sess.run(y, {x: 1.0})
    sess.close()
    with pytest.raises(RuntimeError, match="closed"):
        sess.run(y, {x: 1.0})


def test_a_non_contiguous_array_is_fed_as_it_is():
    x = tf.placeholder(tf.float32, [3])
    y = x * 2.0
    data = np.arange(6, dtype=np.float32)[::2]
    with tf.Session() as sess:
        for _ in range(3):
            np.testing.assert_array_equal(sess.run(y, {x: data}), [0, 4, 8])


NUMBERS = [True, False, 0, 1, -1, 127, 128, -129, 255, 256, 2 ** 24, 2 ** 24 + 1, 2 ** 31,
           2 ** 63 - 1, 2 ** 63, 1.5, -0.0, 2.5e38, 1e300, float("inf"), float("nan"),
           np.float32(2.5), np.float64(1 / 3), np.int64(3), np.bool_(True)]
DTYPES = [tf.float16, tf.float32, tf.float64, tf.int8, tf.int32, tf.int64, tf.uint8, tf.bool]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_numbers_the_fast_path_converts_convert_as_the_general_path(dtype):
    """Where `number_range` lets the fast path write a number into its buffer, the result is
    bit for bit what convert_feed_value makes of it, with the same warnings (overflow)."""
    import warnings
    from flowjit.graph.feeds import convert_feed_value, number_range
    x = tf.placeholder(dtype, [])
    for value in NUMBERS:
        bounds = number_range(value, dtype)
        if bounds is None or (bounds[0] is not None and not bounds[0] <= value <= bounds[1]):
            continue
        buffer = np.zeros((), dtype.np_dtype)
        with warnings.catch_warnings(record=True) as fast_warnings:
            warnings.simplefilter("always")
            buffer[()] = value
        with warnings.catch_warnings(record=True) as general_warnings:
            warnings.simplefilter("always")
            expected = convert_feed_value(x, value)
        assert expected.dtype == buffer.dtype and expected.shape == ()
        assert expected.tobytes() == buffer.tobytes(), (value, expected, buffer)
        assert [str(w.message) for w in fast_warnings] == \
            [str(w.message) for w in general_warnings], value


@pytest.mark.parametrize("backend", BACKENDS)
def test_read_only_arrays_fed_in_turn_are_each_read(backend):
    """A kernel remembers the address of the last read-only array it read (runtime/cpu.py's
    InputCheck): another one, of the same shape, is read from its own memory."""
    x = tf.placeholder(tf.float32, [4])
    y = x * 2.0
    first, second = np.arange(4, dtype=np.float32), np.full(4, 10.0, np.float32)
    for array in (first, second):
        array.setflags(write=False)
    with tf.Session(backend=backend) as sess:
        for _ in range(3):
            np.testing.assert_array_equal(sess.run(y, {x: first}), first * 2)
            np.testing.assert_array_equal(sess.run(y, {x: second}), second * 2)
            np.testing.assert_array_equal(sess.run(y, {x: first[::-1]}), first[::-1] * 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_ops_added_after_runs_leave_earlier_fetches_as_they_were(backend, conversions):
    x = tf.placeholder(tf.float32, [])
    y = x + 1.0
    with tf.Session(backend=backend) as sess:
        for i in range(2):
            assert sess.run(y, {x: float(i)}) == i + 1
        v = tf.Variable(5.0)
        z = y * v
        with tf.control_dependencies([tf.assign_add(v, 1.0)]):
            w = tf.identity(y)
        sess.run(v.initializer)
        before = len(conversions)
        assert sess.run(y, {x: 2.0}) == 3.0
        assert len(conversions) == before  # (still the fast path)
        for i in range(2):
            assert sess.run(z, {x: float(i)}) == (i + 1) * 5.0
        assert sess.run(w, {x: 0.0}) == 1.0 and sess.run(v) == 6.0


def test_a_read_only_array_fed_is_not_kept_alive_by_the_session():
    """The input checks remember the last read-only array's address (it may come back run
    after run) through a weak reference: the user's array is freed when they drop it."""
    import gc
    import weakref
    x = tf.placeholder(tf.float32, [None])
    y = tf.reduce_sum(x * 2.0)
    with tf.Session() as sess:
        a = np.ones(1 << 16, np.float32)
        a.setflags(write=False)
        alive = weakref.ref(a)
        assert sess.run(y, {x: a}) == 2.0 * (1 << 16)
        assert sess.run(y, {x: a}) == 2.0 * (1 << 16)  # (the remembered address)
        del a
        gc.collect()
        assert alive() is None
        b = np.full(1 << 16, 3.0, np.float32)
        b.setflags(write=False)
        assert sess.run(y, {x: b}) == 6.0 * (1 << 16)
