"""The CUDA backend without a GPU: device plans (launches, host steps, the copy schedule,
checks), the arena, launch configurations, PTX that ptxas accepts, whole Session runs with the
GPU emulator as the driver (tests/gpu_emulator.py) against the numpy interpreter, and clean
errors where pycuda or a GPU is missing. The tests that need a GPU skip without one."""
import contextlib
import ctypes
import logging
import shutil

import numpy as np
import pytest

import flowjit as tf
from flowjit import errors
from flowjit.codegen import ptx
from flowjit.codegen.gpu import Launch
from flowjit.compiler import CompileOptions, optimize
from flowjit.config import config
from flowjit.ir.core import TensorType
from flowjit.lower import lower
from flowjit.runtime import cuda
from flowjit.runtime.buffers import plan_arena
from flowjit.runtime.cuda_driver import PinnedStaging, PyCUDADriver
from flowjit.runtime.device_plan import (ARENA_ALIGN, DEVICE, HOST, CheckStep, CopyStep,
                                         DeviceLimits, HostStep, LaunchStep, build_device_plan,
                                         describe_plan, occupancy_grid, resident_blocks)
from gpu_emulator import EmulatorDriver

needs_ptxas = pytest.mark.skipif(ptx.libdevice_path() is None or shutil.which("ptxas") is None,
                                 reason="the CUDA toolkit (libdevice, ptxas) is absent")
needs_gpu = pytest.mark.skipif(cuda.unavailable_reason() is not None,
                               reason=f"no GPU: {cuda.unavailable_reason()}")


def _mlp(batch=8, features=12, hidden=16, classes=5):
    tf.set_random_seed(1)
    x = tf.placeholder(tf.float32, [batch, features], name="x")
    y = tf.placeholder(tf.int32, [batch], name="y")
    h = tf.layers.dense(x, hidden, activation=tf.nn.relu)
    logits = tf.layers.dense(h, classes)
    loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y,
                                                                         logits=logits))
    train = tf.train.GradientDescentOptimizer(0.1).minimize(loss)
    return x, y, loss, train


def _train_step_plan():
    """The plan of the MLP's training step (fetch the loss, run the update)."""
    from flowjit.graph.plan import build_plan
    from flowjit.lower import lower_plan
    x, y, loss, train = _mlp()
    plan = build_plan((loss,), (train,), (x, y))
    variables = {v.op: TensorType(v.dtype.base_dtype, tuple(v.shape.as_list()))
                 for v in tf.global_variables()}
    func = lower_plan(plan, {x: TensorType(tf.float32, (8, 12)),
                             y: TensorType(tf.int32, (8,))}, variables, "train")
    return build_device_plan(optimize(func, CompileOptions()))


# -- plans --------------------------------------------------------------------------------------
def test_the_train_step_is_one_graph_of_launches_moving_only_feeds_and_the_fetch():
    plan = _train_step_plan()
    assert plan.stats["numpy"] == 0 and not plan.stats["fallbacks"]
    assert plan.graphable and len(plan.launches) >= 6
    assert plan.stats["copies"] == {"feed": 2, "fetch": 1}
    copies = plan.copies()
    assert all(c.to == DEVICE for c in copies[:2]) and copies[-1].to == HOST
    # the labels are fed: they are range-checked before the first launch
    first_launch = next(i for i, s in enumerate(plan.steps) if isinstance(s, LaunchStep))
    assert any(isinstance(s, CheckStep) for s in plan.steps[:first_launch])
    # the four variables are read where they live and updated into buffers of their own
    assert plan.param_sides.count(DEVICE) == 4 and len(plan.updates) == 4
    assert all(owns for _, _, owns in plan.updates)
    assert sum(kind == "output" for kind, _ in plan.placement.values()) == 4
    assert "launch k" in describe_plan(plan) and "one CUDA graph" in describe_plan(plan)


def test_the_arena_never_overlaps_live_buffers():
    plan = _train_step_plan()
    first, last = {}, {}
    for at, step in enumerate(plan.steps):
        if isinstance(step, LaunchStep):
            for s in step.buffers[:step.results]:
                first.setdefault(plan.buffer_slot(s), at)
            touched = step.buffers
        elif isinstance(step, CopyStep):
            touched = (step.slot,)
            if step.to == DEVICE:
                first.setdefault(plan.buffer_slot(step.slot), at)
        else:
            continue
        for s in touched:
            last[plan.buffer_slot(s)] = at
    arena = [(s, offset) for s, (kind, offset) in plan.placement.items() if kind == "arena"]
    assert arena and all(offset % ARENA_ALIGN == 0 for _, offset in arena)
    spans = {s: (offset, offset + plan.values[s].type.num_elements *
                 plan.values[s].type.dtype.np_dtype.itemsize) for s, offset in arena}
    assert max(end for _, end in spans.values()) <= plan.arena_bytes
    for a in spans:
        for b in spans:
            live_together = a != b and first[a] <= last[b] and first[b] <= last[a]
            if live_together:
                assert spans[a][1] <= spans[b][0] or spans[b][1] <= spans[a][0], (a, b)


def test_arena_planning_reuses_dead_space_deterministically():
    sizes = [1000, 300, 5000, 40, 1000]
    lifetimes = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 4)]
    offsets, total = plan_arena(sizes, lifetimes, 256)
    assert (offsets, total) == plan_arena(sizes, lifetimes, 256)
    assert all(o % 256 == 0 for o in offsets)
    assert total < sum(-(-s // 256) * 256 for s in sizes)  # buffers 0 and 2 share space
    for i in range(5):
        for j in range(i):
            if lifetimes[i][0] <= lifetimes[j][1] and lifetimes[j][0] <= lifetimes[i][1]:
                assert offsets[i] + sizes[i] <= offsets[j] or offsets[j] + sizes[j] <= offsets[i]


def _func(build, *feeds):
    x = [tf.placeholder(dtype, shape) for dtype, shape in feeds]
    outputs = build(*x)
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    return optimize(lower(outputs, [], {p: TensorType(d, tuple(s)) for p, (d, s)
                                        in zip(x, feeds)}), CompileOptions())


def test_host_steps_get_explicit_copies_and_are_logged(monkeypatch, caplog):
    """A py_func in the middle: its operand comes to the host, its result goes back."""
    def build(x):
        doubled = tf.py_func(lambda v: v * 2, [tf.sin(x)], tf.float32)
        doubled.set_shape([64])
        return tf.exp(doubled)

    func = _func(build, (tf.float32, [64]))
    plan = build_device_plan(func)
    kinds = [type(s).__name__ for s in plan.steps if not isinstance(s, CheckStep)]
    host = kinds.index("HostStep")
    assert kinds[host - 1] == "CopyStep" and kinds[host + 1] == "CopyStep"
    assert not plan.graphable and plan.stats["copies"]["host step"] == 2
    assert plan.stats["fallbacks"] and "py_func" in plan.stats["fallbacks"][0]
    monkeypatch.setattr(config, "log_fallbacks", True)
    with caplog.at_level(logging.INFO, logger="flowjit"):
        from flowjit.runtime.backends import log_fallbacks
        log_fallbacks(func.name, plan.stats["fallbacks"])
    assert "py_func" in caplog.text


def test_strings_never_go_to_the_device():
    func = _func(lambda s, x: [tf.string_join([s, tf.as_string(x * 3.0)]), x * 3.0],
                 (tf.string, [5]), (tf.float32, [5]))
    plan = build_device_plan(func)
    assert plan.launches and plan.stats["numpy"] >= 2
    for step in plan.steps:
        if isinstance(step, CopyStep):
            assert plan.values[step.slot].type.dtype is not tf.string


# -- launch configuration ----------------------------------------------------------------------
def test_occupancy_caps_grids_at_resident_waves():
    h100 = DeviceLimits()
    # 256 threads, 32 registers: 8 blocks per SM by threads
    assert resident_blocks(Launch(4096, 256), h100, 32) == 8
    assert occupancy_grid(Launch(4096, 256), h100, 32) == min(4096, 8 * 132 * 4)
    # 128 registers per thread: 65536 / (128 * 256) = 2 blocks per SM
    assert resident_blocks(Launch(4096, 256), h100, 128) == 2
    assert occupancy_grid(Launch(4096, 256), h100, 128) == 2 * 132 * 4
    # the GEMM's 8320 bytes of shared memory do not bind before threads do
    assert resident_blocks(Launch(176, 256, 8320), h100, 64) == 4
    assert occupancy_grid(Launch(176, 256, 8320), h100, 64) == 176  # the schedule's grid
    small = DeviceLimits(sm_count=1, max_blocks_per_sm=1, waves=2)
    assert occupancy_grid(Launch(4096, 256), small, 32) == 2
    with pytest.raises(ValueError, match="does not fit"):
        occupancy_grid(Launch(10, 256, 300 << 10), h100, 32)


# -- PTX -----------------------------------------------------------------------------------------
@needs_ptxas
def test_the_train_steps_ptx_module_assembles_for_sm_90():
    plan = _train_step_plan()
    text = plan.ptx()
    assert text.count(".entry") == len(plan.launches)
    for step in plan.launches:
        assert f".entry {step.kernel}(" in text
    ok, messages = ptx.PTXTarget().assemble(text)
    assert ok, messages


# -- whole runs on the emulator ------------------------------------------------------------------
@pytest.fixture
def emulated():
    """The CUDA backend with the GPU emulator as its device."""
    driver = EmulatorDriver()
    previous = cuda.use_driver(driver)
    yield driver
    cuda._device = previous


def _train(backend, runs=2):
    tf.reset_default_graph()
    x, y, loss, train = _mlp()
    rng = np.random.default_rng(0)
    feeds = {x: rng.standard_normal((8, 12)).astype(np.float32),
             y: rng.integers(0, 5, 8).astype(np.int32)}
    with tf.Session(backend=backend) as sess:
        sess.run(tf.global_variables_initializer())
        losses = [sess.run([loss, train], feeds)[0] for _ in range(runs)]
        weights = sess.run(tf.trainable_variables())
        executables = list(sess._executables.values())
    return losses, weights, executables


def test_training_on_the_emulated_gpu_matches_the_interpreter(emulated):
    expected_losses, expected_weights, _ = _train("eager")
    losses, weights, executables = _train("cuda")
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-5)
    for got, want in zip(weights, expected_weights):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    (step,) = [e for e in executables if e.stats.get("launches", 0) > 6]
    assert step.stats["graph"]
    assert emulated.calls["replay"] >= 2 and emulated.calls["capture"] <= 2


def test_a_train_run_moves_only_the_feeds_and_the_fetch(emulated):
    tf.reset_default_graph()
    x, y, loss, train = _mlp()
    feeds = {x: np.ones((8, 12), np.float32), y: np.zeros(8, np.int32)}
    with tf.Session(backend="cuda") as sess:
        sess.run(tf.global_variables_initializer())
        sess.run([loss, train], feeds)
        before = dict(emulated.calls)
        sess.run([loss, train], feeds)
        moved = {k: emulated.calls[k] - before[k] for k in before}
        assert moved["to_device"] == 2 and moved["to_host"] == 1 and moved["copy"] == 0
        assert moved["alloc"] == 0  # new variable values reuse the buffers they replace
        # fetching a variable copies it out, once
        w = tf.trainable_variables()[0]
        assert sess.run(w).shape == (12, 16)


def test_a_seeded_dropout_mask_is_the_same_on_every_backend(emulated):
    masks = {}
    for backend in ("eager", "llvm", "cuda"):
        tf.reset_default_graph()
        tf.set_random_seed(7)
        x = tf.placeholder(tf.float32, [6, 40])
        y = tf.nn.dropout(x, keep_prob=0.5) * 3.0
        with tf.Session(backend=backend) as sess:
            masks[backend] = [sess.run(y, {x: np.ones((6, 40), np.float32)}) for _ in range(2)]
    for backend in ("llvm", "cuda"):
        np.testing.assert_array_equal(masks[backend], masks["eager"])


def test_out_of_range_labels_fail_before_any_launch_and_change_nothing(emulated):
    tf.reset_default_graph()
    x, y, loss, train = _mlp()
    with tf.Session(backend="cuda") as sess:
        sess.run(tf.global_variables_initializer())
        before = sess.run(tf.trainable_variables())
        launches = emulated.calls["launch"]
        with pytest.raises(errors.InvalidArgumentError, match="label"):
            sess.run(train, {x: np.ones((8, 12), np.float32), y: np.full(8, 9, np.int32)})
        assert emulated.calls["launch"] == launches
        for got, want in zip(sess.run(tf.trainable_variables()), before):
            np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("failure, error", [
    (RuntimeError("cuLaunchKernel failed: unspecified launch failure"), errors.InternalError),
    (MemoryError("cuMemAlloc failed: out of memory"), errors.ResourceExhaustedError)])
def test_a_cuda_error_names_the_kernel_and_op_and_leaves_variables(emulated, failure, error):
    tf.reset_default_graph()
    x, y, loss, train = _mlp()
    feeds = {x: np.ones((8, 12), np.float32), y: np.zeros(8, np.int32)}
    with tf.Session(backend="cuda") as sess:
        sess.run(tf.global_variables_initializer())
        before = sess.run(tf.trainable_variables())

        def fail(*args):
            raise failure

        emulated.replay = fail
        emulated.launch = fail
        with pytest.raises(error, match=r"kernel.* k\d+ .*op: '"):
            sess.run([loss, train], feeds)
        for got, want in zip(sess.run(tf.trainable_variables()), before):
            np.testing.assert_array_equal(got, want)


def test_variables_loaded_from_the_host_are_uploaded_once(emulated):
    tf.reset_default_graph()
    v = tf.Variable(np.zeros(5, np.float32))
    out = v * 2.0
    with tf.Session(backend="cuda") as sess:
        sess.run(v.initializer)
        v.load(np.arange(5, dtype=np.float32), sess)  # (copied to the device here)
        np.testing.assert_array_equal(sess.run(out), np.arange(5) * 2.0)
        uploads = emulated.calls["to_device"]  # (and the executable's constant, once)
        for _ in range(3):
            np.testing.assert_array_equal(sess.run(out), np.arange(5) * 2.0)
        assert emulated.calls["to_device"] == uploads


class _PyCUDAMemoryError(Exception):
    """As pycuda._driver.MemoryError: named MemoryError, not a subclass of Python's."""


_PyCUDAMemoryError.__name__ = _PyCUDAMemoryError.__qualname__ = "MemoryError"
_PyCUDAMemoryError.__module__ = "pycuda._driver"


def test_an_allocation_out_of_memory_empties_the_pool_retries_then_is_resource_exhausted(
        emulated):
    tf.reset_default_graph()
    v = tf.Variable(tf.zeros([4096]))
    x = tf.placeholder(tf.float32, [4096])
    update = tf.assign_add(v, x * 2.0)
    allocate = emulated.alloc
    with tf.Session(backend="cuda") as sess:
        sess.run(v.initializer)
        sess.run(update, {x: np.ones(4096, np.float32)})
        device = cuda.device()
        device.give(*allocate(1 << 20), 1 << 20)  # (a freed buffer the run does not need)
        assert device.pooled_bytes >= 1 << 20
        failures = []

        def out_of_memory_once(nbytes):
            if not failures:
                failures.append(nbytes)
                raise _PyCUDAMemoryError("cuMemAlloc failed: out of memory")
            return allocate(nbytes)

        emulated.alloc = out_of_memory_once
        device.free.pop(4096 * 4, None)  # (the run must allocate its new value)
        frees = emulated.calls["free"]
        sess.run(update, {x: np.ones(4096, np.float32)})  # retried after emptying the pool
        assert failures and emulated.calls["free"] > frees
        np.testing.assert_array_equal(sess.run(v), np.full(4096, 4.0))

        def out_of_memory(nbytes):
            raise _PyCUDAMemoryError("cuMemAlloc failed: out of memory")

        emulated.alloc = out_of_memory
        device.free.clear()
        with pytest.raises(errors.ResourceExhaustedError, match="out of memory"):
            sess.run(update, {x: np.ones(4096, np.float32)})
        with pytest.raises(errors.ResourceExhaustedError):  # (an upload: Variable.load)
            v.load(np.zeros(4096, np.float32), sess)
        np.testing.assert_array_equal(sess.run(v), np.full(4096, 4.0))


def test_the_device_pool_keeps_at_most_its_limit_in_bytes(emulated):
    device = cuda.Device(emulated, pool_limit=3000)
    buffers = [(1000, device.take(1000)), (1500, device.take(1500)), (800, device.take(800)),
               (5000, device.take(5000))]
    for nbytes, (allocation, address) in buffers:
        device.give(allocation, address, nbytes)
    # the least recently freed size (1000) went first; 5000 never fitted
    assert sorted(device.free) == [800, 1500] and device.pooled_bytes == 2300
    assert emulated.calls["free"] == 2 and len(emulated.live) == 2


class _LaggingStream:
    """A stream that runs its queue only when synchronized (CUDA allows any lag)."""

    def __init__(self):
        self.queue = []

    def synchronize(self):
        queue, self.queue = self.queue, []
        for operation in queue:
            operation()


class _LaggingCUDA:
    """pycuda's asynchronous copies, queued on a _LaggingStream."""

    def __init__(self):
        self.pinned = 0

    def pagelocked_empty(self, nbytes, dtype):
        self.pinned += nbytes
        return np.empty(nbytes, dtype)

    def memcpy_htod_async(self, destination, source, stream):
        stream.queue.append(lambda: ctypes.memmove(destination, source.ctypes.data,
                                                   source.nbytes))

    def memcpy_dtoh_async(self, destination, source, stream):
        stream.queue.append(lambda: ctypes.memmove(destination.ctypes.data, source,
                                                   destination.nbytes))

    def memcpy_dtod_async(self, destination, source, nbytes, stream):
        stream.queue.append(lambda: ctypes.memmove(destination, source, nbytes))


class _LaggingStreamDriver(EmulatorDriver):
    """The pycuda driver's own copies and staging (PyCUDADriver's methods) on the emulator,
    with a stream that lags the host until it is synchronized."""

    to_device = PyCUDADriver.to_device
    to_host = PyCUDADriver.to_host
    copy = PyCUDADriver.copy
    synchronize = PyCUDADriver.synchronize
    _synchronize_stream = PyCUDADriver._synchronize_stream

    def __init__(self, staging_limit):
        super().__init__()
        self.stream, self.cuda = _LaggingStream(), _LaggingCUDA()
        self._staging = PinnedStaging(lambda n: self.cuda.pagelocked_empty(n, np.uint8),
                                      self._synchronize_stream, staging_limit)

    def _current(self):
        return contextlib.nullcontext()

    def launch(self, function, grid, block, shared_bytes, pointers):
        self.calls["launch"] += 1
        self.stream.queue.append(lambda: function.launch(block, grid, list(pointers)))


@pytest.mark.parametrize("staging_limit", [1 << 20, 300])
def test_a_staging_buffer_is_not_rewritten_while_a_lagging_copy_reads_it(staging_limit):
    """Two host steps' outputs share an arena offset and so a device address; both are
    copied in within one run, the second while the first copy still waits on the stream.
    With a 300-byte limit (one 256-byte value pinned at a time) staging synchronizes."""
    def build():
        tf.reset_default_graph()
        x = tf.placeholder(tf.float32, [64], name="x")
        y1 = tf.py_func(lambda v: v + 1, [x], tf.float32)
        y1.set_shape([64])
        a = tf.reduce_sum(tf.exp(y1 * 0.01)) * tf.ones([64])
        y2 = tf.py_func(lambda v: v * 100, [y1], tf.float32)
        y2.set_shape([64])
        return x, tf.tanh(a * 0.001 + y2 * 0.0001)

    feed = np.linspace(0, 1, 64).astype(np.float32)
    x, out = build()
    with tf.Session(backend="eager") as sess:
        expected = sess.run(out, {x: feed})
    driver = _LaggingStreamDriver(staging_limit)
    previous = cuda.use_driver(driver)
    try:
        x, out = build()
        with tf.Session(backend="cuda") as sess:
            for _ in range(2):
                np.testing.assert_allclose(sess.run(out, {x: feed}), expected, rtol=1e-6)
    finally:
        cuda._device = previous
    staging = driver._staging
    assert not staging.in_flight and staging.pinned <= max(staging_limit, 256)
    assert driver.cuda.pinned >= staging.pinned


def test_captured_graphs_are_kept_most_recently_replayed_first(emulated, monkeypatch):
    """Variables alternate between two buffers: two graphs, captured once each; keeping one,
    every run captures again."""
    _train("cuda", runs=3)
    assert emulated.calls["capture"] == 2 and emulated.calls["replay"] == 3
    monkeypatch.setattr(cuda, "GRAPHS_KEPT", 1)
    _train("cuda", runs=3)
    assert emulated.calls["capture"] == 2 + 3


def test_a_launch_failing_during_capture_is_the_error_raised():
    class CapturingStream(_LaggingStream):
        def begin_capture(self):
            self.capturing = True

        def end_capture(self):
            raise RuntimeError("cuStreamEndCapture failed: operation not permitted when "
                               "stream is capturing (the capture was invalidated)")

    driver = _LaggingStreamDriver(1 << 20)
    driver.stream = CapturingStream()

    def fail(*args):
        raise RuntimeError("cuLaunchKernel failed: invalid argument")

    driver.launch = fail
    with pytest.raises(RuntimeError, match="cuLaunchKernel"):
        PyCUDADriver.capture(driver, [(None, 1, 32, 0, [0])])


def test_a_gpu_device_scope_inside_a_cond_or_loop_asks_the_root_graph():
    tf.reset_default_graph()
    x = tf.placeholder(tf.float32, [])

    def on_gpu():
        with tf.device("/gpu:0"):
            return x * 2.0

    tf.cond(x > 0, on_gpu, lambda: x)
    assert tf.get_default_graph().gpu_requested
    tf.reset_default_graph()
    i = tf.constant(0)

    def body(i):
        with tf.device("/device:GPU:0"):
            return i + 1

    tf.while_loop(lambda i: i < 3, body, [i])
    assert tf.get_default_graph().gpu_requested


# -- where the backend cannot run ---------------------------------------------------------------
@pytest.mark.skipif(cuda.unavailable_reason() is None, reason="a GPU is here")
def test_without_pycuda_or_a_gpu_the_cuda_backend_is_a_clear_error(monkeypatch):
    with pytest.raises(errors.UnavailableError, match="CUDA backend is unavailable: .*(pycuda|"
                                                       "driver|GPU)"):
        tf.Session(backend="cuda")
    monkeypatch.setattr(config, "backend", "cuda")
    with pytest.raises(errors.UnavailableError):
        tf.Session()


@pytest.mark.skipif(cuda.unavailable_reason() is None, reason="a GPU is here")
def test_a_gpu_device_scope_falls_back_to_the_default_backend(monkeypatch):
    tf.reset_default_graph()
    with tf.device("/gpu:0"):
        x = tf.constant([1.0, 2.0]) * 2.0
    assert tf.get_default_graph().gpu_requested
    with tf.Session() as sess:
        assert sess.backend == config.backend
        np.testing.assert_array_equal(sess.run(x), [2.0, 4.0])


def test_a_gpu_device_scope_selects_the_cuda_backend_where_it_runs(emulated, monkeypatch):
    monkeypatch.setattr(config, "backend_from_environment", False)
    tf.reset_default_graph()
    with tf.device("/gpu:0"):
        x = tf.constant([1.0, 2.0]) * 2.0
    with tf.Session() as sess:
        assert sess.backend == "cuda"
        np.testing.assert_array_equal(sess.run(x), [2.0, 4.0])


# -- on a GPU ------------------------------------------------------------------------------------
@needs_gpu
def test_training_on_the_gpu_matches_the_interpreter():
    expected_losses, expected_weights, _ = _train("eager", runs=5)
    losses, weights, _ = _train("cuda", runs=5)
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-4)
    for got, want in zip(weights, expected_weights):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@needs_ptxas
def test_the_committed_ptx_of_the_mlp_train_step_has_every_kernel_and_assembles():
    """ir_dumps/mlp-ptx (`make ir-dumps`): the module the CUDA backend loads for
    examples/mlp.py's training step, after its plan as comments."""
    import pathlib
    import re
    text = (pathlib.Path(__file__).resolve().parents[1] / "ir_dumps" / "mlp-ptx" / "001-loss" /
            "ptx.ptx").read_text()
    launched = re.findall(r"^// launch (k\d+) ", text, flags=re.MULTILINE)
    assert len(launched) >= 15 and "one CUDA graph" in text
    assert sorted(re.findall(r"\.entry (k\d+)\(", text)) == sorted(launched)
    ok, messages = ptx.PTXTarget().assemble(text)
    assert ok, messages
