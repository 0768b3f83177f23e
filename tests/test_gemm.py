"""The GEMM core (codegen/gemm.py) against numpy, on every ISA's code path this host can run:
AVX2 (a 'haswell' target: 6 x 16 tiles, 16 vector registers) everywhere, AVX-512 (32
registers, 14 x 32 tiles) where the host has it. Shapes cover ragged edges in every
dimension, both transposes, both float types, fused epilogues, B packed or read in place,
and the kernel's 2-D units split at arbitrary points."""
import ctypes

import llvmlite.binding as llvm
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowjit as tf
from flowjit import dtypes
from flowjit.codegen import gemm, kernels, schedule
from flowjit.codegen.target import CPUTarget, cpu_target
from flowjit.compiler import CompileOptions, optimize
from flowjit.ir.core import TensorType
from flowjit.lower import lower
from flowjit.runtime import cpu
from flowjit.runtime.threads import usable_cores

HOST_HAS_AVX512 = "+avx512f" in llvm.get_host_cpu_features().flatten()
# Targets live as long as the process: kernels compiled for them call their GEMM cores.
TARGETS = {"avx2": CPUTarget("haswell", "+avx2,+fma")}
if HOST_HAS_AVX512:
    TARGETS["avx512"] = CPUTarget("skylake-avx512", "+avx512f,+avx512dq,+avx512bw,+avx512vl,"
                                                    "+avx2,+fma")
ISAS = pytest.mark.parametrize("isa", ["avx2", "avx512"])


def _target(isa: str) -> CPUTarget:
    if isa not in TARGETS:
        pytest.skip("the host has no AVX-512")
    return TARGETS[isa]


def _compile(target, fetches, feeds):
    """The optimized function of `fetches` for the shapes of `feeds`, built for `target`."""
    placeholders = list(feeds)
    func = optimize(lower(fetches, placeholders,
                          {p: TensorType(p.dtype, v.shape) for p, v in feeds.items()}),
                    CompileOptions())
    run, _ = cpu.build(func, target=target)
    return func, lambda: run([feeds[p] for p in placeholders])


def _operands(rng, m, k, n, ta, tb, np_dtype):
    a = rng.standard_normal((m, k)).astype(np_dtype)
    b = rng.standard_normal((k, n)).astype(np_dtype)
    return a, b, (a.T.copy() if ta else a), (b.T.copy() if tb else b)


def _tolerance(np_dtype, k):
    return dict(rtol=1e-4, atol=1e-4 * max(1, k) ** 0.5) if np_dtype == np.float32 else \
        dict(rtol=1e-11, atol=1e-11 * max(1, k) ** 0.5)


def _check_matmul(isa, m, k, n, ta, tb, dtype, epilogue, seed=0):
    rng = np.random.default_rng(seed)
    a, b, fed_a, fed_b = _operands(rng, m, k, n, ta, tb, dtype.np_dtype)
    bias = rng.standard_normal(n).astype(dtype.np_dtype)
    other = rng.standard_normal((m, n)).astype(dtype.np_dtype)
    with tf.Graph().as_default():
        pa, pb = tf.placeholder(dtype, fed_a.shape), tf.placeholder(dtype, fed_b.shape)
        pc = tf.placeholder(dtype, [m, n])
        product = tf.matmul(pa, pb, transpose_a=ta, transpose_b=tb)
        fetch, expected = {
            "none": (product, a @ b),
            "bias_relu": (tf.nn.relu(product + bias), np.maximum(a @ b + bias, 0)),
            "update": (pc - 0.5 * product, other - 0.5 * (a @ b)),  # a training step's
        }[epilogue]
        func, run = _compile(_target(isa), [fetch], {pa: fed_a, pb: fed_b, pc: other})
        assert [schedule.kernel_kind(i) for i in func.body].count("contraction") == 1
        got, = run()
    np.testing.assert_allclose(got, expected, **_tolerance(dtype.np_dtype, k))


@ISAS
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(1, 70), st.integers(0, 70), st.integers(1, 70), st.booleans(),
       st.booleans(), st.sampled_from([tf.float32, tf.float64]),
       st.sampled_from(["none", "bias_relu", "update"]))
def test_small_shapes_match_numpy(isa, m, k, n, ta, tb, dtype, epilogue):
    _check_matmul(isa, m, k, n, ta, tb, dtype, epilogue)


@ISAS
@pytest.mark.parametrize("m,k,n", [
    (300, 70, 33),     # many row tiles, a ragged right edge: B in place
    (129, 1100, 301),  # several KC blocks, and B larger than a block: packed
    (200, 300, 1100),  # several NC blocks of columns, packed
    (3, 517, 1030),    # few rows: 2-D units, B in place with a ragged edge
])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, True), (False, True)])
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_blocked_shapes_match_numpy(isa, m, k, n, ta, tb, dtype):
    _check_matmul(isa, m, k, n, ta, tb, dtype, "bias_relu", seed=m + k + n)


@ISAS
@pytest.mark.parametrize("m,k,n,ta", [
    (1, 1030, 517, False),  # long rows: whole vectors, a masked tail, 2-D units
    (2, 37, 9, False),      # a group of 8 columns and one left over
    (1, 45, 3, True),       # a masked tail; A^T of one row is a row
    (2, 100, 11, False),    # a group of 8 columns and 3 left over
])
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize("epilogue", ["none", "update"])
def test_few_rows_times_b_transposed_are_dot_products(isa, m, k, n, ta, dtype, epilogue):
    assert gemm.plan(m, n, k, ta, True, gemm.blocking(dtype, _target(isa))).dot
    _check_matmul(isa, m, k, n, ta, True, dtype, epilogue, seed=m + k + n)


@ISAS
def test_every_path_is_planned_somewhere(isa):
    """The shapes above cover B packed and in place, 1-D and 2-D units."""
    blocks = gemm.blocking(dtypes.float32, _target(isa))
    packed = gemm.plan(200, 1100, 300, False, False, blocks)
    in_place = gemm.plan(300, 33, 70, False, False, blocks)
    two_d = gemm.plan(3, 1030, 517, False, False, blocks)
    assert packed.pack_b and not in_place.pack_b and not two_d.pack_b
    assert gemm.plan(3, 10, 5, False, True, blocks).pack_b  # B^T is packed, from 3 rows
    dot = gemm.plan(2, 10, 50, False, True, blocks)  # fewer rows: dot products, in place
    assert dot.dot and not dot.pack_b and not gemm.plan(2, 10, 50, True, True, blocks).dot
    assert not gemm.plan(1, 10, 5, False, True, blocks).dot  # K under 2 vectors: tiles
    # a small B with rows of 1 KiB or more is packed too (in place, k steps cross pages)
    assert gemm.plan(200, 256, 100, False, False, blocks).pack_b
    assert not gemm.plan(200, 200, 200, False, False, blocks).pack_b
    assert in_place.col_blocks == 1 and two_d.col_blocks > 1 and two_d.row_blocks == 1


def _native_matmul(target, m, k, n, ta, tb, epilogue: bool, alone: bool = False):
    """The matmul kernel of a graph compiled for `target`, called directly: returns
    (call(begin, end), prepare(), output, expected, units). With `alone`, `call` is the
    kernel's function for one thread (it packs B itself), and prepare does nothing."""
    rng = np.random.default_rng(m * n + k)
    a, b, fed_a, fed_b = _operands(rng, m, k, n, ta, tb, np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    with tf.Graph().as_default():
        pa, pb = tf.placeholder(tf.float32, fed_a.shape), tf.placeholder(tf.float32, fed_b.shape)
        product = tf.matmul(pa, pb, transpose_a=ta, transpose_b=tb)
        fetch = tf.nn.relu(product + bias) if epilogue else product
        func = optimize(lower([fetch], [pa, pb], {pa: TensorType(tf.float32, fed_a.shape),
                                                  pb: TensorType(tf.float32, fed_b.shape)}),
                        CompileOptions())
    instr, = [i for i in func.body if schedule.kernel_kind(i) == "contraction"]
    if instr.op != "matmul":
        assert [v.type.shape for v in instr.operands[:2]] == [fed_a.shape, fed_b.shape]
    module = target.new_module("matmul_units")
    target.ensure_gemm_core(dtypes.float32)
    info = kernels.emit_kernel(module, "k", schedule.schedule(instr, target), target)
    compiled = target.compile_kernel(module, "k")
    out = np.full((m, n), np.nan, np.float32)
    scratch = np.empty(max(info.scratch, 1), np.uint8)
    inputs = _in_order(instr, fed_a, fed_b, bias)
    args = (ctypes.c_void_p * (2 + len(inputs)))(
        out.ctypes.data, *[x.ctypes.data for x in inputs], scratch.ctypes.data)
    alive = [inputs, scratch, compiled]  # held by the calls below

    if alone:
        assert info.alone, "a packed plan was expected"
        whole = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)(
            compiled.module.address(info.alone))
        return (lambda begin, end, alive=alive: whole(args, begin, end)), lambda: None, \
            out, (np.maximum(a @ b + bias, 0) if epilogue else a @ b), info.extent

    def prepare(alive=alive):
        if info.prepare:
            fn = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)(
                compiled.module.address(info.prepare))
            fn(args, 0, info.prepare_extent)

    expected = np.maximum(a @ b + bias, 0) if epilogue else a @ b
    return (lambda begin, end, alive=alive: compiled(args, begin, end)), prepare, out, \
        expected, info.extent


def _in_order(instr, fed_a, fed_b, bias):
    """The kernel's inputs in its operand order (a fusion may order them differently)."""
    by_shape = {fed_a.shape: fed_a, fed_b.shape: fed_b, bias.shape: bias}
    assert len(by_shape) == 3
    return [by_shape[tuple(v.type.shape)] for v in instr.operands]


@ISAS
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([(3, 40, 517), (20, 33, 130), (29, 64, 200), (45, 17, 70)]),
       st.booleans(), st.booleans(), st.lists(st.floats(0, 1), max_size=6))
def test_any_split_of_the_units_computes_each_element_once(isa, shape, tb, epilogue, cuts):
    """A share of the kernel may start and end inside a row block (2-D units): every split
    of [0, units) into ranges, run in any order, computes C and its epilogue exactly."""
    m, k, n = shape
    call, prepare, out, expected, units = _native_matmul(_target(isa), m, k, n, False, tb,
                                                         epilogue)
    points = sorted({0, units, *(int(c * units) for c in cuts)})
    prepare()
    for begin, end in reversed(list(zip(points, points[1:]))):
        call(begin, end)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4 * k ** 0.5)


@ISAS
@pytest.mark.parametrize("m,k,n,ta,tb", [
    (129, 1100, 301, False, False),  # several KC blocks, the last one short
    (200, 300, 1100, False, False),  # several NC blocks, a ragged last panel
    (200, 300, 1100, True, True),    # A^T, and B^T transposed block by block
    (120, 70, 600, False, False),    # rows of 2.4 KiB: packed although small
    (5, 270, 37, False, True),       # few rows, 2-D units
])
def test_one_thread_packs_b_block_by_block(isa, m, k, n, ta, tb):
    """A packed GEMM run whole on one thread packs each KC x NC block of B (or B^T) into
    its scratch just before the block's tiles (where they find it in L2): any range of its
    units, in any order, computes C exactly."""
    call, _, out, expected, units = _native_matmul(_target(isa), m, k, n, ta, tb, True,
                                                   alone=True)
    points = sorted({0, units // 3, units // 2, units})
    for begin, end in reversed(list(zip(points, points[1:]))):
        call(begin, end)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4 * k ** 0.5)


def test_kernels_run_whole_on_one_thread_pack_b_themselves(monkeypatch):
    """Without the pool, a Session calls a packed GEMM's one-thread function (no prepare);
    with it, and enough work, the prepare and the shares."""
    rng = np.random.default_rng(3)
    a = rng.standard_normal((150, 90)).astype(np.float32)
    b = rng.standard_normal((90, 700)).astype(np.float32)
    called = []  # the kernel functions the runtime looks up (thunks) or calls (segments)
    real_call, real_function = cpu.KernelCall, cpu.kernel_function

    def spy_call(kernel, *rest, **named):
        called.append(kernel)
        return real_call(kernel, *rest, **named)

    def spy_function(kernel, name):
        called.append(name)
        return real_function(kernel, name)
    for pool in (None, "host"):
        monkeypatch.undo()
        monkeypatch.setattr(cpu, "KernelCall", spy_call)
        monkeypatch.setattr(cpu, "kernel_function", spy_function)
        if pool is None:
            monkeypatch.setattr(cpu, "worker_pool", lambda target: None)
        else:
            if usable_cores() < 2:
                continue  # one core: there is no pool to share the work with
            monkeypatch.setattr(cpu, "PARALLEL_MIN_WORK", {"contraction": 1})
        called.clear()
        with tf.Graph().as_default():
            pa, pb = tf.placeholder(tf.float32, a.shape), tf.placeholder(tf.float32, b.shape)
            fetch = tf.nn.relu(tf.matmul(pa, pb) - 1.0)
            with tf.Session(backend="llvm") as sess:
                got = sess.run(fetch, {pa: a, pb: b})
        np.testing.assert_allclose(got, np.maximum(a @ b - 1.0, 0), rtol=1e-4, atol=1e-4)
        alone = [name for name in called if name.endswith("_alone")]
        assert bool(alone) == (pool is None), called


@pytest.mark.parametrize("chunks", [1, 3, 5])
def test_shares_of_2d_units_on_the_pool_match_numpy(monkeypatch, chunks):
    """Through the runtime: matmuls split into shares that cross row blocks, B packed by
    shares of panels."""
    monkeypatch.setattr(cpu, "PARALLEL_MIN_WORK", {"contraction": 1})
    monkeypatch.setattr(cpu, "PARALLEL_MIN_ELEMENTS", 1)
    monkeypatch.setattr(cpu, "CHUNKS_PER_THREAD", chunks)
    rng = np.random.default_rng(chunks)
    for m, k, n, tb in [(5, 30, 300, False), (40, 64, 97, True), (300, 40, 50, False)]:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
        with tf.Graph().as_default():
            pa, pb = tf.placeholder(tf.float32, a.shape), tf.placeholder(tf.float32, b.shape)
            fetch = tf.nn.relu(tf.matmul(pa, pb, transpose_b=tb) + 1.0)
            with tf.Session() as sess:
                got = sess.run(fetch, {pa: a, pb: b})
        np.testing.assert_allclose(got, np.maximum(a @ (b.T if tb else b) + 1.0, 0),
                                   rtol=1e-4, atol=1e-4)


def test_blocking_follows_the_target():
    """Tiles from the registers (accumulators + B vectors + a broadcast), KC and NC from the
    caches; the host's own target has cache sizes from the system."""
    avx2 = gemm.blocking(dtypes.float32, TARGETS["avx2"])
    assert (avx2.mr, avx2.nr) == (6, 16)
    assert gemm.blocking(dtypes.float64, TARGETS["avx2"]).nr == 8
    if HOST_HAS_AVX512:
        avx512 = gemm.blocking(dtypes.float32, TARGETS["avx512"])
        assert (avx512.mr, avx512.nr) == (14, 32) and avx512.name != avx2.name
    host = cpu_target()
    assert host.cache_bytes[1] >= 16 << 10 and host.cache_bytes[2] >= host.cache_bytes[1]
    blocks = gemm.blocking(dtypes.float32, host)
    assert blocks.kc * (blocks.mr + blocks.nr) * 4 <= host.cache_bytes[1]
    assert blocks.kc * blocks.nc * 4 <= host.cache_bytes[2] // 2 or blocks.nc == blocks.nr
