"""The GPU target: every kernel kind compiles to PTX through llvmlite's NVPTX backend from the
kernel schedules and the CPU's per-element code, ptxas accepts it, the kernels are GPU
kernels (blocks, warp shuffles, shared-memory tiles, 64-bit indices), and run by an emulator
on the CPU (tests/gpu_emulator.py) they compute what the interpreter does. (Launching on a
GPU is the GPU backend's issue: no test here needs a GPU.)"""
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import flowjit as tf
from flowjit.codegen import ptx
from flowjit.codegen.ptx import PTXTarget
from flowjit.codegen.schedule import format_schedule, kernel_kind
from flowjit.compiler import CompileOptions, optimize
from flowjit.graph import registry
from flowjit.interp.evaluate import evaluate
from flowjit.ir.core import TensorType
from flowjit.lower import lower
from flowjit.ops.base import apply_op
from fuzz_ops import arity
from gpu_emulator import Emulator


def _fused_chain_instr():
    x = tf.placeholder(tf.float32, [1000, 33], name="x")
    y = tf.nn.relu(1.5 * x + 0.25) * tf.sigmoid(x) - 0.5 * tf.tanh(x)
    func = optimize(lower([y], [], {x: TensorType(tf.float32, (1000, 33))}), CompileOptions())
    (fusion,) = [i for i in func.body if i.op == "fusion"]
    return fusion


def test_a_fused_kernel_becomes_ptx():
    target = PTXTarget()
    fusion = _fused_chain_instr()
    assert target.supports(fusion)
    ptx = target.to_ptx(target.emit_kernel(fusion))
    assert ".visible .entry kernel(" in ptx and ".target sm_90" in ptx
    assert "%tid.x" in ptx and "ld.global" in ptx and "st.global" in ptx
    assert "call" not in ptx  # no libm: exp/tanh are inline arithmetic


@pytest.mark.skipif(shutil.which("ptxas") is None, reason="the CUDA toolkit (ptxas) is absent")
def test_ptxas_assembles_the_generated_ptx():
    target = PTXTarget()
    ok, messages = target.assemble(target.to_ptx(target.emit_kernel(_fused_chain_instr())))
    assert ok, messages


def _last_kernel(fn, dtype=tf.float32):
    x = tf.placeholder(dtype, [100], name="x")
    func = optimize(lower([fn(x) * 2.0 + 1.0], [], {x: TensorType(dtype, (100,))}),
                    CompileOptions())
    return func.body[-1]


GPU_MATH = {"pow": lambda x: tf.pow(x, 2.5), "sin": tf.sin, "cos": tf.cos, "exp": tf.exp,
            "log": tf.log, "expm1": tf.expm1, "log1p": tf.log1p, "tanh": tf.tanh,
            "softplus": tf.nn.softplus, "elu": tf.nn.elu}


@pytest.mark.skipif(ptx.libdevice_path() is None or shutil.which("ptxas") is None,
                    reason="the CUDA toolkit (libdevice, ptxas) is absent")
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64], ids=lambda d: d.name)
@pytest.mark.parametrize("op", sorted(GPU_MATH))
def test_math_the_gpu_lacks_comes_from_libdevice_and_assembles(op, dtype):
    target = PTXTarget()
    kernel = _last_kernel(GPU_MATH[op], dtype)
    assert target.supports(kernel)
    text = target.to_ptx(target.emit_kernel(kernel))
    assert len(text.splitlines()) < 1000  # only the library functions used are kept
    ok, messages = target.assemble(text)
    assert ok, messages


def test_without_libdevice_math_kernels_are_refused_with_an_error_not_an_abort(monkeypatch):
    monkeypatch.setattr(ptx, "libdevice_path", lambda: None)
    target = PTXTarget()
    for op in ("pow", "sin", "expm1"):
        kernel = _last_kernel(GPU_MATH[op])
        assert not target.supports(kernel)
        with pytest.raises(ptx.PTXUnsupportedError, match="libdevice"):
            target.to_ptx(target.emit_kernel(kernel))
    assert target.supports(_last_kernel(tf.sigmoid))  # inline arithmetic needs no library


def test_dumping_gpu_math_never_kills_or_changes_the_run(tmp_path):
    """NVPTX aborts the process on an intrinsic it cannot select (tf.pow under
    FLOWJIT_DUMP_DIR exited with 134); dumping must leave the run as it is."""
    program = ("import numpy as np, flowjit as tf\n"
               "x = tf.placeholder(tf.float32, [4])\n"
               "y = tf.pow(x, 2.5) + tf.sin(x) + tf.expm1(x)\n"
               "with tf.Session() as s:\n"
               "    print(s.run(y, {x: np.arange(4, dtype=np.float32)}).tolist())\n")
    outputs = []
    for dump in (None, str(tmp_path / "dumps")):
        env = dict(os.environ)
        env.pop("FLOWJIT_DUMP_DIR", None)
        if dump:
            env["FLOWJIT_DUMP_DIR"] = dump
        done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                              env=env, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    (dumped,) = (tmp_path / "dumps").glob("*/ptx.ptx")
    assert ".entry" in dumped.read_text() or "not compiled to PTX" in dumped.read_text()


# -- every op the GPU has an emitter for: its kernels assemble ----------------------------------

needs_ptxas = pytest.mark.skipif(
    ptx.libdevice_path() is None or shutil.which("ptxas") is None,
    reason="the CUDA toolkit (libdevice, ptxas) is absent")
F32, F64 = tf.float32, tf.float64
BIG = [300, 257]  # more than one block of threads, rows and columns not multiples of a warp


def _func(build, *feeds):
    """The optimized function of build(placeholders...) for feeds of (dtype, shape)."""
    x = [tf.placeholder(dtype, shape) for dtype, shape in feeds]
    outputs = build(*x)
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    types = {p: TensorType(dtype, tuple(shape)) for p, (dtype, shape) in zip(x, feeds)}
    return optimize(lower(outputs, [], types), CompileOptions())


def _elementwise(op_type):
    """The op in the first of float32, int32 and bool it takes (Select and Cast by their
    API): the other dtypes' scalar code is the CPU's, what differs on the GPU is the loop."""
    if op_type == "Select":
        return [(lambda c, x, y: tf.where_v2(c, x, y), (tf.bool, BIG), (F32, BIG), (F32, BIG))]
    if op_type == "Cast":
        return [(lambda x: [tf.cast(x, tf.int32), tf.cast(x, F64)], (F32, BIG))]
    n = arity(op_type)
    for dtype in (F32, tf.int32, tf.bool):
        try:
            registry.get_op_def(op_type).infer([registry.TensorSpec(dtype, tf.TensorShape(
                [2]))] * n)
        except Exception:
            continue
        return [(lambda *x: apply_op(op_type, list(x)), *[(dtype, BIG)] * n)]
    raise AssertionError(f"{op_type} takes none of float32, int32, bool")


REDUCE_API = {"Sum": tf.reduce_sum, "Mean": tf.reduce_mean, "Prod": tf.reduce_prod,
              "Max": tf.reduce_max, "Min": tf.reduce_min, "Any": tf.reduce_any,
              "All": tf.reduce_all}


def _reduction(op_type):
    """Rows (with a fused prologue) and columns in float32, everything in float64 (an empty
    mean too), rows in int32, int64 and int8: every way a value crosses a warp shuffle
    (32-bit, two halves, widened) and both strategies (ptx_kernels.emit_reduce)."""
    reduce = REDUCE_API[op_type]
    if op_type in ("Any", "All"):
        return [(lambda x: [reduce(tf.logical_not(x), axis=1), reduce(x, axis=0), reduce(x),
                            ], (tf.bool, BIG))]
    cases = [(lambda x: [reduce(tf.abs(x) * 2.0, axis=1), reduce(x, axis=0)], (F32, BIG)),
             (reduce, (F64, BIG))]
    if op_type == "Mean":
        return cases + [(lambda x: reduce(x, axis=0), (F32, [0, 5]))]
    return cases + [(lambda x: reduce(x, axis=1), (dtype, BIG))
                    for dtype in (tf.int32, tf.int64, tf.int8)]


def _rowwise(op_type):
    logits = {"Softmax": tf.nn.softmax, "LogSoftmax": tf.nn.log_softmax}
    if op_type in logits:
        return [(logits[op_type], (dtype, BIG)) for dtype in (F32, F64)]
    if op_type == "SoftmaxCrossEntropyWithLogits":
        return [(lambda x, y: tf.nn.softmax_cross_entropy_with_logits(labels=y, logits=x),
                 (dtype, BIG), (dtype, BIG)) for dtype in (F32, F64)]
    return [(lambda x, y: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=x),
             (dtype, BIG), (labels, BIG[:1])) for dtype, labels in ((F32, tf.int32),
                                                                    (F64, tf.int64))]


BUILDERS = {
    "MatMul": [(lambda a, b: tf.nn.relu(tf.matmul(a, b) + tf.ones([130])), (F32, [100, 70]),
                (F32, [70, 130])),
               (lambda a, b: tf.matmul(a, b, transpose_a=True, transpose_b=True),
                (F64, [70, 100]), (F64, [130, 70])),
               (tf.matmul, (F32, [5, 0]), (F32, [0, 7]))],
    "Transpose": [(tf.transpose, (F32, BIG)), (tf.transpose, (tf.bool, BIG))],
    "BroadcastTo": [(lambda x: tf.broadcast_to(x, [300, 257]), (tf.int64, [1, 257]))],
    "Slice": [(lambda x: tf.slice(x, [3, 5], [200, 100]), (F64, BIG))],
    "StridedSlice": [(lambda x: x[3:250:2, ::-3], (tf.int8, BIG))],
    "GatherV2": [(lambda x, i: tf.gather(x, i), (F32, BIG), (tf.int32, [40])),
                 (lambda x, i: tf.gather(x, i, axis=1), (F64, BIG), (tf.int64, [4, 5]))],
    "ConcatV2": [(lambda x, y: tf.concat([x, y], axis=1), (F32, BIG), (F32, [300, 3]))],
    "Conv2D": [(lambda x, w: tf.nn.relu(tf.nn.conv2d(x, w, [1, 1, 1, 1], "SAME") + 0.5),
                (F32, [2, 9, 9, 5]), (F32, [3, 3, 5, 70])),
               (lambda x, w: tf.nn.conv2d(x, w, [1, 2, 2, 1], "VALID", dilations=[1, 1, 1, 1]),
                (F64, [1, 11, 10, 3]), (F64, [2, 3, 3, 4]))],
}


def cases_of(op_type):
    role = registry.get_op_def(op_type).role
    if role == registry.ELEMENTWISE:
        return _elementwise(op_type)
    if role == registry.REDUCTION:
        return _reduction(op_type)
    if role == registry.ROWWISE:
        return _rowwise(op_type)
    return BUILDERS[op_type]


GPU_OPS = sorted(t for t, d in registry.OP_DEFS.items() if ptx.TARGET in d.emitters)


def test_every_op_with_a_gpu_emitter_has_cases():
    assert {"MatMul", "Sum", "Softmax", "SparseSoftmaxCrossEntropyWithLogits", "Transpose",
            "GatherV2", "ConcatV2", "Add"} <= set(GPU_OPS)
    for op_type in GPU_OPS:
        assert cases_of(op_type), op_type


@needs_ptxas
@pytest.mark.parametrize("op_type", GPU_OPS)
def test_every_gpu_kernel_assembles(op_type):
    """For every op with a GPU emitter, in small graphs of the op: the PTX target claims
    every instruction that has a kernel schedule, and each kernel assembles with ptxas."""
    target = PTXTarget()
    mnemonic = registry.get_op_def(op_type).mnemonic
    covered, modules = False, []
    for build, *feeds in cases_of(op_type):
        for instr in _func(build, *feeds).body:
            if kernel_kind(instr) is None:
                continue
            assert target.supports(instr), instr.describe()
            body = instr.region.body if instr.op == "fusion" else [instr]
            covered = covered or any(i.op == mnemonic for i in body)
            modules.append(target.emit_kernel(instr, f"kernel{len(modules)}"))
    if modules:  # (one PTX module: one LLVM pipeline and one ptxas)
        text = target.to_ptx(*modules)
        assert text.count(".entry") == len(modules)
        ok, messages = target.assemble(text)
        assert ok, messages
    if not covered:
        pytest.skip(f"{op_type} has no kernel on any target (it runs as its numpy kernel)")


# -- the kernels are GPU kernels: blocks, warps, shared memory, 64-bit indices -----------------
def _kernel(build, *feeds):
    """(the schedule, launch and PTX) of the last kernel of build(placeholders...)."""
    target = PTXTarget()
    instr = [i for i in _func(build, *feeds).body if kernel_kind(i)][-1]
    return target.schedule(instr), target.launch(instr), target.to_ptx(target.emit_kernel(instr))


def test_row_reductions_are_block_and_warp_shuffle_reductions():
    sched, launch, text = _kernel(lambda x: tf.reduce_sum(x * x, axis=1), (F32, [4096, 4096]))
    assert sched.tiles["outputs_per_block"] == 1
    assert (launch.grid, launch.block) == (ptx.GRID_LIMIT, 256)  # blocks stride over rows
    assert "shfl.sync.down.b32" in text and "bar.sync" in text and ".shared" in text
    assert "%nctaid.x" in text  # any grid covers all the rows
    assert re.search(r"add(\.rn)?\.f64", text)  # float32 sums accumulate in float64, as on the CPU


def test_column_reductions_give_a_warp_consecutive_outputs():
    sched, launch, text = _kernel(lambda x: tf.reduce_max(x, axis=0), (F32, [4096, 4096]))
    assert sched.tiles["outputs_per_block"] == 32
    assert (launch.grid, launch.block) == (4096 // 32, 256)
    assert launch.shared_bytes == 256 * 4 and "bar.sync" in text and "ld.shared" in text


def test_rowwise_ops_run_a_block_per_row():
    for op in (tf.nn.softmax, tf.nn.log_softmax):
        sched, launch, text = _kernel(op, (F32, [1000, 4096]))
        assert (launch.grid, launch.block) == (1000, 256)
        assert "shfl.sync.down.b32" in text and "bar.sync" in text
        assert "call" not in text  # float32 exp and log are inline arithmetic
    _, launch, _ = _kernel(tf.nn.softmax, (F32, [1000, 10]))
    assert launch.block == 32  # a short row: one warp


def test_matmul_is_a_shared_memory_tiled_gemm_with_its_epilogue():
    sched, launch, text = _kernel(lambda a, b: tf.nn.relu(tf.matmul(a, b) + tf.ones([700])),
                                  (F32, [1000, 512]), (F32, [512, 700]))
    assert sched.kind == "contraction" and sched.epilogue
    assert (sched.tiles["bm"], sched.tiles["bn"], sched.tiles["bk"]) == (64, 64, 16)
    assert (launch.grid, launch.block) == (16 * 11, 256)
    assert launch.shared_bytes == 16 * 65 * 2 * 4
    assert ".shared" in text and "ld.shared" in text and "st.shared" in text
    assert text.count("bar.sync") >= 2 and "fma.rn.f32" in text
    assert "selp.f32" in text  # relu (NaN-propagating select), in registers before the store
    assert "bm=64" in format_schedule(sched, "k0") and "grid=176" in format_schedule(sched, "k0")
    _, _, text = _kernel(lambda a, b: tf.matmul(a, b, transpose_a=True), (F64, [70, 100]),
                         (F64, [70, 130]))
    assert "fma.rn.f64" in text


@pytest.mark.parametrize("build", [lambda x: tf.sigmoid(x) * 2.0, tf.transpose],
                         ids=["elementwise", "copy"])
def test_indices_are_64_bit_past_2_to_the_31_elements(build):
    _, launch, text = _kernel(build, (F32, [70000, 40000]))  # 2.8e9 elements
    assert launch.grid <= ptx.GRID_LIMIT
    assert re.search(r"setp\.\w+\.[su]64\s+%p\d+, %rd\d+, 2800000000;", text)
    assert "mul.wide.u32" in text  # block index x block size, widened before it can wrap


# -- the kernels compute what the interpreter does (threads emulated on the CPU) ---------------
def _random(t, rng):
    dtype = t.dtype.np_dtype
    if dtype == np.bool_:
        return rng.random(t.shape) < 0.5
    if np.issubdtype(dtype, np.integer):
        return rng.integers(-3, 4, t.shape).astype(dtype)
    return rng.standard_normal(t.shape).astype(dtype)


EMULATED = {  # (rows of 70: blocks of 3 warps; of 300: threads stride over the row)
    "reduce": [(lambda x: [tf.reduce_sum(tf.exp(x), axis=1), tf.reduce_max(x, axis=0),
                           tf.reduce_mean(x)], (F32, [3, 300])),
               (lambda x: [tf.reduce_prod(x, axis=1), tf.reduce_min(x, axis=0)],
                (tf.int64, [3, 70])),
               (lambda x: [tf.reduce_sum(x, axis=1), tf.reduce_max(x, axis=[0, 2])],
                (tf.int8, [3, 50, 7])),
               (lambda x: [tf.reduce_any(x, axis=1), tf.reduce_all(x, axis=0)],
                (tf.bool, [3, 70])),
               (lambda x: [tf.reduce_mean(x, axis=0), tf.reduce_max(x, axis=0)],
                (F64, [0, 5])),  # empty: NaN, the identity (a warp per 32 outputs)
               (lambda x: [tf.reduce_mean(x, axis=1), tf.reduce_prod(x, axis=1)],
                (F32, [5, 0]))],  # empty: NaN, the identity (a block per output)
    "rowwise": [(lambda x, y: [tf.nn.softmax(x), tf.nn.log_softmax(x),
                               tf.nn.softmax_cross_entropy_with_logits(labels=tf.nn.softmax(y),
                                                                       logits=x)],
                 (F32, [3, 70]), (F32, [3, 70])),
                (lambda x, y: tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y,
                                                                             logits=x),
                 (F64, [2, 300]), (tf.int32, [2]))],
    "contraction": [(lambda a, b: tf.nn.relu(tf.matmul(a, b) + tf.ones([130])),
                     (F32, [70, 40]), (F32, [40, 130])),
                    (lambda a, b: tf.matmul(a, b, transpose_a=True, transpose_b=True),
                     (F64, [20, 70]), (F64, [66, 20])),
                    (tf.matmul, (F32, [5, 0]), (F32, [0, 7]))],
    "convolution": [(lambda x, w, b: tf.nn.relu(tf.nn.conv2d(x, w, [1, 1, 1, 1], "SAME") + b),
                     (F32, [2, 5, 4, 3]), (F32, [3, 3, 3, 6]), (F32, [6])),
                    (lambda x, w, z: tf.nn.conv2d(x, w, [1, 2, 1, 1], "VALID",
                                                  dilations=[1, 1, 2, 1]) * z,
                     (F64, [1, 6, 7, 2]), (F64, [2, 2, 2, 3]), (F64, [1, 3, 5, 3]))],
    "loops": [(lambda x, i: [tf.transpose(x) * 1.5, x[3:9:2, ::-2], tf.gather(x, i),
                             tf.concat([x, x[:, :3]], axis=1)],
               (F32, [10, 7]), (tf.int32, [6]))],
}
INDEX_OPERANDS = {"gather": 1, "sparse_softmax_xent": 1}  # in range: the runtime checks them


@pytest.mark.parametrize("kind", sorted(EMULATED))
def test_kernels_compute_what_the_interpreter_does(kind):
    """Each GPU kernel, run by the emulator with a grid of at most 2 blocks (so that blocks
    stride over the work), matches the numpy interpreter."""
    target, rng = PTXTarget(), np.random.default_rng(0)
    for build, *feeds in EMULATED[kind]:
        tf.reset_default_graph()
        func = _func(build, *feeds)
        indices = {i.operands[INDEX_OPERANDS[i.op]] for i in func.body if i.op in INDEX_OPERANDS}
        with np.errstate(all="ignore"):
            inputs = [_random(p.value.type, rng) for p in func.params]
            inputs = [np.abs(x) if p.value in indices else x for p, x in zip(func.params, inputs)]
            trace = {}
            evaluate(func, inputs, trace)
        for instr in func.body:
            if not kernel_kind(instr):
                continue
            launch = target.launch(instr)
            outputs = [np.full(r.type.shape, 77, r.type.dtype.np_dtype) for r in instr.results]
            Emulator(str(target.emit_kernel(instr)))(
                launch.block, min(2, launch.grid),
                outputs + [np.ascontiguousarray(trace[v]) for v in instr.operands])
            for output, result in zip(outputs, instr.results):
                np.testing.assert_allclose(output, trace[result], rtol=1e-5, atol=1e-6,
                                           err_msg=instr.describe())
