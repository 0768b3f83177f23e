"""The LLVM backend against the eager interpreter, and the safety of native calls."""
import gc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowjit as tf
from flowjit import errors
from flowjit.codegen import schedule
from flowjit.compiler import CompileOptions, optimize
from flowjit.ir.core import TensorType
from flowjit.lower import lower
from flowjit.runtime import cpu

from test_passes import _build, programs


def run_both(fetches, feed):
    with tf.Session(backend="eager") as eager, tf.Session(backend="llvm") as native:
        return eager.run(fetches, feed), native.run(fetches, feed)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs(), st.integers(0, 2 ** 31 - 1))
def test_random_graphs_compile_to_what_the_interpreter_computes(steps, seed):
    with tf.Graph().as_default():
        x, v, outputs = _build(steps)
        rng = np.random.default_rng(seed)
        feed = {x: rng.standard_normal((3, 4)).astype(np.float32),
                v: rng.standard_normal(4).astype(np.float32)}
        reference, compiled = run_both(outputs, feed)
        for ref, got in zip(reference, compiled):
            # float32; sums may be reassociated by the vectorizer
            np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64, tf.int32, tf.int64, tf.uint8])
def test_elementwise_reduce_and_compare_per_dtype(dtype):
    a = tf.placeholder(dtype, [3, 5])
    b = tf.placeholder(dtype, [5])
    out = [a + b, a * b - a, tf.maximum(a, b), tf.reduce_sum(a, 0), tf.reduce_max(a, 1),
           tf.cast(a < b, tf.int32), tf.abs(a), tf.square(a)]
    rng = np.random.default_rng(1)
    if dtype is tf.uint8:  # values above 127 catch signed comparisons
        feed = {a: rng.integers(0, 256, (3, 5)).astype(np.uint8),
                b: rng.integers(0, 256, 5).astype(np.uint8)}
    else:
        feed = {a: (rng.standard_normal((3, 5)) * 10).astype(dtype.np_dtype),
                b: (rng.standard_normal(5) * 10).astype(dtype.np_dtype)}
    out += [tf.sign(a), tf.minimum(a, b), tf.reduce_min(a)] if dtype is not tf.uint8 else \
        [tf.sign(a), tf.minimum(a, b), tf.reduce_min(a), tf.nn.relu(a)]
    reference, compiled = run_both(out, feed)
    for ref, got in zip(reference, compiled):
        assert got.dtype == ref.dtype
        np.testing.assert_allclose(got, ref, rtol=1e-6)


@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_and_its_epilogue(ta, tb):
    rng = np.random.default_rng(2)
    a = rng.standard_normal((5, 7) if not ta else (7, 5)).astype(np.float32)
    b = rng.standard_normal((7, 3) if not tb else (3, 7)).astype(np.float32)
    pa, pb = tf.placeholder(tf.float32, a.shape), tf.placeholder(tf.float32, b.shape)
    bias = tf.constant(rng.standard_normal(3).astype(np.float32))
    y = tf.nn.relu(tf.matmul(pa, pb, transpose_a=ta, transpose_b=tb) + bias)
    reference, compiled = run_both([y], {pa: a, pb: b})
    np.testing.assert_allclose(compiled[0], reference[0], rtol=1e-5, atol=1e-6)


def test_special_values_match_numpy():
    x = tf.placeholder(tf.float32, [6])
    values = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40], np.float32)
    out = [tf.maximum(x, 0.0), tf.minimum(x, 0.0), tf.nn.relu(x), tf.nn.relu6(x),
           tf.nn.elu(x), tf.sign(x), tf.exp(x), tf.sigmoid(x), tf.reduce_max(x), x / 0.0,
           tf.cast(tf.not_equal(x, x), tf.int32)]
    reference, compiled = run_both(out, {x: values})
    for ref, got in zip(reference, compiled):
        np.testing.assert_array_equal(got, ref)
        real = ~np.isnan(ref)  # (the sign of a NaN means nothing)
        np.testing.assert_array_equal(np.signbit(got[real]), np.signbit(ref[real]))


def test_the_training_step_is_mostly_native():
    x = tf.placeholder(tf.float32, [8, 20], name="x")
    y = tf.placeholder(tf.int32, [8], name="y")
    w = tf.Variable(np.ones((20, 5), np.float32) * 0.1)
    b = tf.Variable(np.zeros(5, np.float32))
    h = tf.nn.relu(tf.matmul(x, w) + b)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=h))
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    func = optimize(lower([loss], [train], {x: TensorType(tf.float32, (8, 20)),
                                            y: TensorType(tf.int32, (8,))}), CompileOptions())
    _, stats = cpu.build(func)
    kinds = {schedule.kernel_kind(i) for i in func.body}
    assert {"elementwise", "reduce", "contraction"} <= kinds
    assert stats["native"] >= 3 * stats["numpy"]


def test_a_native_kernel_refuses_a_buffer_of_the_wrong_shape():
    x = tf.placeholder(tf.float32, [4], name="x")
    func = optimize(lower([tf.exp(x) * 2.0], [], {x: TensorType(tf.float32, (4,))}),
                    CompileOptions())
    run, stats = cpu.build(func)
    assert stats["native"] == 1
    np.testing.assert_allclose(run([np.ones(4, np.float32)])[0], 2 * np.e, rtol=1e-6)
    with pytest.raises(errors.InternalError, match="compiled for float32\\[4\\]"):
        run([np.ones(1 << 20, np.float32)])  # would overrun the output if it got through
    with pytest.raises(errors.InternalError):
        run([np.ones(4, np.float64)])


def test_a_new_batch_size_recompiles_and_both_stay_correct():
    x = tf.placeholder(tf.float32, [None, 3])
    y = tf.reduce_sum(tf.tanh(x) * 2.0, axis=1)
    with tf.Session(backend="llvm") as sess:
        for n in (2, 5, 2):
            data = np.arange(n * 3, dtype=np.float32).reshape(n, 3) / 7
            np.testing.assert_allclose(sess.run(y, {x: data}),
                                       (np.tanh(data) * 2).sum(1), rtol=1e-5)
        assert len(sess._executables) == 2


def test_first_divergence_agrees_on_a_training_step_and_pinpoints_a_broken_kernel():
    from flowjit import debug
    from flowjit.codegen import scalar
    x = tf.placeholder(tf.float32, [4, 6], name="x")
    w = tf.Variable(np.linspace(-1, 1, 18, dtype=np.float32).reshape(6, 3), name="w")
    h = tf.tanh(tf.matmul(x, w), name="hidden")
    loss = tf.reduce_sum(tf.square(h - 0.5), name="loss")
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    feed = {x: np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        assert debug.first_divergence(sess, [loss, train], feed) is None
        before = sess.run(w)
        original = scalar.EMITTERS["square"]
        scalar.EMITTERS["square"] = lambda c, a: c.b.fadd(a[0], a[0])  # a wrong kernel
        try:
            from flowjit.codegen.target import cpu_target
            cpu_target()._cache.clear()
            report = debug.first_divergence(sess, loss, feed)
        finally:
            scalar.EMITTERS["square"] = original
            cpu_target()._cache.clear()
        np.testing.assert_array_equal(sess.run(w), before)  # nothing was updated
    assert report is not None and "'loss' (op: 'Sum'" in str(report)
    assert 'kind="reduce"' in report.ir_line and report.max_abs_error > 1


def test_disk_cache_round_trip_and_corruption(tmp_path):
    from flowjit.codegen.target import DiskCache
    cache = DiskCache(str(tmp_path))
    assert cache.load("k") is None
    cache.store("k", b"\x7fELF object bytes")
    assert cache.load("k") == b"\x7fELF object bytes"
    path = tmp_path / "kernels" / "k.o"
    path.write_bytes(path.read_bytes()[:-3])  # truncated by a crash
    assert cache.load("k") is None
    assert DiskCache(None).load("k") is None


def test_a_new_process_uses_the_disk_cache(tmp_path):
    import os
    import subprocess
    import sys
    code = ("import numpy as np, flowjit as tf\n"
            "x = tf.placeholder(tf.float32, [64])\n"
            "y = tf.reduce_sum(tf.tanh(x) * 3.0 + x)\n"
            "with tf.Session() as s: print(s.run(y, {x: np.linspace(-1, 1, 64)}))\n")
    env = dict(os.environ, FLOWJIT_CACHE_DIR=str(tmp_path), FLOWJIT_BACKEND="llvm")
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, check=True).stdout
    files = sorted(p.name for p in (tmp_path / "kernels").iterdir())
    assert files
    (tmp_path / "kernels" / files[0]).write_bytes(b"garbage")  # a corrupt entry
    second = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True).stdout
    assert first == second
    assert sorted(p.name for p in (tmp_path / "kernels").iterdir()) == files  # rebuilt


def test_a_warm_disk_cache_skips_code_generation(tmp_path):
    """The cache is keyed by the optimized IR of the kernels (and the GEMM core by its
    blocking): a process that finds them on disk generates no LLVM IR at all, and has LLVM
    optimize none."""
    import os
    import subprocess
    import sys
    code = ("import sys, numpy as np, flowjit as tf\n"
            "from flowjit.codegen import gemm_core, kernels, segment, target\n"
            "if sys.argv[1] == 'warm':\n"
            "    def refuse(*a, **k): raise AssertionError('generated code on a warm start')\n"
            "    kernels.emit_kernel = gemm_core.emit_core = segment.emit_segment = refuse\n"
            "    target.CPUTarget.optimize = refuse\n"
            "x = tf.placeholder(tf.float32, [40, 30])\n"
            "w = tf.Variable(np.ones((30, 20), np.float32))\n"
            "h = tf.nn.relu(tf.matmul(x, w) + 1.0)\n"
            "loss = tf.reduce_mean(tf.nn.softmax(h) * h)\n"
            "train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)\n"
            "with tf.Session() as s:\n"
            "    s.run(tf.global_variables_initializer())\n"
            "    print(s.run([loss, train], {x: np.linspace(-1, 1, 1200).reshape(40, 30)})[0])\n")
    env = dict(os.environ, FLOWJIT_CACHE_DIR=str(tmp_path), FLOWJIT_BACKEND="llvm")
    cold = subprocess.run([sys.executable, "-c", code, "cold"], env=env, capture_output=True,
                          text=True, check=True).stdout
    warm = subprocess.run([sys.executable, "-c", code, "warm"], env=env, capture_output=True,
                          text=True)
    assert warm.returncode == 0, warm.stderr[-2000:]
    assert warm.stdout == cold


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_rowwise_kernels_match_the_interpreter(dtype):
    rng = np.random.default_rng(5)
    logits = (rng.standard_normal((7, 11)) * 30).astype(dtype.np_dtype)  # large: stability
    dense = rng.dirichlet(np.ones(11), size=7).astype(dtype.np_dtype)
    sparse = rng.integers(0, 11, 7).astype(np.int32)
    z = tf.placeholder(dtype, [7, 11])
    outs = [tf.nn.softmax(z), tf.nn.log_softmax(z),
            tf.nn.softmax_cross_entropy_with_logits_v2(labels=dense, logits=z),
            tf.nn.sparse_softmax_cross_entropy_with_logits(labels=sparse, logits=z),
            tf.nn.softmax(tf.reshape(z, [7, 11, 1]) * 1.0, axis=1)]
    outs += tf.gradients(outs[3], z)
    reference, compiled = run_both(outs, {z: logits})
    for ref, got in zip(reference, compiled):
        np.testing.assert_allclose(got, ref, rtol=2e-5 if dtype is tf.float32 else 1e-12,
                                   atol=1e-6 if dtype is tf.float32 else 1e-12)


def test_native_sparse_cross_entropy_checks_its_labels():
    logits = tf.zeros([2, 10])
    labels = tf.placeholder(tf.int32, [2])
    loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
    with tf.Session(backend="llvm") as sess:
        with pytest.raises(errors.InvalidArgumentError, match="label value of 10"):
            sess.run(loss, {labels: [1, 10]})


@pytest.mark.parametrize("dtype", [tf.float32, tf.int64, tf.bool])
def test_layout_kernels_copy_exactly(dtype):
    rng = np.random.default_rng(6)
    data = rng.standard_normal((4, 5, 6)) * 10
    data = data.astype(dtype.np_dtype) if dtype is not tf.bool else data > 0
    x = tf.placeholder(dtype, [4, 5, 6])
    idx = tf.constant([[3, 0], [0, 2]], tf.int32)
    outs = [tf.transpose(x, [2, 0, 1]), tf.transpose(x), x[1:, ::-2, None, 3], x[..., 1:4],
            x[-1], tf.slice(x, [1, 2, 0], [2, -1, 3]), tf.broadcast_to(x[:, :1, :], [4, 5, 6]),
            tf.gather(x, idx), tf.gather(x, [5, 0, 5], axis=2), tf.concat([x, x[:, :2], x], 1),
            x[:, 0:0]]
    reference, compiled = run_both(outs, {x: data})
    for ref, got in zip(reference, compiled):
        assert got.dtype == ref.dtype and got.shape == ref.shape
        np.testing.assert_array_equal(got, ref)


def test_layout_ops_are_native_and_gather_checks_its_indices():
    x = tf.placeholder(tf.float32, [4, 3], name="x")
    i = tf.placeholder(tf.int32, [2], name="i")
    ops = [tf.transpose(x), x[::-1], tf.gather(x, i), tf.concat([x, x], 0)]
    func = optimize(lower(ops, [], {x: TensorType(tf.float32, (4, 3)),
                                    i: TensorType(tf.int32, (2,))}), CompileOptions())
    assert [schedule.kernel_kind(instr) for instr in func.body] == \
        ["copy", "copy", "gather", "concat"]
    with tf.Session(backend="llvm") as sess:
        with pytest.raises(errors.InvalidArgumentError, match=r"indices\[1\] = 4 is not in"):
            sess.run(ops[2], {x: np.zeros((4, 3), np.float32), i: [0, 4]})


def test_an_empty_batch_runs_natively():
    x = tf.placeholder(tf.float32, [None, 3])
    w = tf.constant(np.ones((3, 4), np.float32))
    outs = [x + 1.0, tf.exp(x), tf.nn.softmax(x), tf.matmul(x, w), tf.reduce_sum(x, 0),
            tf.reduce_mean(x, 1), tf.transpose(x)]
    reference, compiled = run_both(outs, {x: np.zeros((0, 3), np.float32)})
    for ref, got in zip(reference, compiled):
        assert got.shape == ref.shape
        np.testing.assert_array_equal(got, ref)


def test_mean_over_an_empty_axis_is_nan():
    x = tf.placeholder(tf.float32, [3, 0])
    reference, compiled = run_both([tf.reduce_mean(x, 1)], {x: np.zeros((3, 0), np.float32)})
    assert np.all(np.isnan(compiled[0])) and np.all(np.isnan(reference[0]))


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (7, 3, 5), (9, 17, 33), (16, 8, 48),
                                   (517, 129, 67)])  # the last is split across cores
def test_gemm_core_on_ragged_shapes(dtype, m, k, n):
    rng = np.random.default_rng(m * n)
    a = rng.standard_normal((m, k)).astype(dtype.np_dtype)
    b = rng.standard_normal((k, n)).astype(dtype.np_dtype)
    pa, pb = tf.placeholder(dtype, [m, k]), tf.placeholder(dtype, [k, n])
    outs = [tf.matmul(pa, pb), tf.matmul(tf.transpose(pa), tf.transpose(pb), transpose_a=True,
                                         transpose_b=True)]
    with tf.Session(backend="llvm") as sess:
        for got in sess.run(outs, {pa: a, pb: b}):
            np.testing.assert_allclose(got, a @ b, rtol=1e-4 if dtype is tf.float32 else 1e-12,
                                       atol=1e-4 if dtype is tf.float32 else 1e-12)


def test_disk_cache_measures_its_directory_rarely(tmp_path, monkeypatch):
    """Listing the cache costs a stat per entry: a process does it at its first store, then
    once its own stores fill a sixteenth of the limit, or its estimate passes the limit."""
    import os
    from flowjit.codegen.target import DiskCache
    listed = []
    real_listdir = os.listdir
    monkeypatch.setattr(os, "listdir", lambda path: listed.append(path) or real_listdir(path))
    cache = DiskCache(str(tmp_path), max_bytes=160_000)
    for i in range(9):  # the first is measured, 8 x 953 bytes after it: under 160,000 / 16
        cache.store(f"k{i}", bytes(900))
    assert len(listed) == 1
    cache.store("big", bytes(2500))  # past a sixteenth since the measure: measured again
    assert len(listed) == 2
    cache.store("k9", bytes(900))
    assert len(listed) == 2
    (tmp_path / "kernels" / "other.o").write_bytes(bytes(200_000))  # another process's
    cache.store("k10", bytes(900))  # not seen yet: the estimate is under the limit
    assert len(listed) == 2 and (tmp_path / "kernels" / "other.o").exists()
    cache.max_bytes = 12_000  # the estimate now passes the limit: measured and trimmed
    cache.store("k11", bytes(900))
    assert len(listed) == 3
    assert sum(p.stat().st_size for p in (tmp_path / "kernels").iterdir()) <= 9_000


def test_disk_cache_stays_under_its_size_limit(tmp_path):
    import os
    import time
    from flowjit.codegen.target import DiskCache
    cache = DiskCache(str(tmp_path))
    for i in range(6):  # k0 oldest ... k5 newest
        cache.store(f"k{i}", bytes(900))
        os.utime(tmp_path / "kernels" / f"k{i}.o", (time.time() - 100 + i,) * 2)
    cache.load("k0")  # used again: becomes the most recent
    cache.max_bytes = 3000
    cache.store("k6", bytes(900))
    kept = sorted(p.name for p in (tmp_path / "kernels").iterdir())
    assert sum(p.stat().st_size for p in (tmp_path / "kernels").iterdir()) <= 3000
    assert "k6.o" in kept and "k0.o" in kept and "k1.o" not in kept


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5000), st.integers(0, 12), st.integers(0, 6)),
                min_size=1, max_size=30))
def test_arena_plan_never_overlaps_live_buffers(items):
    from flowjit.runtime.buffers import ALIGN, plan_arena
    sizes = [size for size, _, _ in items]
    lifetimes = [(first, first + length) for _, first, length in items]
    offsets, total = plan_arena(sizes, lifetimes)
    assert total <= sum(-(-max(s, 1) // ALIGN) * ALIGN for s in sizes)
    for i, (size_i, (first_i, last_i)) in enumerate(zip(sizes, lifetimes)):
        assert offsets[i] % ALIGN == 0 and offsets[i] + size_i <= total
        for j in range(i):
            first_j, last_j = lifetimes[j]
            if first_i <= last_j and first_j <= last_i:  # alive at the same time
                assert offsets[i] + size_i <= offsets[j] or offsets[j] + sizes[j] <= offsets[i]


def test_a_chain_of_kernels_is_one_segment_whose_arena_reuses_dead_values():
    x = tf.placeholder(tf.float32, [256, 64], name="x")
    h = x
    for i in range(6):  # matmuls end fusions, so each layer is its own kernel
        h = tf.nn.relu(tf.matmul(h, tf.constant(np.eye(64, dtype=np.float32) * 0.5)) + i)
    y = tf.reduce_sum(h, axis=1)
    func = optimize(lower([y], [], {x: TensorType(tf.float32, (256, 64))}), CompileOptions())
    run, stats = cpu.build(func)
    assert stats["segments"] == 1 and stats["numpy"] == 0
    layer = 256 * 64 * 4
    packed = 64 * 64 * 4 + 64  # a matmul's packed B (scratch, live during its kernel only)
    # 5 internal layers, 2 live at a time, and one packed B at a time
    assert layer <= stats["arena_bytes"] <= 2 * layer + packed
    data = np.random.default_rng(0).standard_normal((256, 64)).astype(np.float32)
    expected = data
    for i in range(6):
        expected = np.maximum(expected @ (np.eye(64, dtype=np.float32) * 0.5) + i, 0)
    for _ in range(2):  # the second run reuses the arena and the output buffers
        np.testing.assert_allclose(run([data])[0], expected.sum(1), rtol=1e-5)
    with pytest.raises(errors.InternalError, match="compiled for float32\\[256, 64\\]"):
        run([np.ones((512, 64), np.float32)])


_CAST_DTYPES = [tf.float32, tf.float64, tf.int8, tf.int16, tf.int32, tf.int64, tf.uint8,
                tf.bool]


def _cast_sources(dtype, n):
    """Values of `dtype` that probe every conversion's edges: 128..255 (unsigned bytes),
    negatives, fractions, values past the narrow types' ranges, NaN and infinities."""
    floats = [0, 1, -1, 0.5, -0.7, 127, 127.9, 128, 200.7, 255, 255.9, 256, -128, -129,
              300.5, 32767, 32768, -32769, 65535, 1e6, 2.0 ** 31, -2.0 ** 31, 2.0 ** 40,
              -2.0 ** 63, 2.0 ** 63, np.nan, np.inf, -np.inf]
    if dtype.is_floating:
        values = np.array(floats, np.float64)
    elif dtype is tf.bool:
        values = np.array([True, False, True])
    else:
        info = np.iinfo(dtype.np_dtype)
        values = np.array([0, 1, 127, info.max, info.min, info.max // 3, 255 % info.max],
                          np.int64)
    return np.resize(values, max(n, len(values))).astype(dtype.np_dtype)


@pytest.mark.parametrize("n", [3, 37])  # 37: full vector bodies plus a ragged tail
@pytest.mark.parametrize("source", _CAST_DTYPES, ids=lambda d: d.name)
def test_casts_between_every_dtype_pair_match_numpy(source, n):
    x = tf.placeholder(source, [None])
    outputs = [tf.cast(x, target) for target in _CAST_DTYPES]
    value = _cast_sources(source, n)
    with tf.Session(backend="llvm") as sess:  # one kernel per run: each vectorized alone
        got = [sess.run(output, {x: value}) for output in outputs]
    import warnings
    for target, result in zip(_CAST_DTYPES, got):
        with warnings.catch_warnings():  # numpy warns about NaN/overflow; the result stands
            warnings.simplefilter("ignore")
            expected = value.astype(target.np_dtype)
        assert result.dtype == expected.dtype
        np.testing.assert_array_equal(result, expected, err_msg=f"{source.name}->{target.name}")


def test_a_one_by_one_constant_weight_compiles_inside_a_matmul_epilogue():
    x = tf.placeholder(tf.float32, [4, 1])
    y = tf.nn.relu(tf.matmul(x, tf.constant([[2.0]])) + 1)
    feed = {x: np.array([[1.0], [-3.0], [0.5], [2.0]], np.float32)}
    reference, compiled = run_both(y, feed)
    np.testing.assert_allclose(compiled, [[3.0], [0.0], [2.0], [5.0]])
    np.testing.assert_allclose(compiled, reference)


def test_a_size_zero_constant_inside_an_elementwise_fusion_compiles():
    x = tf.placeholder(tf.float32, [0, 3])
    y = tf.exp(x) * tf.constant(np.zeros((0, 3), np.float32)) + 1
    reference, compiled = run_both(y, {x: np.ones((0, 3), np.float32)})
    assert compiled.shape == reference.shape == (0, 3)


@pytest.mark.parametrize("reduce", [tf.reduce_sum, tf.reduce_mean])
def test_float32_sums_of_millions_of_terms_stay_within_a_few_ulps(reduce):
    # 2^22 copies of 0.1 (the same sign: errors cannot cancel), as one full reduction, as
    # row sums and as column sums; the exact answer is computed in float64.
    n = 1 << 22
    x = tf.placeholder(tf.float32, [None])
    value = np.full(n, 0.1, np.float32)
    exact = value.astype(np.float64).sum() / (n if reduce is tf.reduce_mean else 1)
    square = tf.reshape(x, [2048, 2048])
    fetches = [reduce(x), reduce(square, 1), reduce(square, 0)]
    with tf.Session() as sess:
        total, rows, cols = sess.run(fetches, {x: value})
    np.testing.assert_allclose(total, exact, rtol=4e-7)
    per_line = exact / (1 if reduce is tf.reduce_mean else 2048)
    np.testing.assert_allclose(rows, per_line, rtol=4e-7)
    np.testing.assert_allclose(cols, per_line, rtol=4e-7)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy deprecates these setters
@pytest.mark.parametrize("change", ["none", "shape", "dtype", "resize", "strides",
                                    "grow-and-shrink"])
def test_results_changed_in_place_by_the_caller_do_not_leak_into_later_runs(change):
    x = tf.placeholder(tf.float32, [2, 4])
    y = x * 2.0  # one native kernel with pooled output buffers
    update = tf.Variable(tf.zeros([2, 4]))
    step = tf.assign_add(update, y)  # a variable's pool, too
    feed = {x: np.arange(8, dtype=np.float32).reshape(2, 4)}
    with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        addresses = set()
        for _ in range(5):
            result, total = sess.run([y, step], feed)
            assert result.shape == (2, 4) and result.dtype == np.float32
            np.testing.assert_array_equal(result, feed[x] * 2)
            address = result.__array_interface__["data"][0]
            for array in (result, total):
                if change == "grow-and-shrink":  # same metadata, data moved
                    array.resize((1 << 16,), refcheck=False)
                    array.resize((2, 4), refcheck=False)
                elif change == "none":
                    pass
                elif change == "shape":
                    array.shape = (4, 2)
                elif change == "dtype":
                    array.dtype = np.int32
                elif change == "resize":
                    array.resize((2, 2), refcheck=False)
                else:
                    array.strides = (4, 8)
            del result, total
            addresses.add(address)
        np.testing.assert_array_equal(sess.run(update), feed[x] * 10)


def test_a_training_step_writes_new_variable_values_into_the_buffers_of_old_ones():
    """Variables above the small-result size ping-pong between two buffers (the Session
    gives back each value it replaces): steady training allocates no new state arrays,
    and every step's values are still right."""
    x = tf.placeholder(tf.float32, [64, 64])
    w = tf.Variable(tf.zeros([64, 64]))
    step = tf.assign_add(w, x * 0.5)
    feed = {x: np.ones((64, 64), np.float32)}
    with tf.Session(backend="llvm") as sess:
        sess.run(tf.global_variables_initializer())
        addresses = set()
        for i in range(1, 7):
            sess.run(step.op, feed)
            state = sess._state.variables[w._as_graph_element().op]
            addresses.add(state.__array_interface__["data"][0])
            np.testing.assert_array_equal(sess.run(w), np.full((64, 64), 0.5 * i, np.float32))
        assert len(addresses) <= 3, addresses  # (the initializer's array, then a pair)


def test_arrays_a_py_func_keeps_or_returns_are_never_reused_by_later_runs():
    """A py_func may keep its inputs and owns its results: flowjit passes copies of what it
    still owns (variable values) and copies results (a variable set from one does not take
    the user's array, which the buffer pool would later overwrite)."""
    kept = []
    mine = np.full(2000, 7.0, np.float32)
    v = tf.Variable(np.zeros(2000, np.float32))
    look = tf.py_func(lambda x: (kept.append(x), np.float32(0))[1], [v], tf.float32)
    give = tf.py_func(lambda: mine, [], tf.float32)
    give.set_shape([2000])
    set_from_py, inc = v.assign(give), v.assign(v + 1.0)
    with tf.Session(backend="llvm") as sess:
        sess.run(v.initializer)
        sess.run(look)
        sess.run(set_from_py.op)
        for _ in range(4):
            sess.run(inc.op)
        np.testing.assert_array_equal(sess.run(v), np.full(2000, 11.0, np.float32))
    np.testing.assert_array_equal(kept[0], np.zeros(2000, np.float32))
    assert mine.flags.writeable and (mine == 7.0).all()


def test_a_disk_cache_shared_with_a_host_of_other_cache_sizes_is_not_reused(tmp_path):
    """The GEMM's blocks follow the data caches and kernels call the core by a name that
    says them: the key includes the cache sizes, so another machine's kernels (same CPU
    model) are not loaded (they called a core this process never made: a crash)."""
    import os
    import subprocess
    import sys
    code = ("import os, numpy as np\n"
            "import flowjit.codegen.target as T\n"
            "if os.environ.get('SMALL_CACHES'):\n"
            "    real = T.host_cache_bytes\n"
            "    T.host_cache_bytes = lambda: {**real(), 1: 16 << 10, 2: 512 << 10}\n"
            "import flowjit as tf\n"
            "a = tf.placeholder(tf.float32, [64, 256])\n"
            "y = tf.matmul(a, tf.constant(np.ones((256, 64), np.float32)))\n"
            "with tf.Session(backend='llvm') as s:\n"
            "    print(s.run(y, {a: np.ones((64, 256), np.float32)}).sum())\n")
    env = dict(os.environ, FLOWJIT_CACHE_DIR=str(tmp_path))
    outputs = []
    for small in ("", "1"):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=dict(env, SMALL_CACHES=small))
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(float(done.stdout))
    assert outputs == [64 * 64 * 256.0] * 2


def test_large_fetched_results_are_lent_buffers_that_return_when_dropped():
    """A large fetch is a view of a pool buffer: kept results are never written again, and
    dropped ones give their buffer back (no fresh pages every run)."""
    x = tf.placeholder(tf.float32, [4096])
    y = x * 2.0
    with tf.Session(backend="llvm") as sess:
        kept = [sess.run(y, {x: np.full(4096, float(i), np.float32)}) for i in range(3)]
        for i, result in enumerate(kept):
            np.testing.assert_array_equal(result, np.full(4096, 2.0 * i, np.float32))
            assert result.flags.writeable
        addresses = set()
        for i in range(6):
            result = sess.run(y, {x: np.full(4096, float(i), np.float32)})
            addresses.add(result.__array_interface__["data"][0])
            del result
        assert len(addresses) <= 2, addresses
        for i, result in enumerate(kept):  # (still theirs)
            np.testing.assert_array_equal(result, np.full(4096, 2.0 * i, np.float32))


def test_views_of_a_lent_result_keep_its_buffer_after_the_result_is_dropped():
    """Slices, transposes and reshapes of a lent result outlive it: the buffer must not go
    back to the pool (and be overwritten by later runs) while any of them is alive."""
    x = tf.placeholder(tf.float32, [256, 256])
    y = x * 2.0
    with tf.Session(backend="llvm") as sess:
        result = sess.run(y, {x: np.ones((256, 256), np.float32)})
        row, transposed, flat = result[0], result.T, result.reshape(-1)
        del result
        gc.collect()
        for i in range(4):
            sess.run(y, {x: np.full((256, 256), 100.0 + i, np.float32)})
        for view in (row, transposed, flat):
            np.testing.assert_array_equal(view, np.full(view.shape, 2.0, np.float32))
