"""Session.run: fetch structures, feeds, state semantics, default sessions."""
import collections

import numpy as np
import pytest

import flowjit as tf


def test_fetch_structures_are_preserved():
    a = tf.constant(1.0)
    b = tf.constant([2, 3])
    Pair = collections.namedtuple("Pair", "first second")
    noop = tf.no_op()
    with tf.Session() as sess:
        out = sess.run({"a": a, "nested": [b, (a, noop)], "pair": Pair(a, b)})
    assert out["a"] == 1.0
    np.testing.assert_array_equal(out["nested"][0], [2, 3])
    assert isinstance(out["nested"][1], tuple) and out["nested"][1][1] is None
    assert isinstance(out["pair"], Pair) and out["pair"].first == 1.0


def test_scalar_results_are_numpy_scalars_of_the_tensor_dtype():
    with tf.Session() as sess:
        value = sess.run(tf.constant(3.0) + 4.0)
    assert isinstance(value, np.float32) and value == 7.0


def test_feed_by_tensor_and_by_name():
    x = tf.placeholder(tf.float32, [None, 2], name="x")
    y = tf.reduce_sum(x, axis=1, name="y")
    with tf.Session() as sess:
        by_tensor = sess.run(y, {x: [[1, 2], [3, 4]]})
        by_name = sess.run("y:0", feed_dict={"x:0": np.ones((3, 2))})
    np.testing.assert_array_equal(by_tensor, [3, 7])
    np.testing.assert_array_equal(by_name, [2, 2, 2])


def test_fetching_an_op_by_name_returns_none():
    v = tf.Variable(1.0, name="v")
    tf.assign(v, 5.0, name="set_v")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run("set_v") is None or sess.run("set_v") == 5.0
        assert sess.run(v) == 5.0


def test_any_tensor_can_be_fed():
    a = tf.constant(2.0)
    b = a * 3.0
    c = b + 1.0
    with tf.Session() as sess:
        assert sess.run(c, {b: 10.0}) == 11.0


def test_y_is_read_before_the_update_in_the_same_run():
    # The seed's training table depends on this TF1 rule.
    w = tf.Variable(1.0)
    y = w * 10.0
    update = tf.assign_add(w, 1.0)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        values = [sess.run([y, update])[0] for _ in range(3)]
    assert values == [10.0, 20.0, 30.0]


def test_control_dependency_makes_a_read_see_the_assignment():
    w = tf.Variable(1.0)
    inc = tf.assign_add(w, 1.0)
    with tf.control_dependencies([inc]):
        after = tf.identity(w)
    before = tf.identity(w)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        b, a = sess.run([before, after])
        assert (b, a) == (1.0, 2.0)
        assert sess.run(w) == 2.0


def test_chained_assignments_in_one_run():
    w = tf.Variable(1.0)
    first = tf.assign(w, 5.0)
    with tf.control_dependencies([first]):
        second = tf.assign_add(w, 2.0)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run(second) == 7.0
        assert sess.run(w) == 7.0


def test_assign_result_is_the_new_value():
    v = tf.Variable([1.0, 2.0])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_array_equal(sess.run(tf.assign(v, [3.0, 4.0])), [3, 4])
        np.testing.assert_array_equal(sess.run(v.assign_sub([1.0, 1.0])), [2, 3])


def test_variables_live_per_session():
    v = tf.Variable(0.0)
    inc = tf.assign_add(v, 1.0)
    init = tf.global_variables_initializer()
    s1, s2 = tf.Session(), tf.Session()
    s1.run(init)
    s2.run(init)
    s1.run(inc)
    s1.run(inc)
    assert s1.run(v) == 2.0 and s2.run(v) == 0.0


def test_group_runs_everything():
    a, b = tf.Variable(0.0), tf.Variable(0.0)
    both = tf.group(tf.assign(a, 1.0), tf.assign(b, 2.0), name="both")
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run(both) is None
        assert sess.run([a, b]) == [1.0, 2.0]


def test_fetched_arrays_are_owned_by_the_caller():
    v = tf.Variable([1.0, 2.0])
    x = tf.placeholder(tf.float32, [2])
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got = sess.run(v)
        got[0] = 100.0  # must not change the variable
        np.testing.assert_array_equal(sess.run(v), [1.0, 2.0])
        fed = np.array([5.0, 6.0], np.float32)
        out = sess.run(x, {x: fed})
        out[0] = -1
        assert fed[0] == 5.0


def test_eval_and_run_with_default_session():
    x = tf.placeholder(tf.float32)
    y = x * 2
    v = tf.Variable(3.0)
    with tf.Session() as sess:
        tf.global_variables_initializer().run()
        assert y.eval({x: 2.0}) == 4.0
        assert v.eval() == 3.0
    with pytest.raises(ValueError, match="No default session"):
        y.eval({x: 1.0})


def test_interactive_session():
    sess = tf.InteractiveSession()
    try:
        assert (tf.constant(2.0) * 3.0).eval() == 6.0
    finally:
        sess.close()
    assert tf.get_default_session() is None


def test_closed_session_refuses_to_run():
    sess = tf.Session()
    sess.close()
    with pytest.raises(RuntimeError, match="closed Session"):
        sess.run(tf.constant(1.0))


def test_placeholder_with_default():
    x = tf.placeholder_with_default(tf.constant([1.0, 2.0]), [None])
    y = x * 2
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(y), [2, 4])
        np.testing.assert_array_equal(sess.run(y, {x: [5.0]}), [10])


def test_unneeded_placeholders_need_no_feed():
    x = tf.placeholder(tf.float32)
    tf.placeholder(tf.float32) * x  # noqa: B018 - builds an op nobody fetches
    with tf.Session() as sess:
        assert sess.run(x + 1, {x: 1.0}) == 2.0


def test_initialized_value_orders_initializers():
    a = tf.Variable(2.0)
    b = tf.Variable(a.initialized_value() * 3.0)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert sess.run(b) == 6.0


def test_report_uninitialized_variables():
    a = tf.Variable(1.0, name="a")
    b = tf.Variable(2.0, name="b")
    report = tf.report_uninitialized_variables()
    with tf.Session() as sess:
        assert list(sess.run(report)) == [b"a", b"b"]  # bytes, as TF1
        sess.run(a.initializer)
        assert list(sess.run(report)) == [b"b"]
        assert sess.run(tf.is_variable_initialized(a))


def test_variable_load():
    v = tf.Variable([0.0, 0.0])
    with tf.Session() as sess:
        v.load([1.0, 2.0], sess)
        np.testing.assert_array_equal(sess.run(v), [1, 2])


def test_deep_graph_does_not_hit_the_recursion_limit():
    x = tf.placeholder(tf.float32)
    y = x
    for _ in range(3000):
        y = y + 1.0
    with tf.Session() as sess:
        assert sess.run(y, {x: 0.0}) == 3000.0


def test_recompiles_are_logged_and_bounded(caplog, monkeypatch):
    import logging
    import warnings
    from flowjit.config import config
    from flowjit.graph import session as session_module
    monkeypatch.setattr(config, "cache_size", 3)
    monkeypatch.setattr(config, "log_recompiles", True)  # (FLOWJIT_LOG=recompile)
    monkeypatch.setattr(session_module, "RECOMPILE_WARNING", 4)
    x = tf.placeholder(tf.float32, [None], name="x")
    y = tf.reduce_sum(x * 2.0, name="y")
    with tf.Session() as sess, caplog.at_level(logging.INFO, logger="flowjit"), \
            warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for n in (1, 2, 3, 4, 1):
            assert sess.run(y, {x: np.ones(n)}) == 2.0 * n
        assert len(sess._executables) == 3  # LRU bound
    messages = [r.getMessage() for r in caplog.records]
    assert "first run of these fetches" in messages[0] and "x:0 f32[1]" in messages[0]
    assert "a feed shape or dtype changed" in messages[1]
    assert len(messages) == 5  # n=1 was evicted, so it compiled again
    assert any("compiled [y:0] 4 times" in str(w.message) for w in caught)


@pytest.mark.parametrize("backend", ["eager", "llvm"])
def test_results_and_variables_never_alias_other_arrays(backend):
    x = tf.placeholder(tf.float32, [4])
    v = tf.Variable(np.zeros(4, np.float32))
    view_of_feed = tf.reshape(x, [2, 2])
    update = tf.assign(v, tf.reshape(view_of_feed, [4]))
    with tf.Session(backend=backend) as sess:
        sess.run(tf.global_variables_initializer())
        feed = np.ones(4, np.float32)
        got, _ = sess.run([view_of_feed, update], {x: feed})
        feed[:] = 7.0    # the caller reuses its batch buffer
        got[0, 0] = 99.0  # and scribbles on a result
        np.testing.assert_array_equal(sess.run(v), np.ones(4))
        np.testing.assert_array_equal(got, [[99, 1], [1, 1]])


@pytest.mark.parametrize("backend", ["eager", "llvm"])
def test_load_a_variable_with_a_new_shape(backend):
    v = tf.Variable(tf.placeholder_with_default(np.ones(3, np.float32), [None]),
                    validate_shape=False)
    y = v * 2.0 + 1.0
    with tf.Session(backend=backend) as sess:
        sess.run(v.initializer)
        np.testing.assert_array_equal(sess.run(y), [3, 3, 3])
        v.load(np.arange(5, dtype=np.float32), sess)
        np.testing.assert_array_equal(sess.run(y), [1, 3, 5, 7, 9])


def test_empty_fetches_return_empty_structures():
    with tf.Session() as sess:
        assert sess.run([]) == [] and sess.run(()) == () and sess.run({}) == {}


def test_threads_asking_for_one_executable_compile_it_once():
    import threading
    x = tf.placeholder(tf.float32, [None])
    y = tf.reduce_sum(tf.tanh(x))
    with tf.Session() as sess:
        def work():
            for _ in range(5):
                sess.run(y, {x: np.ones(8, np.float32)})
        threads = [threading.Thread(target=work) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(sess._compile_counts.values()) == 1


def test_an_interrupt_at_any_moment_of_a_run_keeps_all_or_none_of_its_assignments():
    """Ctrl-C (here: a signal handler raising KeyboardInterrupt, as Python's SIGINT handler
    does) lands at random moments of runs that add 1 to 40 variables: afterwards the
    variables always agree, so no run was half committed."""
    import random
    import signal
    variables = [tf.Variable(0.0, name=f"v{i}") for i in range(40)]
    step = tf.group(*[tf.assign_add(v, 1.0) for v in variables])

    armed = [False]

    def interrupt(signum, frame):
        if armed[0]:  # once per round, and only inside the round's `try`
            armed[0] = False
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    rng = random.Random(0)
    interrupted = 0
    try:
        with tf.Session() as sess:
            sess.run(tf.global_variables_initializer())
            sess.run(step)  # compiled before the interrupts start
            for _ in range(300):
                armed[0] = True
                try:
                    signal.setitimer(signal.ITIMER_REAL, rng.uniform(1e-6, 4e-4))
                    for _ in range(50):
                        sess.run(step)
                    armed[0] = False
                except KeyboardInterrupt:
                    interrupted += 1
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
                values = sess.run(variables)
                assert len(set(values)) == 1, f"a run was half committed: {sorted(set(values))}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert interrupted > 100  # the interrupts really landed inside runs


def test_instructions_without_a_native_kernel_are_counted_and_logged(caplog, monkeypatch):
    """A host fallback is never silent: the build's stats list it, and FLOWJIT_LOG=fallback
    names the instruction and the user's op."""
    import logging
    from flowjit.config import config
    monkeypatch.setattr(config, "log_fallbacks", True)
    x = tf.placeholder(tf.float32, [4, 6])
    y = tf.argmax(x * 2.0, 1, name="my_argmax")  # (argmax has no kernel yet)
    with tf.Session(backend="llvm") as sess, caplog.at_level(logging.INFO, logger="flowjit"):
        assert list(sess.run(y, {x: np.eye(4, 6)})) == [0, 1, 2, 3]
        (executable,) = sess._executables.values()
    assert any("my_argmax" in f for f in executable.stats["fallbacks"]), executable.stats
    assert any("without a native kernel" in r.getMessage() and "my_argmax" in r.getMessage()
               for r in caplog.records)


def test_a_variable_first_set_to_another_shape_than_declared_recompiles_its_readers():
    """An executable compiled while the variable was uninitialized assumed its declared
    shape; the first value of another shape (validate_shape=False) makes it stale."""
    v = tf.Variable(np.zeros(2, np.float32), validate_shape=False)
    init5 = tf.assign(v, np.arange(5, dtype=np.float32), validate_shape=False)
    y = v * 2.0
    with tf.Session() as sess:
        with pytest.raises(tf.errors.FailedPreconditionError):
            sess.run(y)
        sess.run(init5.op)
        np.testing.assert_array_equal(sess.run(y), np.arange(5) * 2.0)
