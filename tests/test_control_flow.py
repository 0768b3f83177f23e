"""Control flow (ops/control_flow.py, ops/functional.py): tf.cond, tf.case, tf.while_loop,
map_fn, foldl, foldr, scan, on the backend FLOWJIT_BACKEND selects, against numpy; their IR
(cond/while regions) printed, parsed and verified; the passes inside regions; gradients
against finite differences."""
import collections

import numpy as np
import pytest

import flowjit as tf
from flowjit import errors
from flowjit.compiler import CompileOptions, optimize
from flowjit.interp.evaluate import evaluate
from flowjit.ir.core import TensorType
from flowjit.ir.parser import parse_func
from flowjit.ir.printer import print_func
from flowjit.ir.verifier import verify
from flowjit.lower import lower
from flowjit.runtime import cpu
from test_gradients import check_gradients

X = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], np.float32)


def _roundtrip(func):
    text = print_func(func)
    parsed = parse_func(text)
    verify(parsed)
    assert print_func(parsed) == text
    return text


def _optimized(fetches, feeds):
    func = lower(fetches, feed_types={t: TensorType(t.dtype, np.shape(v))
                                      for t, v in feeds.items()})
    return func, optimize(func, CompileOptions(verify=True))


def _inputs(func, feeds):
    by_name = {t.name: np.asarray(v, t.dtype.np_dtype) for t, v in feeds.items()}
    return [by_name[p.key] for p in func.params]


# -- tf.cond --------------------------------------------------------------------------------
def test_cond_on_a_fed_is_training_flag_runs_the_branch_it_picks():
    x = tf.placeholder(tf.float32, [None, 3], name="x")
    is_training = tf.placeholder(tf.bool, [], name="is_training")
    y = tf.cond(is_training, lambda: tf.nn.relu(x) * 2.0, lambda: x - 1.0)
    assert y.shape.as_list() == [None, 3]
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(y, {x: X, is_training: True}),
                                   np.maximum(X, 0) * 2)
        np.testing.assert_allclose(sess.run(y, {x: X, is_training: False}), X - 1)


def test_cond_returns_nested_structures_outer_tensors_and_python_values():
    x = tf.placeholder(tf.float32, [2, 3], name="x")
    p = tf.placeholder(tf.bool, [], name="p")
    out = tf.cond(p, lambda: {"a": x, "b": (tf.reduce_sum(x), 1.0)},
                  lambda: {"a": x * x, "b": (tf.reduce_max(x), 2.0)})
    assert sorted(out) == ["a", "b"] and isinstance(out["b"], tuple)
    with tf.Session() as sess:
        for flag in (True, False):
            got = sess.run(out, {x: X, p: flag})
            want_a = X if flag else X * X
            np.testing.assert_allclose(got["a"], want_a)
            np.testing.assert_allclose(got["b"][0], X.sum() if flag else X.max(), rtol=1e-6)
            assert got["b"][1] == (1.0 if flag else 2.0)


def test_cond_static_shape_is_what_both_branches_agree_on():
    x = tf.placeholder(tf.float32, [None, 3], name="x")
    p = tf.placeholder(tf.bool, [], name="p")
    y = tf.cond(p, lambda: x, lambda: tf.zeros([2, 3]))
    assert y.shape.as_list() == [None, 3]
    single = tf.cond(p, lambda: [x], lambda: [x + 1.0])  # non-strict: unpacked
    assert isinstance(single, tf.Tensor)
    strict = tf.cond(p, lambda: [x], lambda: [x + 1.0], strict=True)
    assert isinstance(strict, list) and len(strict) == 1


def test_cond_branches_of_different_structure_or_dtype_are_errors_naming_them():
    p = tf.placeholder(tf.bool, [], name="p")
    x = tf.constant([1.0, 2.0])
    with pytest.raises(ValueError, match=r"'pair': true_fn and false_fn must have the same "
                                         r"nested structure, but true_fn returned \(x, x\) "
                                         r"and false_fn returned x"):
        tf.cond(p, lambda: (x, x), lambda: x, name="pair")
    with pytest.raises(ValueError, match=r"'typed'.*output 0 is float32 in true_fn and int32 "
                                         r"in false_fn"):
        tf.cond(p, lambda: x, lambda: tf.constant([1, 2]), name="typed")
    with pytest.raises(TypeError, match="pred must be a bool tensor"):
        tf.cond(tf.constant(1), lambda: x, lambda: x)
    with pytest.raises(TypeError, match="must not be a Python bool"):
        tf.cond(True, lambda: x, lambda: x)
    with pytest.raises(ValueError, match="false_fn of 'none' must return a value"):
        tf.cond(p, lambda: x, lambda: None, name="none")


def test_variables_read_and_created_in_branches_but_not_assigned_in_loops():
    v = tf.Variable([1.0, 2.0], name="v")
    p = tf.placeholder(tf.bool, [], name="p")
    y = tf.cond(p, lambda: v * 3.0, lambda: v + 0.0)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_allclose(sess.run(y, {p: True}), [3.0, 6.0])
    with pytest.raises(errors.UnimplementedError, match="assigning variables in tf.while_loop"):
        tf.while_loop(lambda i: i < 2, lambda i: (tf.assign(v, [0.0, 0.0]), i + 1)[1], [0])
    # a variable created in a branch is the program's (TF1's init_scope): made and
    # initialized outside the cond, read inside
    z = tf.cond(p, lambda: tf.Variable([1.0], name="w") * 2.0, lambda: tf.constant([1.0]))
    (w,) = [v for v in tf.global_variables() if v.op.name.endswith("w")]
    assert w.op.graph is tf.get_default_graph()
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_allclose(sess.run(z, {p: True}), [2.0])


def test_branches_assign_variables_only_when_taken_and_read_their_new_values():
    v = tf.Variable(1.0, name="v")
    count = tf.Variable(0, name="count")
    flag = tf.placeholder(tf.bool, [], name="flag")

    def taken():
        tripled = tf.assign(v, v * 3.0)
        with tf.control_dependencies([tripled, tf.assign_add(count, 1)]):
            return tf.identity(v) + 0.5  # the value the branch assigned
    out = tf.cond(flag, taken, lambda: v + 0.0)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        got = [(sess.run(out, {flag: f}), *sess.run([v, count])) for f in (True, False, True)]
    assert got == [(3.5, 3.0, 1), (3.0, 3.0, 1), (9.5, 9.0, 2)]


def test_batch_norm_moving_mean_updated_in_a_training_branch():
    """The TF1 tutorial pattern: the training branch updates the moving mean, the
    inference branch reads it; nested conds assign through both levels."""
    mean = tf.Variable(tf.zeros([2]), trainable=False, name="moving_mean")
    steps = tf.Variable(0, name="steps")
    x = tf.placeholder(tf.float32, [None, 2])
    training = tf.placeholder_with_default(True, [])
    count_it = tf.placeholder_with_default(True, [])

    def train():
        batch = tf.reduce_mean(x, 0)
        update = tf.assign(mean, mean * 0.9 + batch * 0.1)
        counted = tf.cond(count_it, lambda: tf.assign_add(steps, 1), lambda: steps + 0)
        with tf.control_dependencies([update, counted]):
            return tf.identity(batch)
    m = tf.cond(training, train, lambda: tf.identity(mean))
    feed = {x: [[1.0, 2.0], [3.0, 4.0]]}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for _ in range(3):
            np.testing.assert_allclose(sess.run(m, feed), [2.0, 3.0])
        sess.run(m, {**feed, count_it: False})
        want = (1 - 0.9 ** 4) * np.array([2.0, 3.0])
        np.testing.assert_allclose(sess.run(m, {x: [[0.0, 0.0]], training: False}), want,
                                   rtol=1e-6)
        assert sess.run(steps) == 3


@pytest.mark.parametrize("optimizer,want", [("GradientDescentOptimizer", 2.4),
                                             ("MomentumOptimizer", 2.4), ("AdamOptimizer", 2.9)])
def test_training_step_under_a_cond_returns_an_op_and_trains_only_when_taken(optimizer, want):
    """`tf.cond(p, lambda: opt.minimize(loss), tf.no_op)`: branches may return operations
    (the cond is then an operation), gradients of outer tensors are built outside the
    branch, and slot variables are created in the program's graph."""
    w = tf.Variable(3.0, name="w")
    p = tf.placeholder(tf.bool, [], name="p")
    loss = w * w
    args = (0.1, 0.9) if optimizer == "MomentumOptimizer" else (0.1,)
    step = tf.cond(p, lambda: getattr(tf.train, optimizer)(*args).minimize(loss), tf.no_op)
    assert isinstance(step, tf.Operation)
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        sess.run(step, {p: False})
        assert sess.run(w) == 3.0
        sess.run(step, {p: True})
        np.testing.assert_allclose(sess.run(w), want, rtol=1e-5)


def test_gradients_inside_a_branch_of_inner_and_outer_tensors():
    w = tf.Variable(3.0, name="w")
    p = tf.placeholder(tf.bool, [], name="p")
    outer_loss = w * w

    def branch():
        inner_loss = tf.sin(w) * 2.0
        return tf.gradients(outer_loss, w)[0] + tf.gradients(inner_loss, w)[0]
    g = tf.cond(p, branch, lambda: tf.constant(0.0))
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        np.testing.assert_allclose(sess.run(g, {p: True}), 6.0 + 2.0 * np.cos(3.0), rtol=1e-5)
        assert sess.run(g, {p: False}) == 0.0


def test_random_ops_in_a_loop_body_draw_new_numbers_every_iteration():
    """As in TF1: each iteration (and each run) draws its own numbers, the same on every
    backend for a seed; nested loops and map_fn too."""
    tf.set_random_seed(3)

    def grow(i, acc):
        return i + 1, tf.concat([acc, tf.random_uniform([4])], 0)
    _, rows = tf.while_loop(lambda i, acc: i < 3, grow, [0, tf.zeros([0])],
                            shape_invariants=[tf.TensorShape([]), tf.TensorShape([None])])
    noise = tf.map_fn(lambda r: r + tf.random_normal([3]), tf.zeros([4, 3]))

    def outer(j, total):
        inner = tf.while_loop(lambda k, t: k < 2, lambda k, t: (k + 1, t + tf.random_uniform([])),
                              [0, tf.constant(0.0)])[1]
        return j + 1, tf.concat([total, [inner]], 0)
    _, nested = tf.while_loop(lambda j, t: j < 3, outer, [0, tf.zeros([0])],
                              shape_invariants=[tf.TensorShape([]), tf.TensorShape([None])])
    with tf.Session() as sess:
        first, mapped, sums = sess.run([rows, noise, nested])
        second = sess.run(rows)
    assert len(set(np.round(first, 6))) == 12 and not np.allclose(first, second)
    assert len({tuple(np.round(r, 6)) for r in mapped}) == 4
    assert len(set(np.round(sums, 6))) == 3
    with tf.Session(backend="eager") as eager:
        np.testing.assert_allclose(eager.run(rows), first, rtol=1e-6)


def test_random_loop_conditions_bare_single_variables_and_alike_bodies():
    """A random condition stops a loop after a random number of iterations; a body given
    one loop variable in a list may return it bare; two alike branches or loop bodies with
    a graph seed draw different numbers (op seeds count the program's ops, as TF1)."""
    tf.set_random_seed(7)
    counts = tf.while_loop(lambda i: tf.random_uniform([]) < 0.8, lambda i: i + 1,
                           [tf.constant(0)], maximum_iterations=1000)
    bare = tf.while_loop(lambda i: i < 3.0, lambda i: i + tf.random_uniform([]) * 0.0 + 1.0,
                         [tf.constant(0.0)])
    p = tf.placeholder_with_default(True, [])
    twins = [tf.cond(p, lambda: tf.random_uniform([2]), lambda: tf.zeros([2]))
             for _ in range(2)]
    with tf.Session() as sess:
        trips = [sess.run(counts) for _ in range(12)]
        assert sess.run(bare) == 3.0
        first, second = sess.run(twins)
    assert len(set(trips)) > 2 and max(trips) < 1000, trips
    assert not np.allclose(first, second)


def test_control_dependencies_inside_a_branch_run_with_their_branch_only():
    calls = []
    x = tf.placeholder(tf.float32, [3], name="x")
    p = tf.placeholder(tf.bool, [], name="p")

    def logged():
        record = tf.py_func(lambda a: calls.append(a.sum()) or np.int64(len(calls)), [x],
                            tf.int64)
        with tf.control_dependencies([record]):
            return tf.identity(x * 2.0)

    def checked():
        with tf.control_dependencies([tf.Assert(tf.reduce_all(x > 0), ["x must be > 0"])]):
            return x + 1.0

    y = tf.cond(p, logged, checked)
    with tf.Session() as sess:
        np.testing.assert_allclose(sess.run(y, {x: [1, 2, 3], p: True}), [2, 4, 6])
        np.testing.assert_allclose(sess.run(y, {x: [1, 2, 3], p: False}), [2, 3, 4])
        assert calls == [6.0]  # the py_func ran with its branch only
        with pytest.raises(errors.InvalidArgumentError, match="x must be > 0"):
            sess.run(y, {x: [-1, 2, 3], p: False})
        np.testing.assert_allclose(sess.run(y, {x: [-1, 2, 3], p: True}), [-2, 4, 6])


def test_dropout_under_an_is_training_cond():
    x = tf.placeholder(tf.float32, [4, 8], name="x")
    is_training = tf.placeholder_with_default(False, [], name="is_training")
    y = tf.cond(is_training, lambda: tf.nn.dropout(x, keep_prob=0.5, seed=3), lambda: x)
    ones = np.ones((4, 8), np.float32)
    with tf.Session() as sess:
        np.testing.assert_array_equal(sess.run(y, {x: ones}), ones)
        dropped = sess.run(y, {x: ones, is_training: True})
    assert set(np.unique(dropped)) <= {0.0, 2.0} and 0 < (dropped == 0).sum() < 32


# -- tf.case --------------------------------------------------------------------------------
def test_case_takes_the_first_true_predicate_else_the_default():
    n = tf.placeholder(tf.int32, [], name="n")
    x = tf.constant([1.0, 2.0])
    y = tf.case([(n < 0, lambda: -x), (n < 10, lambda: x * 10.0)], default=lambda: x * 0.0)
    with tf.Session() as sess:
        for value, want in ((-5, [-1, -2]), (3, [10, 20]), (50, [0, 0])):
            np.testing.assert_allclose(sess.run(y, {n: value}), want)


def test_case_exclusive_fails_the_run_when_two_predicates_hold():
    n = tf.placeholder(tf.int32, [], name="n")
    y = tf.case({n < 5: lambda: tf.constant(1), n < 10: lambda: tf.constant(2)},
                default=lambda: tf.constant(3), exclusive=True)
    with tf.Session() as sess:
        assert sess.run(y, {n: 7}) == 2
        assert sess.run(y, {n: 70}) == 3
        with pytest.raises(errors.InvalidArgumentError, match="more than 1 conditions"):
            sess.run(y, {n: 1})


# -- tf.while_loop --------------------------------------------------------------------------
def test_while_loop_with_a_counter_and_a_tensor():
    x = tf.placeholder(tf.float32, [3], name="x")
    i, y = tf.while_loop(lambda i, y: i < 5, lambda i, y: (i + 1, y * 1.5 + 1.0),
                         [tf.constant(0), x])
    want = X[0].copy()
    for _ in range(5):
        want = want * 1.5 + 1
    with tf.Session() as sess:
        got_i, got_y = sess.run([i, y], {x: X[0]})
    assert got_i == 5
    np.testing.assert_allclose(got_y, want, rtol=1e-6)


def test_while_loop_on_data_stops_when_its_condition_fails():
    x = tf.placeholder(tf.float32, [], name="x")
    y = tf.while_loop(lambda v: v < 100.0, lambda v: v * 3.0, [x])
    capped = tf.while_loop(lambda v: v < 100.0, lambda v: v * 3.0, [x], maximum_iterations=2)
    limit = tf.placeholder(tf.int32, [], name="limit")
    counted = tf.while_loop(lambda v: v < 100.0, lambda v: v * 3.0, [x],
                            maximum_iterations=limit)
    with tf.Session() as sess:
        assert sess.run(y, {x: 2.0}) == 162.0
        assert sess.run(capped, {x: 2.0}) == 18.0
        assert sess.run(counted, {x: 2.0, limit: 3}) == 54.0
        assert sess.run(counted, {x: 2.0, limit: 0}) == 2.0


Pair = collections.namedtuple("Pair", ["total", "count"])


def test_while_loop_vars_nest_lists_tuples_namedtuples_and_dicts():
    x = tf.placeholder(tf.float32, [3], name="x")

    def body(i, state):
        pair, extra = state["pair"], state["extra"]
        return i + 1, {"pair": Pair(pair.total + x, pair.count + 1), "extra": [extra[0] * 2.0]}

    loop_vars = (0, {"pair": Pair(tf.zeros([3]), tf.constant(0)), "extra": [tf.constant(1.0)]})
    i, state = tf.while_loop(lambda i, state: i < 4, body, loop_vars)
    assert isinstance(state["pair"], Pair) and isinstance(state["extra"], list)
    with tf.Session() as sess:
        got = sess.run(state, {x: X[0]})
    np.testing.assert_allclose(got["pair"].total, 4 * X[0])
    assert got["pair"].count == 4 and got["extra"][0] == 16.0


def test_shape_invariants_let_a_loop_variable_grow():
    x = tf.placeholder(tf.float32, [1, 3], name="x")
    grow = lambda i, acc: (i + 1, tf.concat([acc, acc[-1:] + 1.0], 0))  # noqa: E731
    with pytest.raises(ValueError, match=r"enters the loop with shape \(1, 3\), but has shape "
                                         r"\(2, 3\) after one iteration.*shape_invariants"):
        tf.while_loop(lambda i, acc: i < 3, grow, [0, x])
    _, acc = tf.while_loop(lambda i, acc: i < 3, grow, [0, x],
                           shape_invariants=[tf.TensorShape([]), [None, 3]])
    assert acc.shape.as_list() == [None, 3]
    with tf.Session() as sess:
        got = sess.run(acc, {x: X[:1]})
    np.testing.assert_allclose(got, X[:1] + np.arange(4, dtype=np.float32)[:, None])
    with pytest.raises(ValueError, match="not compatible with the initial shape"):
        tf.while_loop(lambda i, acc: i < 3, grow, [0, x],
                      shape_invariants=[tf.TensorShape([]), tf.TensorShape([None, 4])])


def test_while_body_returning_other_structures_or_dtypes_is_an_error():
    with pytest.raises(ValueError, match="body must return the structure of loop_vars"):
        tf.while_loop(lambda i, x: i < 3, lambda i, x: i + 1, [0, tf.constant(1.0)])
    with pytest.raises(TypeError, match="enters the loop as int32, but body returns float32"):
        tf.while_loop(lambda i: i < 3, lambda i: tf.cast(i, tf.float32), [0])
    with pytest.raises(TypeError, match="cond must return a bool scalar"):
        tf.while_loop(lambda i: i, lambda i: i + 1, [0])


# -- map_fn / foldl / foldr / scan ------------------------------------------------------------
def test_map_fn_fold_and_scan_against_numpy():
    x = tf.placeholder(tf.float32, [None, 3], name="x")
    mapped = tf.map_fn(lambda r: tf.reduce_sum(r * r), x)
    pairs = tf.map_fn(lambda rs: (rs[0] * 2.0, rs[1][0]), (x, x + 1.0))
    left = tf.foldl(lambda a, r: a * 0.5 + r, x)
    right = tf.foldr(lambda a, r: a * 0.5 + r, x, initializer=tf.zeros([3]))
    running = tf.scan(lambda a, r: a + r, x)
    backwards = tf.scan(lambda a, r: a * 0.5 + r, x, initializer=tf.ones([3]), reverse=True)
    rows = np.concatenate([X, X * 2.0])
    with tf.Session() as sess:
        got = sess.run([mapped, pairs, left, right, running, backwards], {x: rows})
    np.testing.assert_allclose(got[0], (rows * rows).sum(1), rtol=1e-6)
    np.testing.assert_allclose(got[1][0], rows * 2.0)
    np.testing.assert_allclose(got[1][1], rows[:, 0] + 1.0)
    a = rows[0]
    for r in rows[1:]:
        a = a * 0.5 + r
    np.testing.assert_allclose(got[2], a, rtol=1e-6)
    a = np.zeros(3)
    for r in rows[::-1]:
        a = a * 0.5 + r
    np.testing.assert_allclose(got[3], a, rtol=1e-6)
    np.testing.assert_allclose(got[4], np.cumsum(rows, 0), rtol=1e-6)
    a, want = np.ones(3), []
    for r in rows[::-1]:
        a = a * 0.5 + r
        want.append(a)
    np.testing.assert_allclose(got[5], want[::-1], rtol=1e-6)


# -- the IR -----------------------------------------------------------------------------------
def test_cond_and_while_regions_print_parse_and_verify_nested():
    x = tf.placeholder(tf.float32, [3], name="x")
    p = tf.placeholder(tf.bool, [], name="p")
    n = tf.placeholder(tf.int32, [], name="n")

    def body(i, y):
        return i + 1, tf.cond(p, lambda: y * 2.0, lambda: tf.while_loop(
            lambda z: tf.reduce_sum(z) < 10.0, lambda z: z + 1.0, [y], maximum_iterations=3))

    _, y = tf.while_loop(lambda i, y: i < n, body, [0, x])
    z = tf.case([(n > 2, lambda: y), (n > 1, lambda: -y)], default=lambda: y * 0.0)
    feeds = {x: X[0], p: False, n: 3}
    func, optimized = _optimized([y, z], feeds)
    for f in (func, optimized):
        text = _roundtrip(f)
        assert text.count(" = while ") == 2 and text.count(" = cond ") == 2
        assert "{max_iterations=3}" in text
    assert "} {" in text and "^(" in text
    want = evaluate(func, _inputs(func, feeds))
    for got, expected in zip(evaluate(optimized, _inputs(optimized, feeds)), want):
        np.testing.assert_allclose(got, expected)
    with tf.Session() as sess:
        for got, expected in zip(sess.run([y, z], feeds), want):
            np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_verifier_rejects_regions_that_are_not_closed_or_do_not_match():
    x = tf.placeholder(tf.float32, [3], name="x")
    p = tf.placeholder(tf.bool, [], name="p")
    y = tf.cond(p, lambda: x + 1.0, lambda: tf.square(x))
    func = lower([y], feed_types={x: TensorType(tf.float32, (3,)),
                                  p: TensorType(tf.bool, ())})
    text = _roundtrip(func)
    assert "square %cond.captured_1" in text
    with pytest.raises(AssertionError, match="uses a value not defined before it"):
        verify(parse_func(text.replace("square %cond.captured_1", "square %x")))  # not closed
    (cond,) = [i for i in func.body if i.op == "cond"]
    int_branch = lower([tf.cond(p, lambda: tf.constant([1, 2, 3]), lambda: tf.constant(
        [4, 5, 6]))], feed_types={p: TensorType(tf.bool, ())}).body[-1].regions[0]
    wrong = cond.with_regions([cond.regions[0], int_branch.replace(params=cond.regions[1].params)])
    with pytest.raises(AssertionError, match=r"branch 1 yields \['i32\[3\]'\]"):
        verify(func.replace(body=[wrong if i is cond else i for i in func.body]))


def test_constant_predicates_fold_to_the_taken_branch():
    x = tf.placeholder(tf.float32, [3], name="x")
    y = tf.cond(tf.constant(True), lambda: x * 2.0, lambda: x - 1.0)
    index = tf.constant(7)  # out of range: the default
    z = tf.case([(tf.equal(index, 0), lambda: x)], default=lambda: x + 3.0)
    feeds = {x: X[0]}
    func, optimized = _optimized([y, z], feeds)
    assert " cond " in print_func(func) and " cond " not in print_func(optimized)
    for got, want in zip(evaluate(optimized, [X[0]]), [X[0] * 2, X[0] + 3]):
        np.testing.assert_allclose(got, want)


def test_passes_run_inside_regions_and_keep_effects():
    x = tf.placeholder(tf.float32, [64], name="x")
    p = tf.placeholder(tf.bool, [], name="p")

    def branch():
        unused = tf.exp(x) * 3.0  # noqa: F841 - dead code in the branch
        shown = tf.Print(x, [x], "x=")
        return tf.nn.relu(shown * 2.0 + 1.0) * (tf.constant(2.0) * 3.0)

    y = tf.cond(p, branch, lambda: x)
    func, optimized = _optimized([y], {x: X[0].repeat(22)[:64], p: True})
    (instr,) = [i for i in optimized.body if i.op == "cond"]
    taken = [i.op for i in instr.regions[0].body]
    assert "exp" not in taken and "print" in taken  # dead code gone, the effect kept
    assert "fusion" in taken  # fusion runs inside branches
    assert instr.has_effects


def test_llvm_runs_each_region_as_its_own_executable():
    x = tf.placeholder(tf.float32, [2, 3], name="x")
    p = tf.placeholder(tf.bool, [], name="p")
    i, y = tf.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, tf.tanh(y) * 2.0 + 1.0),
                         [0, x])
    z = tf.cond(p, lambda: tf.matmul(y, y, transpose_b=True), lambda: tf.zeros([2, 2]))
    feeds = {x: X, p: True}
    _, optimized = _optimized([y, z], feeds)
    run, stats = cpu.build(optimized)
    assert stats["control_flow"] == 2 and stats["native"] >= 3  # kernels inside the regions
    inputs = _inputs(optimized, feeds)
    for got, want in zip(run(inputs), evaluate(optimized, inputs)):
        np.testing.assert_allclose(got, want, rtol=1e-5)


# -- gradients ----------------------------------------------------------------------------------
V = np.array([0.5, -1.0, 2.0])


@pytest.mark.parametrize("flag", [True, False])
def test_gradient_through_cond_is_a_cond_over_branch_gradients(flag):
    def build(x, w):
        p = tf.placeholder_with_default(flag, [])
        return tf.cond(p, lambda: tf.sin(x) * w, lambda: (tf.exp(x), w * w)[0] + w)
    check_gradients(build, V, V[::-1].copy())


def test_gradient_through_case_and_nested_cond():
    def build(x):
        n = tf.placeholder_with_default(1, [])
        inner = lambda: tf.cond(tf.reduce_sum(x) > 0.0, lambda: x * x, lambda: -x)  # noqa
        return tf.case([(n < 1, lambda: tf.sin(x)), (n < 2, inner)], default=lambda: x)
    check_gradients(build, V)


def test_gradient_through_while_with_a_static_trip_count_and_with_maximum_iterations():
    check_gradients(lambda x: tf.while_loop(lambda i, s: i < 4,
                                            lambda i, s: (i + 1, tf.sin(s) * 1.5), [0, x])[1], V)
    check_gradients(lambda x: tf.while_loop(lambda s: tf.reduce_sum(s) < 30.0,
                                            lambda s: s * 1.7, [x], maximum_iterations=10), V)


def test_gradient_through_map_fn_scan_and_folds():
    check_gradients(lambda x: tf.map_fn(lambda r: tf.sin(r) * r, x), V)
    check_gradients(lambda x: tf.scan(lambda a, r: a * r + 1.0, x), V)
    check_gradients(lambda x: tf.foldl(lambda a, r: a * tf.cos(r), x,
                                       initializer=tf.constant(1.0, tf.float64)), V)


def test_gradient_of_a_loop_whose_trip_count_depends_on_data():
    # sum(s) < 30 stops after a number of steps that depends on x (not on shapes): the
    # backward loop recomputes each iteration's state (ops/control_flow_grad.py)
    check_gradients(lambda x: tf.while_loop(lambda s: tf.reduce_sum(s) < 30.0,
                                            lambda s: tf.sin(s) + s * 1.7, [x]), V)
    # a counter bounded by a fed value, an invariant that gets a gradient, and an int
    # loop variable that gets none
    def build(x, w):
        n = tf.placeholder_with_default(4, [])
        return tf.while_loop(lambda i, s: i < n, lambda i, s: (i + 1, s * w + tf.cos(s)),
                             [0, x])[1]
    check_gradients(build, V, V[::-1].copy())
    # a bound too large to unroll: the loop's gradient rule, which keeps the bound
    check_gradients(lambda x: tf.while_loop(lambda s: tf.reduce_sum(s) < 30.0,
                                            lambda s: s * 1.7 + 0.1, [x],
                                            maximum_iterations=100000), V)


def test_gradient_of_a_data_dependent_loop_that_runs_zero_times_or_changes_shapes():
    x = tf.placeholder(tf.float32, [3], name="x")
    y = tf.while_loop(lambda s: tf.reduce_sum(s) < 30.0, lambda s: s * 1.7, [x], name="grow")
    (g,) = tf.gradients(tf.reduce_sum(y * [1.0, 2.0, 3.0]), x)
    with tf.Session() as sess:  # already past the bound: the loop is the identity
        np.testing.assert_allclose(sess.run(g, {x: [40.0, 0.0, 0.0]}), [1.0, 2.0, 3.0])
    z = tf.while_loop(lambda s: tf.reduce_sum(s) < 30.0, lambda s: tf.concat([s, s], 0),
                      [x], shape_invariants=[tf.TensorShape([None])], name="widen")
    (gz,) = tf.gradients(tf.reduce_sum(z), x)
    with tf.Session() as sess:  # (the sum of the loop's f32[?] result is the first to fail)
        with pytest.raises(errors.UnimplementedError, match="change shape|fully known shape"):
            sess.run(gz, {x: V})
