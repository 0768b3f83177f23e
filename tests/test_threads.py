"""The native worker pool: every row of a job runs exactly once, whoever drives the pool,
and kernels split across cores compute what the interpreter computes."""
import ctypes
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llvmlite import ir

import flowjit as tf
from flowjit.codegen import kernels
from flowjit.codegen.target import cpu_target
from flowjit.runtime import cpu, threads

from test_passes import _build, programs

pool = threads.worker_pool(cpu_target())
needs_pool = pytest.mark.skipif(pool is None, reason="one core: no worker pool")


def _counting_kernel():
    """void kernel(ptr* buffers, i64 begin, i64 end): buffers[0][i] += 1 for i in the rows."""
    target = cpu_target()
    module = target.new_module("count_rows")
    fn = ir.Function(module, kernels.KERNEL_TYPE, "kernel")
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    counts = b.load(b.gep(fn.args[0], [ir.Constant(kernels.I64, 0)],
                          source_etype=kernels.PTR), typ=kernels.PTR)
    with kernels.loop_range(b, fn.args[1], fn.args[2], "i") as i:
        pointer = b.gep(counts, [i], source_etype=kernels.I64)
        b.store(b.add(b.load(pointer, typ=kernels.I64), ir.Constant(kernels.I64, 1)), pointer)
    b.ret_void()
    return target.compile_kernel(module, "kernel")


@needs_pool
@settings(max_examples=30, deadline=None)
@given(st.integers(0, 5000), st.integers(1, 700), st.integers(0, 50))
def test_every_row_runs_exactly_once(rows, grain, begin):
    kernel = _counting_kernel()
    counts = np.zeros(begin + rows, np.int64)
    args = (ctypes.c_void_p * 1)(counts.ctypes.data)
    for _ in range(3):
        pool.parallel_for(pool.memory, kernel.address, args, begin, begin + rows, grain)
    assert (counts[:begin] == 0).all() and (counts[begin:] == 3).all()


@needs_pool
def test_two_threads_driving_the_pool_at_once_both_get_every_row():
    kernel = _counting_kernel()
    arrays = [np.zeros(20011, np.int64) for _ in range(2)]
    errors = []

    def drive(counts):
        try:
            args = (ctypes.c_void_p * 1)(counts.ctypes.data)
            for _ in range(300):
                pool.parallel_for(pool.memory, kernel.address, args, 0, len(counts), 97)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)
    runners = [threading.Thread(target=drive, args=(a,)) for a in arrays]
    for runner in runners:
        runner.start()
    for runner in runners:
        runner.join()
    assert not errors
    for counts in arrays:
        assert (counts == 300).all()


@needs_pool
def test_the_pool_has_its_workers_running():
    assert pool.size == threads.usable_cores()
    assert all(t.is_alive() for t in pool.threads)


@pytest.fixture
def split_everything(monkeypatch):
    """Every kernel with more than one share of rows runs on the pool."""
    monkeypatch.setattr(cpu, "PARALLEL_MIN_WORK", {"contraction": 1})
    monkeypatch.setattr(cpu, "PARALLEL_MIN_ELEMENTS", 1)


@needs_pool
@settings(max_examples=25, deadline=None, suppress_health_check=[
    HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(programs(), st.integers(0, 2 ** 31 - 1))
def test_random_graphs_split_across_cores_match_the_interpreter(split_everything, steps,
                                                                seed):
    with tf.Graph().as_default():
        x, v, outputs = _build(steps)
        rng = np.random.default_rng(seed)
        feed = {x: rng.standard_normal((3, 4)).astype(np.float32),
                v: rng.standard_normal(4).astype(np.float32)}
        with tf.Session(backend="eager") as eager, tf.Session(backend="llvm") as native:
            reference, compiled = eager.run(outputs, feed), native.run(outputs, feed)
        for ref, got in zip(reference, compiled):
            np.testing.assert_allclose(got, ref, rtol=2e-5, atol=1e-5)


@needs_pool
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True), (True, True)])
def test_a_training_step_split_across_cores_matches_the_interpreter(split_everything, ta, tb):
    rng = np.random.default_rng(3)
    x = tf.placeholder(tf.float32, [37, 19])
    w_init = rng.standard_normal((19, 23)).astype(np.float32)
    w = tf.Variable(w_init.T if tb else w_init)
    h = tf.matmul(tf.transpose(x) if ta else x, w, transpose_a=ta, transpose_b=tb)
    loss = tf.reduce_mean(tf.nn.softmax(tf.nn.relu(h + 0.5)))
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    feed = {x: rng.standard_normal((37, 19)).astype(np.float32)}
    results = []
    for backend in ("eager", "llvm"):
        with tf.Session(backend=backend) as sess:
            sess.run(tf.global_variables_initializer())
            for _ in range(3):
                sess.run(train, feed)
            results.append(sess.run([loss, w], feed))
    np.testing.assert_allclose(results[1][0], results[0][0], rtol=1e-5)
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-5, atol=1e-6)


@needs_pool
def test_a_forked_child_runs_split_kernels_without_the_parents_workers(split_everything):
    x = tf.placeholder(tf.float32, [4096])
    y = tf.tanh(x) * 2.0  # elementwise: split into shares
    sess = tf.Session(backend="llvm")
    data = np.linspace(-3, 3, 4096).astype(np.float32)
    expected = sess.run(y, {x: data})  # the pool exists before the fork
    import os
    import time
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the pool's memory is here, its worker threads are not
        try:
            os.write(write_end, sess.run(y, {x: data}).tobytes())
        finally:
            os._exit(0)
    os.close(write_end)
    deadline = time.monotonic() + 60
    while os.waitpid(pid, os.WNOHANG) == (0, 0):  # never hang the suite on a stuck child
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            pytest.fail("the forked child did not finish its run")
        time.sleep(0.01)
    received = b""
    while len(received) < expected.nbytes:
        chunk = os.read(read_end, expected.nbytes - len(received))
        if not chunk:
            break
        received += chunk
    os.close(read_end)
    np.testing.assert_allclose(np.frombuffer(received, np.float32), expected, rtol=1e-6)


def test_threads_asking_for_the_same_new_executable_compile_it_once(monkeypatch):
    """The first thread's executable is in the cache before the next thread may look: the
    insertion is slowed down here, and a second thread must still find it, not compile."""
    import time
    x = tf.placeholder(tf.float32, [3], name="x")
    y = x * 2.0
    sess = tf.Session()
    compiles = []
    just_compiled = threading.local()
    original_compile = sess._compile

    def counting_compile(request, feeds):
        executable = original_compile(request, feeds)
        compiles.append(threading.get_ident())
        just_compiled.flag = True
        return executable

    class SlowInsertLock:
        """The cache lock, slow to take right after a compile."""

        def __init__(self, lock):
            self.lock = lock

        def __enter__(self):
            if getattr(just_compiled, "flag", False):
                just_compiled.flag = False
                time.sleep(0.2)
            return self.lock.__enter__()

        def __exit__(self, *exc):
            return self.lock.__exit__(*exc)

    monkeypatch.setattr(sess, "_compile", counting_compile)
    sess._cache_lock = SlowInsertLock(sess._cache_lock)
    results = []

    def first_run(delay):
        time.sleep(delay)
        results.append(sess.run(y, {x: np.ones(3, np.float32)}))

    threads_ = [threading.Thread(target=first_run, args=(d,)) for d in (0.0, 0.05, 0.1)]
    for t in threads_:
        t.start()
    for t in threads_:
        t.join()
    sess.close()
    assert len(results) == 3 and all((r == 2).all() for r in results)
    assert len(compiles) == 1


REDUCE = {"sum": (tf.reduce_sum, np.sum), "mean": (tf.reduce_mean, np.mean),
          "max": (tf.reduce_max, np.max), "prod": (tf.reduce_prod, np.prod)}


@needs_pool
@pytest.mark.parametrize("axis", [None, 0, 1, 2, (0, 1), (1, 2), (0, 2)], ids=str)
@pytest.mark.parametrize("name", sorted(REDUCE))
def test_reductions_split_across_cores_match_numpy(split_everything, name, axis):
    """Kept rows (a leading kept axis) or kept columns (a trailing one) are split into
    shares; each share initializes, accumulates and finishes only its own outputs."""
    tf_fn, np_fn = REDUCE[name]
    data = np.random.default_rng(7).uniform(0.5, 1.5, (9, 6, 5)).astype(np.float32)
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, data.shape)
        y = tf_fn(tf.abs(x) + 0.25, axis=axis)  # a fused elementwise prologue
        with tf.Session(backend="llvm") as sess:
            got = sess.run(y, {x: data})
    np.testing.assert_allclose(got, np_fn(np.abs(data) + 0.25, axis=axis), rtol=2e-5)
